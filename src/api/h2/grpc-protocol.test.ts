/**
 * The protocol edges, driven by a raw node:http2 client that can send what real clients never do:
 * malformed protobuf, bad frames, odd encodings and timeouts, ping floods, a reader that stops reading.
 * Also the HTTP side of the shared port (HTTP/1.1 and non-gRPC HTTP/2 reach the injected handler).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  status, type ServerDuplexStream, type ServerReadableStream, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData,
} from '@grpc/grpc-js';
import {
  KVService, MaintenanceService, PutRequest, PutResponse, RangeRequest, RangeResponse, SnapshotRequest,
  SnapshotResponse, WatchRequest, WatchResponse, WatchService,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { FramedMessages, MessageReader } from './grpc-wire.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { closeSession, connect, grpcFrame, rawCall, rawResponse, recordingLog, startServer, waitFor, type Started } from './test-support.js';

const seen = {
  puts: [] as PutRequest[],
  binary: [] as unknown[],
  cancelled: [] as string[],
  drained: 0,
  writesBeforeFull: -1,
  framedDrained: 0,
  framedBeforeFull: -1,
};

const kv: H2ServiceRegistration = {
  definition: KVService,
  implementation: {
    put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      seen.puts.push(call.request);
      seen.binary.push(call.metadata.get('x-id-bin')[0]);
      cb(null, PutResponse.fromPartial({ header: { revision: BigInt(call.request.value.length) } }));
    },
    range: (call: ServerUnaryCall<RangeRequest, RangeResponse>) => {
      call.on('cancelled', () => seen.cancelled.push(`range:${call.request.key.toString()}`));
    },
  },
};

const watch: H2ServiceRegistration = {
  definition: WatchService,
  implementation: {
    watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
      call.on('cancelled', () => seen.cancelled.push('watch'));
      call.on('data', (r: WatchRequest) => {
        const key = r.requestUnion?.$case === 'createRequest' ? r.requestUnion.value.key.toString() : '';
        if (key.startsWith('framed-')) return writeFramedPlan(call, key);
        const burst = r.requestUnion?.$case === 'createRequest' && r.requestUnion.value.key.toString() === 'burst' ? 5 : 1;
        for (let i = 0; i < burst; i++) call.write(WatchResponse.fromPartial({ created: true, watchId: BigInt(i) }));
      });
    },
  },
};

/** Responses handed over pre-framed (as the watch stream does), alone, several, and mixed with plain ones. */
function writeFramedPlan(call: ServerDuplexStream<WatchRequest, WatchResponse>, key: string): void {
  const framed = (...ids: number[]): FramedMessages => new FramedMessages(
    Buffer.concat(ids.map((id) => grpcFrame(WatchResponse.encode(WatchResponse.fromPartial({ watchId: BigInt(id) })).finish()))), ids.length);
  const plain = (id: number): WatchResponse => WatchResponse.fromPartial({ watchId: BigInt(id) });
  const write = (m: FramedMessages | WatchResponse): boolean => call.write(m as WatchResponse);
  if (key === 'framed-one') write(framed(0, 1, 2, 3));
  if (key === 'framed-two') [framed(0, 1), framed(2, 3)].forEach(write);
  if (key === 'framed-mixed') [plain(0), framed(1, 2), plain(3)].forEach(write);
  if (key === 'framed-flood') floodFramed(call);
}

const floodChunks = 100;

/** Pre-framed chunks of 8 KiB as fast as write() allows, resuming on 'drain'. */
function floodFramed(call: ServerDuplexStream<WatchRequest, WatchResponse>): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < floodChunks) {
      const msg = WatchResponse.encode(WatchResponse.fromPartial({ watchId: BigInt(sent), cancelReason: 'x'.repeat(8192) })).finish();
      const ok = call.write(new FramedMessages(grpcFrame(msg), 1) as unknown as WatchResponse);
      sent++;
      if (!ok) {
        if (seen.framedBeforeFull < 0) seen.framedBeforeFull = sent;
        call.once('drain', () => { seen.framedDrained++; pump(); });
        return;
      }
    }
    call.end();
  };
  pump();
}

const total = 200;
const blobBytes = 64 * 1024;
const maintenance: H2ServiceRegistration = {
  definition: MaintenanceService,
  implementation: {
    // Writes as fast as the stream lets it, honouring write() === false.
    snapshot: (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>) => {
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          const ok = call.write(SnapshotResponse.fromPartial({ remainingBytes: BigInt(sent), blob: Buffer.alloc(blobBytes, sent % 256) }));
          sent++;
          if (!ok) {
            if (seen.writesBeforeFull < 0) seen.writesBeforeFull = sent;
            call.once('drain', () => { seen.drained++; pump(); });
            return;
          }
        }
        call.end();
      };
      pump();
    },
  },
};

/** A client-streaming method (etcd has none): its handler leaves requests unread until the test says so. */
const uploadDefinition = {
  upload: {
    path: '/etcdts.test.Upload/Upload',
    requestStream: true,
    responseStream: false,
    requestSerialize: (v: PutRequest) => Buffer.from(PutRequest.encode(v).finish()),
    requestDeserialize: (b: Buffer) => PutRequest.decode(b),
    responseSerialize: (v: PutResponse) => Buffer.from(PutResponse.encode(v).finish()),
    responseDeserialize: (b: Buffer) => PutResponse.decode(b),
  },
  reject: {
    path: '/etcdts.test.Upload/Reject',
    requestStream: true,
    responseStream: false,
    requestSerialize: (v: PutRequest) => Buffer.from(PutRequest.encode(v).finish()),
    requestDeserialize: (b: Buffer) => PutRequest.decode(b),
    responseSerialize: (v: PutResponse) => Buffer.from(PutResponse.encode(v).finish()),
    responseDeserialize: (b: Buffer) => PutResponse.decode(b),
  },
} as const;
let uploadCall: ServerReadableStream<PutRequest, PutResponse> | undefined;
const upload: H2ServiceRegistration = {
  definition: uploadDefinition,
  implementation: {
    upload: (call: ServerReadableStream<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      uploadCall = call;
      const values: number[] = [];
      call.on('end', () => cb(null, PutResponse.fromPartial({ header: { revision: BigInt(values.length), raftTerm: BigInt(values.findIndex((v, i) => v !== i % 256) + 1) } })));
      // Reading starts only when the test adds a 'data' listener through `uploadCall`.
      call.once('resume', () => call.on('data', (r: PutRequest) => values.push(r.value[0] ?? -1)));
    },
    // Lets requests pile up unread until the call is held back by flow control, then answers while the
    // client is still uploading.
    reject: (call: ServerReadableStream<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      let answered = false;
      call.on('readable', () => {
        if (answered || call.readableLength < 16) return;
        answered = true;
        cb({ code: status.FAILED_PRECONDITION, details: 'no thanks' });
      });
    },
  },
};

const log = recordingLog();
let started: Started;
let session: http2.ClientHttp2Session;

before(async () => {
  started = await startServer([kv, watch, maintenance, upload], {
    log,
    keepaliveMinTimeMs: 60_000,
    maxConcurrentStreams: 77,
    httpHandler: (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, version: req.httpVersion, body, auth: req.headers.authorization ?? null }));
      });
    },
  });
  session = await connect(started.port);
});

after(async () => {
  await closeSession(session);
  await started.server.close(1000);
  assert.deepEqual(log.errors, []);
});

const putPath = '/etcdserverpb.KV/Put';
const put = (value: string): Buffer => grpcFrame(PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.from(value) })).finish());

test('a request split across many DATA frames, and -bin metadata, arrive intact', async () => {
  const frame = put('x'.repeat(3000));
  const pieces = [frame.subarray(0, 2), frame.subarray(2, 7), frame.subarray(7, 1000), frame.subarray(1000)];
  const r = await rawCall(session, { path: putPath, body: pieces, headers: { 'x-id-bin': Buffer.from([0, 1, 254]).toString('base64') } });
  assert.equal(r.status, status.OK);
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.headers['content-type'], 'application/grpc');
  assert.equal(seen.puts.at(-1)?.value.length, 3000);
  assert.deepEqual(seen.binary.at(-1), Buffer.from([0, 1, 254]));
  const reader = new MessageReader({ maxBytes: 1000, encoding: 'identity' });
  const replies: PutResponse[] = [];
  reader.push(r.body, (m) => replies.push(PutResponse.decode(m)));
  assert.equal(replies[0]?.header?.revision, 3000n);
});

test('malformed protobuf: INTERNAL as a trailers-only answer, the handler never runs, the server goes on', async () => {
  const before = seen.puts.length;
  const r = await rawCall(session, { path: putPath, body: [grpcFrame(Buffer.from([0x12, 0x05, 0x61]))] });
  assert.equal(r.status, status.INTERNAL);
  assert.match(r.message, /^grpc: error unmarshalling request: /);
  assert.equal(r.headers['grpc-status'], String(status.INTERNAL)); // trailers-only: the status is in the headers
  assert.equal(r.body.length, 0);
  assert.equal(seen.puts.length, before);
  assert.equal((await rawCall(session, { path: putPath, body: [put('ok')] })).status, status.OK);
});

test('malformed protobuf on a stream: INTERNAL, and the streaming handler is told the call is over', async () => {
  const r = await rawCall(session, { path: '/etcdserverpb.Watch/Watch', body: [grpcFrame(Buffer.from([0x0a, 0xff]))] });
  assert.equal(r.status, status.INTERNAL);
  assert.match(r.message, /^grpc: failed to unmarshal the received message /);
  await waitFor(() => seen.cancelled.includes('watch'), { what: 'the watch handler to be cancelled' });
});

test('framing errors: compressed flag without encoding, an unknown encoding, no message, a truncated message', async () => {
  const flagged = await rawCall(session, { path: putPath, body: [grpcFrame(Buffer.from([0x0a, 0x01, 0x6b]), 1)] });
  assert.deepEqual([flagged.status, flagged.message], [status.INTERNAL, 'grpc: compressed flag set with identity or empty encoding']);
  const snappy = await rawCall(session, { path: putPath, body: [put('x')], headers: { 'grpc-encoding': 'snappy' } });
  assert.deepEqual([snappy.status, snappy.message], [status.UNIMPLEMENTED, 'grpc: Decompressor is not installed for grpc-encoding "snappy"']);
  const none = await rawCall(session, { path: putPath, body: [] });
  assert.equal(none.status, status.INTERNAL);
  const truncated = await rawCall(session, { path: putPath, body: [put('abc').subarray(0, 8)] });
  assert.deepEqual([truncated.status, truncated.message], [status.INTERNAL, 'grpc: the request stream ended inside a message']);
});

test('a gzip-compressed request with grpc-encoding: gzip is inflated', async () => {
  const body = PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('z'), value: Buffer.alloc(10_000, 0x7a) })).finish();
  const r = await rawCall(session, { path: putPath, body: [grpcFrame(gzipSync(body), 1)], headers: { 'grpc-encoding': 'gzip' } });
  assert.equal(r.status, status.OK);
  assert.deepEqual(seen.puts.at(-1)?.value, Buffer.alloc(10_000, 0x7a));
});

test('grpc-timeout: the server itself answers DEADLINE_EXCEEDED and cancels the handler; a malformed value is refused', async () => {
  const held = grpcFrame(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('slow') })).finish());
  const r = await rawCall(session, { path: '/etcdserverpb.KV/Range', body: [held], headers: { 'grpc-timeout': '50m' } });
  assert.deepEqual([r.status, r.message], [status.DEADLINE_EXCEEDED, 'context deadline exceeded']);
  assert.ok(seen.cancelled.includes('range:slow'));
  const bad = await rawCall(session, { path: '/etcdserverpb.KV/Range', body: [held], headers: { 'grpc-timeout': '5 seconds' } });
  assert.deepEqual([bad.status, bad.message], [status.INTERNAL, 'transport: malformed grpc-timeout: "5 seconds"']);
});

test('unknown service and method answer trailers-only UNIMPLEMENTED', async () => {
  const svc = await rawCall(session, { path: '/etcdserverpb.Nope/Range', body: [put('x')] });
  assert.deepEqual([svc.status, svc.message], [status.UNIMPLEMENTED, 'unknown service etcdserverpb.Nope']);
  assert.equal(svc.headers['content-type'], 'application/grpc');
  const method = await rawCall(session, { path: '/etcdserverpb.KV/Nope', body: [put('x')] });
  assert.deepEqual([method.status, method.message], [status.UNIMPLEMENTED, 'unknown method Nope for service etcdserverpb.KV']);
});

test('a client that stops reading holds the writer back: write() turns false, drain resumes, nothing is lost', async () => {
  const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', te: 'trailers' });
  req.end(grpcFrame(SnapshotRequest.encode(SnapshotRequest.fromPartial({})).finish()));
  req.pause();
  await waitFor(() => seen.writesBeforeFull > 0, { what: 'the handler to see back-pressure' });
  // Window (64 KiB) + the stream's buffer + the handler's 16 queued objects: far below the 200 it wants to send.
  assert.ok(seen.writesBeforeFull < 40, `wrote ${seen.writesBeforeFull} messages before back-pressure`);
  const reader = new MessageReader({ maxBytes: 1 << 20, encoding: 'identity' });
  const got: bigint[] = [];
  let trailers: http2.IncomingHttpHeaders = {};
  req.on('trailers', (t) => { trailers = t; });
  req.on('data', (c: Buffer) => reader.push(c, (m) => got.push(SnapshotResponse.decode(m).remainingBytes)));
  req.resume();
  await new Promise((resolve) => req.on('close', resolve));
  assert.equal(trailers['grpc-status'], '0');
  assert.deepEqual(got, Array.from({ length: total }, (_, i) => BigInt(i)));
  assert.ok(seen.drained > 0);
});

test('a handler that does not read holds the client back: the server buffers a bounded amount, then all arrives', async () => {
  const count = 200;
  const req = session.request({ ':method': 'POST', ':path': '/etcdts.test.Upload/Upload', 'content-type': 'application/grpc', te: 'trailers' });
  const response = rawResponse(req);
  let written = 0;
  let blocked = false;
  const produce = async (): Promise<void> => {
    for (; written < count; written++) {
      const body = PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('u'), value: Buffer.alloc(blobBytes, written % 256) })).finish();
      if (!req.write(grpcFrame(body))) {
        blocked = true;
        await new Promise((resolve) => req.once('drain', resolve));
        blocked = false;
      }
    }
    req.end();
  };
  const producing = produce();
  await waitFor(() => uploadCall !== undefined && uploadCall.readableLength >= 16 && blocked, { what: 'the handler buffer to fill and the client to block' });
  // The stream window (1 MiB = 16 messages), the handler's 16 queued objects and the client's own buffer: well short of 200.
  assert.ok(written < 48, `the client wrote ${written} of ${count} messages into an unread call`);
  uploadCall?.resume();
  await producing;
  const r = await response;
  assert.equal(r.status, status.OK, r.message);
  const reply: PutResponse[] = [];
  new MessageReader({ maxBytes: 1000, encoding: 'identity' }).push(r.body, (m) => reply.push(PutResponse.decode(m)));
  assert.equal(reply[0]?.header?.revision, BigInt(count)); // every message arrived...
  assert.equal(reply[0]?.header?.raftTerm, 0n); // ...in order (no message out of place)
});

test('an early answer to an upload does not leave the client stuck on a closed window', async () => {
  const req = session.request({ ':method': 'POST', ':path': '/etcdts.test.Upload/Reject', 'content-type': 'application/grpc', te: 'trailers' });
  const response = rawResponse(req);
  req.on('error', () => {});
  const body = grpcFrame(PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('r'), value: Buffer.alloc(blobBytes) })).finish());
  const closed = new Promise((resolve) => req.once('close', resolve));
  for (let i = 0; i < 100 && !req.closed; i++) {
    if (!req.write(body)) await Promise.race([closed, new Promise((resolve) => req.once('drain', resolve))]);
  }
  req.end();
  const r = await response;
  assert.deepEqual([r.status, r.message], [status.FAILED_PRECONDITION, 'no thanks']);
});

test('writes made in one turn leave together: five messages, one DATA frame', async () => {
  const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => {});
  const chunks: Buffer[] = [];
  const ids: bigint[] = [];
  const reader = new MessageReader({ maxBytes: 1000, encoding: 'identity' });
  const five = new Promise<void>((resolve) => req.on('data', (c: Buffer) => {
    chunks.push(c);
    reader.push(c, (m) => ids.push(WatchResponse.decode(m).watchId));
    if (ids.length === 5) resolve();
  }));
  req.write(grpcFrame(WatchRequest.encode(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from('burst') } } })).finish()));
  await five;
  assert.deepEqual(ids, [0n, 1n, 2n, 3n, 4n]);
  assert.equal(chunks.length, 1);
  req.close();
});

test('pre-framed messages leave as they are, in order with plain ones: alone, several, and mixed', async () => {
  for (const key of ['framed-one', 'framed-two', 'framed-mixed']) {
    const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
    req.on('error', () => {});
    const ids: bigint[] = [];
    const reader = new MessageReader({ maxBytes: 1000, encoding: 'identity' });
    const four = new Promise<void>((resolve) => req.on('data', (c: Buffer) => {
      reader.push(c, (m) => ids.push(WatchResponse.decode(m).watchId));
      if (ids.length >= 4) resolve();
    }));
    req.write(grpcFrame(WatchRequest.encode(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from(key) } } })).finish()));
    await four;
    assert.deepEqual(ids, [0n, 1n, 2n, 3n], key);
    req.close();
  }
});

test('pre-framed writes to a client that stops reading turn false, drain resumes them, nothing is lost', async () => {
  const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => {});
  req.pause();
  req.end(grpcFrame(WatchRequest.encode(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from('framed-flood') } } })).finish()));
  await waitFor(() => seen.framedBeforeFull > 0, { what: 'the handler to see back-pressure' });
  // Window (64 KiB) + the stream's buffer + the handler's 16 queued objects: far below the 100 it wants to send.
  assert.ok(seen.framedBeforeFull < 40, `wrote ${seen.framedBeforeFull} chunks before back-pressure`);
  const reader = new MessageReader({ maxBytes: 1 << 20, encoding: 'identity' });
  const got: bigint[] = [];
  let trailers: http2.IncomingHttpHeaders = {};
  req.on('trailers', (t) => { trailers = t; });
  req.on('data', (c: Buffer) => reader.push(c, (m) => got.push(WatchResponse.decode(m).watchId)));
  req.resume();
  await new Promise((resolve) => req.on('close', resolve));
  assert.equal(trailers['grpc-status'], '0');
  assert.deepEqual(got, Array.from({ length: floodChunks }, (_, i) => BigInt(i)));
  assert.ok(seen.framedDrained > 0);
});

test('HTTP/1.1 and non-gRPC HTTP/2 on the same port reach the HTTP handler', async () => {
  const h1 = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: started.port, path: '/v3/kv/range', method: 'POST', headers: { authorization: 'tok' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    });
    req.on('error', reject);
    req.end('{"key":"Zm9v"}');
  });
  assert.deepEqual(h1, { method: 'POST', url: '/v3/kv/range', version: '1.1', body: '{"key":"Zm9v"}', auth: 'tok' });

  const h2 = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const req = session.request({ ':path': '/health', ':method': 'GET' });
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
    req.on('error', reject);
  });
  assert.deepEqual(h2, { method: 'GET', url: '/health', version: '2.0', body: '', auth: null });
});

test('without an HTTP handler the answer is 404; grpc-web is not gRPC', async () => {
  const bare = await startServer([kv]);
  try {
    const code = await new Promise<number | undefined>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: bare.port, path: '/metrics' }, (res) => { res.resume(); resolve(res.statusCode); }).on('error', reject);
    });
    assert.equal(code, 404);
    const s = await connect(bare.port);
    const web = await new Promise<unknown>((resolve) => {
      const req = s.request({ ':method': 'POST', ':path': putPath, 'content-type': 'application/grpc-web' });
      req.on('response', (h) => resolve(h[':status']));
      req.resume();
      req.end();
    });
    assert.equal(web, 404);
    await closeSession(s);
  } finally {
    await bare.server.close(1000);
  }
});

test('SETTINGS carry maxConcurrentStreams and the larger receive window', async () => {
  await new Promise((resolve) => session.ping(resolve));
  assert.equal(session.remoteSettings.maxConcurrentStreams, 77);
  assert.equal(session.remoteSettings.initialWindowSize, 1024 * 1024);
});

test('a ping flood during a call gets GOAWAY ENHANCE_YOUR_CALM "too_many_pings", as Go answers', async () => {
  const s = await connect(started.port);
  const goaway = new Promise<[number, string]>((resolve) => s.on('goaway', (code, _last, data) => resolve([code, data?.toString() ?? ''])));
  s.on('error', () => {});
  const req = s.request({ ':method': 'POST', ':path': '/etcdserverpb.Watch/Watch', 'content-type': 'application/grpc', te: 'trailers' });
  req.on('error', () => {});
  req.on('response', () => {
    for (let i = 0; i < 5 && !s.destroyed; i++) s.ping(() => {});
  });
  req.write(grpcFrame(WatchRequest.encode(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from('p') } } })).finish()));
  assert.deepEqual(await goaway, [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'too_many_pings']);
  await new Promise((resolve) => (s.destroyed ? resolve(undefined) : s.once('close', resolve)));
});

test('keepalive: the server pings an idle connection and drops a peer that never answers', async () => {
  const pinger = await startServer([kv], { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 100 });
  try {
    const s = await connect(pinger.port);
    let pings = 0;
    s.on('ping', () => { pings++; });
    await waitFor(() => pings >= 2, { what: 'two server pings' });
    assert.equal(s.destroyed, false);
    await closeSession(s);

    // A peer that speaks the preface and SETTINGS, then never acks anything.
    const mute = net.connect(pinger.port, '127.0.0.1');
    mute.on('data', () => {});
    mute.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
    await new Promise((resolve) => mute.on('close', resolve));
  } finally {
    await pinger.server.close(1000);
  }
});
