/**
 * The server as grpc-js clients (the etcd3 npm client's transport) see it: the four call kinds with the
 * generated etcd definitions and grpc-js-shaped fake handlers, errors, metadata, deadlines, cancellation,
 * compression and graceful shutdown.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  credentials, makeGenericClientConstructor, Metadata, status, type ServerDuplexStream, type ServerReadableStream,
  type ServerUnaryCall, type ServerWritableStream, type ServiceError, type sendUnaryData,
} from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import {
  CompactionRequest, type CompactionResponse, KVClient, KVService, LeaseClient, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseService, MaintenanceClient,
  MaintenanceService, PutRequest, PutResponse, RangeRequest, RangeResponse, SnapshotRequest, SnapshotResponse,
  WatchClient, WatchRequest, WatchResponse, WatchService,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { unary } from '../grpc/unary.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { quietLog, recordingLog, startServer, waitFor, type Started } from './test-support.js';

const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };

/** What the fake handlers saw, so tests can check requests and cancellations reached them. */
const seen = {
  puts: [] as Array<{ request: PutRequest; token: unknown[]; authorization: unknown[] }>,
  cancelled: [] as string[],
  held: new Map<string, () => void>(),
};

function onCancelled(name: string, call: { on(event: 'cancelled', fn: () => void): unknown }): void {
  call.on('cancelled', () => seen.cancelled.push(name));
}

const kv: H2ServiceRegistration = {
  definition: KVService,
  implementation: {
    put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      seen.puts.push({ request: call.request, token: call.metadata.get('token'), authorization: call.metadata.get('authorization') });
      const trailer = new Metadata();
      trailer.set('x-trailer', 'yes');
      cb(null, PutResponse.fromPartial({ header, prevKv: { key: call.request.key, value: Buffer.from('old') } }), trailer);
    },
    // The real adapter from src/api/grpc/unary.ts: an EtcdError must reach the client with etcd's code and text.
    range: unary('Range', quietLog, async (r: RangeRequest, call) => {
      const key = r.key.toString();
      if (key === '') throw new EtcdError('EmptyKey');
      if (key.startsWith('hold')) {
        onCancelled(key, call);
        return new Promise<RangeResponse>((resolve) => seen.held.set(key, () => resolve(RangeResponse.fromPartial({ header, count: 7n }))));
      }
      return RangeResponse.fromPartial({ header, count: 1n, kvs: [{ key: r.key, value: Buffer.from('v:' + key) }] });
    }),
    // A grpc-js-style error object straight from a handler.
    compact: (_call: ServerUnaryCall<CompactionRequest, CompactionResponse>, cb: sendUnaryData<CompactionResponse>) =>
      cb({ code: status.FAILED_PRECONDITION, details: '100% é\nnewline' }),
  },
};

const maintenance: H2ServiceRegistration = {
  definition: MaintenanceService,
  implementation: {
    snapshot: (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>) => {
      onCancelled('snapshot', call);
      const chunks = Number(call.metadata.get('chunks')[0] ?? '3');
      for (let i = 0; i < chunks; i++) {
        call.write(SnapshotResponse.fromPartial({ header, remainingBytes: BigInt(chunks - 1 - i), blob: Buffer.alloc(1000, i) }));
      }
      if (call.metadata.get('fail').length > 0) call.emit('error', { code: status.UNAVAILABLE, details: 'etcdserver: no leader' });
      else if (call.metadata.get('hang').length === 0) call.end();
    },
  },
};

const watch: H2ServiceRegistration = {
  definition: WatchService,
  implementation: {
    watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
      onCancelled('watch', call);
      let nextId = 0n;
      call.on('data', (req: WatchRequest) => {
        if (req.requestUnion?.$case !== 'createRequest') return;
        call.write(WatchResponse.fromPartial({ header, watchId: nextId++, created: true, cancelReason: req.requestUnion.value.key.toString() }));
      });
      call.on('end', () => call.end());
    },
  },
};

const lease: H2ServiceRegistration = {
  definition: LeaseService,
  implementation: {
    leaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
      call.on('data', (req: LeaseKeepAliveRequest) => call.write(LeaseKeepAliveResponse.fromPartial({ header, ID: req.ID, TTL: 60n })));
      call.on('end', () => call.end());
    },
  },
};

/** A client-streaming method: etcd has none, so a test service with etcd's messages stands in. */
const sumDefinition = {
  sum: {
    path: '/etcdts.test.Upload/Sum',
    requestStream: true,
    responseStream: false,
    requestSerialize: (v: PutRequest) => Buffer.from(PutRequest.encode(v).finish()),
    requestDeserialize: (b: Buffer) => PutRequest.decode(b),
    responseSerialize: (v: PutResponse) => Buffer.from(PutResponse.encode(v).finish()),
    responseDeserialize: (b: Buffer) => PutResponse.decode(b),
  },
} as const;

const upload: H2ServiceRegistration = {
  definition: sumDefinition,
  implementation: {
    sum: (call: ServerReadableStream<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      let bytes = 0n;
      let count = 0n;
      call.on('data', (r: PutRequest) => {
        bytes += BigInt(r.value.length);
        count++;
      });
      call.on('end', () => cb(null, PutResponse.fromPartial({ header: { revision: bytes, raftTerm: count } })));
    },
  },
};

const log = recordingLog();
let started: Started;
let kvClient: InstanceType<typeof KVClient>;

before(async () => {
  started = await startServer([kv, maintenance, watch, lease, upload], { log });
  kvClient = new KVClient(started.target, credentials.createInsecure());
});

after(async () => {
  kvClient.close();
  await started.server.close(1000);
  assert.deepEqual(log.errors, []);
});

function rpc<Res>(fn: (cb: (err: ServiceError | null, res?: Res) => void) => unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn((err, res) => (err !== null ? reject(err) : resolve(res as Res)));
  });
}

function failure(p: Promise<unknown>): Promise<ServiceError> {
  return p.then(() => assert.fail('expected the call to fail'), (err: ServiceError) => err);
}

test('unary: the request and metadata (token, authorization) reach the handler; the response and trailers come back', async () => {
  const md = new Metadata();
  md.set('token', 'tok-1');
  md.set('authorization', 'Bearer x');
  let trailer: Metadata | undefined;
  const res = await new Promise<PutResponse>((resolve, reject) => {
    const call = kvClient.put(PutRequest.fromPartial({ key: Buffer.from('k1'), value: Buffer.from('v1'), lease: 2n ** 62n, prevKv: true }), md,
      (err, r) => (err !== null ? reject(err) : resolve(r)));
    call.on('status', (s) => { trailer = s.metadata; });
  });
  assert.deepEqual(res.header, header);
  assert.equal(res.prevKv?.value.toString(), 'old');
  const put = seen.puts.at(-1);
  assert.equal(put?.request.key.toString(), 'k1');
  assert.equal(put?.request.value.toString(), 'v1');
  assert.equal(put?.request.lease, 2n ** 62n);
  assert.equal(put?.request.prevKv, true);
  assert.deepEqual(put?.token, ['tok-1']);
  assert.deepEqual(put?.authorization, ['Bearer x']);
  assert.deepEqual(trailer?.get('x-trailer'), ['yes']);
});

test('unary errors: an EtcdError through the real adapter keeps etcd\'s code and text; details are percent-encoded', async () => {
  const empty = await failure(rpc((cb) => kvClient.range(RangeRequest.fromPartial({}), cb)));
  assert.equal(empty.code, status.INVALID_ARGUMENT);
  assert.equal(empty.details, 'etcdserver: key is not provided');
  const odd = await failure(rpc((cb) => kvClient.compact(CompactionRequest.fromPartial({}), cb)));
  assert.equal(odd.code, status.FAILED_PRECONDITION);
  assert.equal(odd.details, '100% é\nnewline');
  const ok = await rpc<RangeResponse>((cb) => kvClient.range(RangeRequest.fromPartial({ key: Buffer.from('a') }), cb));
  assert.equal(ok.kvs[0]?.value.toString(), 'v:a');
});

test('server streaming: every message arrives in order, then OK; an emitted error ends the stream with its status', async () => {
  const client = new MaintenanceClient(started.target, credentials.createInsecure());
  try {
    const read = (md: Metadata): Promise<{ got: SnapshotResponse[]; err: ServiceError | null }> => new Promise((resolve) => {
      const got: SnapshotResponse[] = [];
      const stream = client.snapshot(SnapshotRequest.fromPartial({}), md);
      stream.on('data', (m: SnapshotResponse) => got.push(m));
      stream.on('error', (err: ServiceError) => resolve({ got, err }));
      stream.on('end', () => resolve({ got, err: null }));
    });
    const md = new Metadata();
    md.set('chunks', '5');
    const ok = await read(md);
    assert.equal(ok.err, null);
    assert.deepEqual(ok.got.map((m) => m.remainingBytes), [4n, 3n, 2n, 1n, 0n]);
    assert.deepEqual(ok.got.map((m) => m.blob[0]), [0, 1, 2, 3, 4]);

    const failing = new Metadata();
    failing.set('chunks', '2');
    failing.set('fail', '1');
    const bad = await read(failing);
    assert.equal(bad.got.length, 2);
    assert.equal(bad.err?.code, status.UNAVAILABLE);
    assert.equal(bad.err?.details, 'etcdserver: no leader');
  } finally {
    client.close();
  }
});

test('bidi streaming: Watch creates are answered one by one; half-close ends the call with OK', async () => {
  const client = new WatchClient(started.target, credentials.createInsecure());
  try {
    const stream = client.watch();
    const got: WatchResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: WatchResponse) => got.push(m));
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    for (const key of ['a', 'b', 'c']) {
      stream.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from(key) } } }));
    }
    await waitFor(() => got.length === 3, { what: 'three watch responses' });
    stream.end();
    await done;
    assert.deepEqual(got.map((m) => [m.watchId, m.created, m.cancelReason]), [[0n, true, 'a'], [1n, true, 'b'], [2n, true, 'c']]);
  } finally {
    client.close();
  }
});

test('bidi streaming: LeaseKeepAlive echoes 64-bit lease ids', async () => {
  const client = new LeaseClient(started.target, credentials.createInsecure());
  try {
    const stream = client.leaseKeepAlive();
    const ids = [1n, 2n ** 63n - 1n, 7587854738949123456n];
    const got: LeaseKeepAliveResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: LeaseKeepAliveResponse) => got.push(m));
      stream.on('error', reject);
      stream.on('end', resolve);
    });
    for (const ID of ids) stream.write(LeaseKeepAliveRequest.fromPartial({ ID }));
    stream.end();
    await done;
    assert.deepEqual(got.map((m) => [m.ID, m.TTL]), ids.map((id) => [id, 60n]));
  } finally {
    client.close();
  }
});

test('client streaming: all requests reach the handler before its single answer', async () => {
  const Upload = makeGenericClientConstructor(sumDefinition, 'etcdts.test.Upload');
  const client = new Upload(started.target, credentials.createInsecure());
  try {
    const res = await new Promise<PutResponse>((resolve, reject) => {
      const sum = client['sum'] as (cb: (err: ServiceError | null, r: PutResponse) => void) => { write(m: PutRequest): boolean; end(): void };
      const stream = sum.call(client, (err, r) => (err !== null ? reject(err) : resolve(r)));
      for (let i = 1; i <= 50; i++) stream.write(PutRequest.fromPartial({ key: Buffer.from('k'), value: Buffer.alloc(i * 100) }));
      stream.end();
    });
    assert.equal(res.header?.raftTerm, 50n);
    assert.equal(res.header?.revision, BigInt((50 * 51 / 2) * 100));
  } finally {
    client.close();
  }
});

test('deadline: the client gets DEADLINE_EXCEEDED and the handler sees the call cancelled', async () => {
  const err = await failure(rpc((cb) => kvClient.range(RangeRequest.fromPartial({ key: Buffer.from('hold-deadline') }), new Metadata(),
    { deadline: Date.now() + 150 }, cb)));
  assert.equal(err.code, status.DEADLINE_EXCEEDED);
  await waitFor(() => seen.cancelled.includes('hold-deadline'), { what: 'the handler to see the deadline' });
  seen.held.get('hold-deadline')?.(); // answering a cancelled call is harmless
});

test('cancellation: a cancelled unary call and a cancelled stream both reach their handlers', async () => {
  let call: { cancel(): void } | undefined;
  const err = failure(rpc((cb) => {
    call = kvClient.range(RangeRequest.fromPartial({ key: Buffer.from('hold-cancel') }), cb);
  }));
  await waitFor(() => seen.held.has('hold-cancel'), { what: 'the held call to reach the handler' });
  call?.cancel();
  assert.equal((await err).code, status.CANCELLED);
  await waitFor(() => seen.cancelled.includes('hold-cancel'), { what: 'the unary handler to see the cancel' });

  const client = new MaintenanceClient(started.target, credentials.createInsecure());
  try {
    const md = new Metadata();
    md.set('chunks', '1');
    md.set('hang', '1');
    const stream = client.snapshot(SnapshotRequest.fromPartial({}), md);
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    stream.cancel();
    await waitFor(() => seen.cancelled.includes('snapshot'), { what: 'the streaming handler to see the cancel' });
  } finally {
    client.close();
  }
});

test('compression: a grpc-js client sending gzip is understood', async () => {
  const client = new KVClient(started.target, credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
  try {
    const value = Buffer.alloc(100_000, 0x61);
    await rpc<PutResponse>((cb) => client.put(PutRequest.fromPartial({ key: Buffer.from('gz'), value }), cb));
    assert.deepEqual(seen.puts.at(-1)?.request.value, value);
  } finally {
    client.close();
  }
});

test('unknown service and method: UNIMPLEMENTED with Go\'s texts', async () => {
  const unknown = {
    foo: { ...sumDefinition.sum, path: '/etcdserverpb.Foo/Bar', requestStream: false },
    bar: { ...sumDefinition.sum, path: '/etcdserverpb.KV/Bar', requestStream: false },
  };
  const Client = makeGenericClientConstructor(unknown, 'x');
  const client = new Client(started.target, credentials.createInsecure());
  try {
    type Call = (req: PutRequest, cb: (err: ServiceError | null) => void) => unknown;
    const foo = await failure(rpc((cb) => (client['foo'] as Call).call(client, PutRequest.fromPartial({}), cb)));
    assert.equal(foo.code, status.UNIMPLEMENTED);
    assert.equal(foo.details, 'unknown service etcdserverpb.Foo');
    const bar = await failure(rpc((cb) => (client['bar'] as Call).call(client, PutRequest.fromPartial({}), cb)));
    assert.equal(bar.code, status.UNIMPLEMENTED);
    assert.equal(bar.details, 'unknown method Bar for service etcdserverpb.KV');
  } finally {
    client.close();
  }
});

test('oversized request: RESOURCE_EXHAUSTED with Go\'s text and sizes; the connection keeps serving', async () => {
  const small = await startServer([kv], { requestBytesMax: 100 });
  const client = new KVClient(small.target, credentials.createInsecure());
  try {
    const request = PutRequest.fromPartial({ key: Buffer.from('big'), value: Buffer.alloc(600 * 1024) });
    const size = PutRequest.encode(request).finish().length;
    const max = 100 + 512 * 1024;
    const err = await failure(rpc((cb) => client.put(request, cb)));
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.equal(err.details, `grpc: received message larger than max (${size} vs. ${max})`);
    const ok = await rpc<PutResponse>((cb) => client.put(PutRequest.fromPartial({ key: Buffer.from('small') }), cb));
    assert.deepEqual(ok.header, header);
  } finally {
    client.close();
    await small.server.close(1000);
  }
});
