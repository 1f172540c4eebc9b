/**
 * The gateway over a real H2Server with small grpc-js-style services: what reaches a handler (request,
 * metadata, cancellation), how unary, server-streaming and bidi answers are written, what an unregistered
 * service answers, and that HTTP/1.1 and h2c share the port and the server's HTTP/2 settings.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type {
  Metadata, sendUnaryData, ServerDuplexStream, ServerUnaryCall, ServerWritableStream, ServiceError,
} from '@grpc/grpc-js';
import { GrpcCode } from '../../base/errors.js';
import {
  ClusterService, LeaseService, MaintenanceService, MemberListResponse,
  type LeaseKeepAliveRequest, type LeaseKeepAliveResponse, type MemberListRequest, type SnapshotRequest, type SnapshotResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { H2ServiceRegistration } from '../h2/h2-server.js';
import { closeSession, connect, quietLog, startServer, waitFor, type Started } from '../h2/test-support.js';
import { createHttpHandler } from '../http/http-handler.js';
import { Registry } from 'prom-client';
import { createGateway } from './gateway.js';

const seen: { metadata: Metadata[]; keepAliveCancelled: number; hangCancelled: number } = { metadata: [], keepAliveCancelled: 0, hangCancelled: 0 };
const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };

const cluster: H2ServiceRegistration = {
  definition: ClusterService,
  implementation: {
    memberList: (call: ServerUnaryCall<MemberListRequest, MemberListResponse>, done: sendUnaryData<MemberListResponse>) => {
      seen.metadata.push(call.metadata);
      if (call.metadata.get('hang').length > 0) {
        call.on('cancelled', () => seen.hangCancelled++);
        return;
      }
      if (call.metadata.get('fail').length > 0) {
        done({ code: GrpcCode.Unavailable, details: 'etcdserver: <not> "ready"' } as Partial<ServiceError> as ServiceError, null);
        return;
      }
      done(null, MemberListResponse.fromPartial({
        header, members: [{ ID: 18446744073709551615n, name: 'a<b>&c\u2028', peerURLs: ['http://x:1'], clientURLs: [], isLearner: true }],
      }));
    },
  },
};

const maintenance: H2ServiceRegistration = {
  definition: MaintenanceService,
  implementation: {
    // Two chunks, then a failure: the stream's answer shows both results and the error object.
    snapshot: (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>) => {
      call.write({ header, remainingBytes: 2n, blob: Buffer.from([0, 1, 254]) });
      call.write({ header: undefined, remainingBytes: 0n, blob: Buffer.alloc(0) });
      call.emit('error', { code: GrpcCode.NotFound, details: 'gone' });
    },
  },
};

const lease: H2ServiceRegistration = {
  definition: LeaseService,
  implementation: {
    leaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
      call.on('data', (r: LeaseKeepAliveRequest) => {
        if (r.ID === 0n) call.emit('error', { code: GrpcCode.InvalidArgument, details: 'zero' });
        else call.write({ header, ID: r.ID, TTL: r.ID * 2n });
      });
      call.on('end', () => call.end());
      call.on('cancelled', () => seen.keepAliveCancelled++);
    },
  },
};

let server: Started;

before(async () => {
  const services = [cluster, maintenance, lease];
  const gateway = createGateway({ services, receiveBytesMax: 4096, log: quietLog });
  const httpHandler = createHttpHandler({ health: {
    alarms: async () => [], hasLeader: () => true, quorumRead: async () => {}, linearizableRead: async () => {},
    serializableRead: async () => {}, isLearner: () => false,
  }, metrics: new Registry(), gateway });
  server = await startServer(services, { httpHandler, maxConcurrentStreams: 7 });
});

after(async () => {
  await server.server.close(100);
});

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  trailers: Record<string, string | undefined>;
}

function post(path: string, body: string, headers: http.OutgoingHttpHeaders = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: res.trailers,
      }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function postH2(session: http2.ClientHttp2Session, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/json' });
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.end(body);
  });
}

const headerJson = '"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"}';

test('unary: jsonpb answer (uint64 as string, HTML-safe strings, defaults omitted) and gRPC metadata', async () => {
  const a = await post('/v3/cluster/member/list', '{}', { authorization: 'tok-1', 'grpc-metadata-x-extra': 'v' });
  assert.equal(a.status, 200);
  assert.equal(a.headers['content-type'], 'application/json');
  assert.equal(a.headers['grpc-metadata-content-type'], 'application/grpc');
  assert.equal(a.body, `{${headerJson},"members":[{"ID":"18446744073709551615","name":"a\\u003cb\\u003e\\u0026c\\u2028",` +
    '"peerURLs":["http://x:1"],"isLearner":true}]}');
  const md = seen.metadata.at(-1)!;
  assert.deepEqual(md.get('authorization'), ['tok-1']);
  assert.deepEqual(md.get('token'), ['tok-1']);
  assert.deepEqual(md.get('x-extra'), ['v']);
});

test('unary: a handler error is the error body with the HTTP status of its code, and the gRPC trailer', async () => {
  const a = await post('/v3beta/cluster/member/list', '{}', { 'grpc-metadata-fail': '1' });
  assert.equal(a.status, 503);
  assert.equal(a.body, '{"error":"etcdserver: \\u003cnot\\u003e \\"ready\\"","message":"etcdserver: \\u003cnot\\u003e \\"ready\\"","code":14}');
  assert.equal(a.headers['trailer'], 'Grpc-Trailer-Content-Type');
  assert.equal(a.trailers['grpc-trailer-content-type'], 'application/grpc');
});

test('unregistered: a service the server lacks, a method it lacks', async () => {
  const a = await post('/v3/kv/range', '{"key":"YQ=="}');
  assert.equal(a.status, 501);
  assert.equal(a.body, '{"error":"unknown service etcdserverpb.KV","message":"unknown service etcdserverpb.KV","code":12}');
  const b = await post('/v3/maintenance/status', '{}');
  assert.equal(b.status, 501);
  assert.equal(JSON.parse(b.body).message, 'unknown method Status for service etcdserverpb.Maintenance');
  const c = await post('/v3/kv/range', '{"key":');
  assert.deepEqual([c.status, c.body], [400, '{"error":"unexpected EOF","message":"unexpected EOF","code":3}']);
});

test('server streaming: one result per line, then the error object', async () => {
  const a = await post('/v3/maintenance/snapshot', '');
  assert.equal(a.status, 200);
  assert.equal(a.body, `{"result":{${headerJson},"remaining_bytes":"2","blob":"AAH+"}}\n{"result":{}}\n` +
    '{"error":{"grpc_code":5,"http_code":404,"message":"gone","http_status":"Not Found"}}');
});

test('bidi: each body value is a request; an error before any answer sets the HTTP status', async () => {
  const a = await post('/v3/lease/keepalive', '{"ID":"5"}\n{"ID":6} {"ID":"7"}');
  assert.equal(a.status, 200);
  assert.equal(a.body, ['5', '6', '7'].map((id) => `{"result":{${headerJson},"ID":"${id}","TTL":"${Number(id) * 2}"}}\n`).join(''));
  const b = await post('/v3/lease/keepalive', '{"ID":"0"}');
  assert.equal(b.status, 400);
  assert.equal(b.body, '{"error":{"grpc_code":3,"http_code":400,"message":"zero","http_status":"Bad Request"}}');
  // A bad first value fails the request (Unknown); a bad later one only ends the requests.
  const c = await post('/v3/lease/keepalive', '{"ID":true}');
  assert.deepEqual([c.status, c.body], [500, '{"error":"json: cannot unmarshal bool into Go value of type int64","message":"json: cannot unmarshal bool into Go value of type int64","code":2}']);
  const d = await post('/v3/lease/keepalive', '{"ID":"8"} {"ID":true} {"ID":"9"}');
  assert.equal(d.body, `{"result":{${headerJson},"ID":"8","TTL":"16"}}\n`);
});

test('bidi: a client that goes away cancels the call', async () => {
  const before = seen.keepAliveCancelled;
  const req = http.request({ host: '127.0.0.1', port: server.port, method: 'POST', path: '/v3/lease/keepalive' });
  req.on('error', () => {});
  const first = new Promise<void>((resolve) => req.on('response', (res) => res.once('data', () => resolve())));
  req.write('{"ID":"1"}');
  await first;
  req.destroy();
  await waitFor(() => seen.keepAliveCancelled > before, { what: 'the handler to see the cancellation' });
});

test('Grpc-Timeout is the call deadline: 504 and the handler sees the cancellation', async () => {
  const a = await post('/v3/cluster/member/list', '{}', { 'grpc-metadata-hang': '1', 'grpc-timeout': '30m' });
  assert.equal(a.status, 504);
  assert.equal(a.body, '{"error":"context deadline exceeded","message":"context deadline exceeded","code":4}');
  await waitFor(() => seen.hangCancelled === 1, { what: 'the handler to see the deadline' });
  const bad = await post('/v3/cluster/member/list', '{}', { 'grpc-timeout': 'soon' });
  assert.deepEqual([bad.status, JSON.parse(bad.body).message], [400, 'invalid grpc-timeout: soon']);
});

test('size limit: a request over the gRPC receive limit is refused as the gRPC server refuses it', async () => {
  const url = `http://${'x'.repeat(5000)}`;
  const a = await post('/v3/cluster/member/add', JSON.stringify({ peerURLs: [url] }));
  assert.equal(a.status, 429);
  assert.equal(JSON.parse(a.body).message, 'grpc: received message larger than max (5010 vs. 4096)');
  const b = await post('/v3/cluster/member/list', JSON.stringify({ junk: 'x'.repeat(5000) }));
  assert.equal(b.status, 200, 'unknown fields are dropped before the size counts');
});

test('HTTP/1.1 and h2c on one port; the gateway streams get the server HTTP/2 settings', async () => {
  const session = await connect(server.port);
  try {
    await new Promise((resolve) => session.ping(resolve));
    assert.equal(session.remoteSettings.maxConcurrentStreams, 7);
    const h2 = await postH2(session, '/v3/cluster/member/list', '{}');
    const h1 = await post('/v3/cluster/member/list', '{}');
    assert.deepEqual(h2, { status: h1.status, body: h1.body });
    const missing = await postH2(session, '/v3/nope', '{}');
    assert.deepEqual(missing, { status: 404, body: 'Not Found\n' });
  } finally {
    await closeSession(session);
  }
});

test('paths and methods outside the routes: Go mux answers', async () => {
  const get = await new Promise<Answer>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path: '/v3/kv/range' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), trailers: {} }));
    }).on('error', reject);
  });
  assert.deepEqual([get.status, get.body], [405, 'Method Not Allowed\n']);
  const bare = await post('/v3?x=1', '{}');
  assert.deepEqual([bare.status, bare.headers.location], [301, '/v3/?x=1']);
  const other = await post('/v3alpha/kv/range', '{}');
  assert.deepEqual([other.status, other.body], [404, '404 page not found\n']);
});
