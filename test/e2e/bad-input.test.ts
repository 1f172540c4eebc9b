/**
 * Acceptance 4: every error of etcd's KV contract, produced by a real client call with the exact gRPC code
 * and message etcd sends; then hostile transport input (malformed protobuf, broken gRPC framing, garbage
 * on the socket, connections cut mid-request and mid-stream). After each case the server must still
 * serve a put and a get.
 *
 * The servers run with etcd's default limits (--max-request-bytes 1.5 MiB, --max-txn-ops 128); the
 * compat test covers small limits. Transport-level failures (not etcd's error table) are asserted only
 * by code, and only where gRPC's Go and JS servers agree.
 */
import { after, before, describe, it as test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { Member, targetsFromEnv, waitFor, withLogsOnFailure } from './harness.js';
import { EtcdRpc, rpcFailure, type RpcFailure } from './grpc-client.js';
import {
  Compare_CompareResult as Result, Compare_CompareTarget as CmpTarget, PutRequest, RangeRequest, WatchRequest,
  RangeRequest_SortOrder as Order, RangeRequest_SortTarget as SortBy,
  type RequestOp,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { GrpcCode } from '../../src/base/errors.js';

const b = (s: string): Buffer => Buffer.from(s);
const MiB = 1024 * 1024;

const expected = {
  emptyKey: { code: GrpcCode.InvalidArgument, details: 'etcdserver: key is not provided' },
  keyNotFound: { code: GrpcCode.InvalidArgument, details: 'etcdserver: key not found' },
  valueProvided: { code: GrpcCode.InvalidArgument, details: 'etcdserver: value is provided' },
  leaseProvided: { code: GrpcCode.InvalidArgument, details: 'etcdserver: lease is provided' },
  tooLarge: { code: GrpcCode.InvalidArgument, details: 'etcdserver: request is too large' },
  tooManyOps: { code: GrpcCode.InvalidArgument, details: 'etcdserver: too many operations in txn request' },
  duplicateKey: { code: GrpcCode.InvalidArgument, details: 'etcdserver: duplicate key given in txn request' },
  compacted: { code: GrpcCode.OutOfRange, details: 'etcdserver: mvcc: required revision has been compacted' },
  futureRev: { code: GrpcCode.OutOfRange, details: 'etcdserver: mvcc: required revision is a future revision' },
  leaseNotFound: { code: GrpcCode.NotFound, details: 'etcdserver: requested lease not found' },
  leaseExists: { code: GrpcCode.FailedPrecondition, details: 'etcdserver: lease already exists' },
  leaseTtlTooLarge: { code: GrpcCode.OutOfRange, details: 'etcdserver: too large lease TTL' },
} as const satisfies Record<string, RpcFailure>;

const put = (key: string, value = 'v'): RequestOp => ({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b(key), value: b(value) }) } });

// -------------------------------------------------------------------------------- raw HTTP/2 gRPC

interface RawOutcome {
  httpStatus?: number;
  grpcStatus?: number;
  streamError?: string;
}

/** A gRPC length-prefixed message frame; `declaredBytes` may lie about the length. */
function grpcFrame(payload: Buffer, options: { compressed?: boolean; declaredBytes?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = options.compressed === true ? 1 : 0;
  prefix.writeUInt32BE(options.declaredBytes ?? payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

function openStream(endpoint: string, path: string): { session: http2.ClientHttp2Session; stream: http2.ClientHttp2Stream } {
  const session = http2.connect(`http://${endpoint}`);
  session.on('error', () => { /* the server may reset us; the outcome is read from the stream */ });
  const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
  return { session, stream };
}

/** Sends `body` as a whole unary request and reports how the server ended the stream. */
function rawUnary(endpoint: string, path: string, body: Buffer): Promise<RawOutcome> {
  const { session, stream } = openStream(endpoint, path);
  const outcome: RawOutcome = {};
  const grpcStatus = (headers: http2.IncomingHttpHeaders): void => {
    const status = headers['grpc-status'];
    if (typeof status === 'string') outcome.grpcStatus = Number(status);
  };
  stream.on('response', (headers) => {
    outcome.httpStatus = Number(headers[':status']);
    grpcStatus(headers);
  });
  stream.on('trailers', grpcStatus);
  stream.on('data', () => { /* drain */ });
  stream.on('error', (e) => { outcome.streamError = e.message; });
  stream.end(body);
  return new Promise((ok) => stream.on('close', () => {
    session.close();
    ok(outcome);
  }));
}

/** Resolves once the server has sent anything on the stream (headers or data). */
function firstResponse(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise((ok) => {
    stream.once('response', () => ok());
    stream.once('data', () => ok());
    stream.once('close', () => ok());
  });
}

// ---------------------------------------------------------------------------------------- tests

const targets = targetsFromEnv();

for (const target of targets) {
  describe(`bad input against ${target.label}`, () => {
    let member: Member;
    let rpc: EtcdRpc;
    let probe = 0;
    /** it(), printing the server's log when the case fails. */
    const it = (name: string, body: () => Promise<void>): void => {
      test(name, () => withLogsOnFailure([member], body));
    };

    before(async () => {
      member = await Member.start({ target });
      rpc = new EtcdRpc(member.endpoint);
    });
    after(async () => {
      rpc.close();
      await member.destroy();
    });

    /** The server is alive and a put is readable back, on a fresh connection. */
    async function stillServes(): Promise<void> {
      assert.ok(member.running, `${target.label} process is still running`);
      const fresh = new EtcdRpc(member.endpoint);
      try {
        const key = b(`probe/${probe++}`);
        await fresh.put({ key, value: key });
        assert.deepEqual((await fresh.range({ key })).kvs[0]?.value, key);
      } finally {
        fresh.close();
      }
    }

    async function fails(call: () => Promise<unknown>, want: RpcFailure): Promise<void> {
      assert.deepEqual(await rpcFailure(call), want);
    }

    it('empty key: range, put, delete, txn compare, txn op', async () => {
      await fails(() => rpc.range({ key: b('') }), expected.emptyKey);
      await fails(() => rpc.put({ key: b(''), value: b('v') }), expected.emptyKey);
      await fails(() => rpc.deleteRange({ key: b('') }), expected.emptyKey);
      await fails(() => rpc.txn({ compare: [{ key: b(''), target: CmpTarget.VERSION, result: Result.EQUAL, targetUnion: { $case: 'version', value: 0n } }] }), expected.emptyKey);
      await fails(() => rpc.txn({ success: [put('')] }), expected.emptyKey);
      await stillServes();
    });

    it('put flags: ignore_value on a missing key, value with ignore_value, lease with ignore_lease', async () => {
      await fails(() => rpc.put({ key: b('missing'), ignoreValue: true }), expected.keyNotFound);
      await fails(() => rpc.put({ key: b('k'), value: b('v'), ignoreValue: true }), expected.valueProvided);
      await fails(() => rpc.put({ key: b('k'), value: b('v'), lease: 5n, ignoreLease: true }), expected.leaseProvided);
      await stillServes();
    });

    it('request too large (default --max-request-bytes 1.5 MiB), and past the gRPC message limit', async () => {
      await fails(() => rpc.put({ key: b('big'), value: Buffer.alloc(1.6 * MiB, 120) }), expected.tooLarge);
      await fails(() => rpc.txn({ success: [put('big1', 'x'.repeat(0.8 * MiB)), put('big2', 'x'.repeat(0.8 * MiB))] }), expected.tooLarge);
      // etcd lets gRPC take 512 KiB more than --max-request-bytes; beyond that gRPC itself refuses.
      const failure = await rpcFailure(() => rpc.put({ key: b('huge'), value: Buffer.alloc(3 * MiB, 120) }));
      assert.equal(failure.code, GrpcCode.ResourceExhausted, failure.details);
      assert.equal((await rpc.range({ key: b('big'), rangeEnd: b('bih') })).count, 0n);
      assert.equal((await rpc.put({ key: b('fits'), value: Buffer.alloc(MiB, 120) })).header !== undefined, true);
      await stillServes();
    });

    it('too many operations in a txn (default --max-txn-ops 128)', async () => {
      const ops = (n: number): RequestOp[] => Array.from({ length: n }, (_, i) => put(`ops/${i}`));
      await fails(() => rpc.txn({ success: ops(129) }), expected.tooManyOps);
      await fails(() => rpc.txn({ failure: ops(129) }), expected.tooManyOps);
      const compare = Array.from({ length: 129 }, () => ({ key: b('ops/0'), target: CmpTarget.VERSION, result: Result.GREATER, targetUnion: { $case: 'version' as const, value: -1n } }));
      await fails(() => rpc.txn({ compare }), expected.tooManyOps);
      assert.equal((await rpc.txn({ success: ops(128) })).succeeded, true);
      await stillServes();
    });

    it('duplicate key in a txn: two puts, put inside a deleted range, nested txn', async () => {
      await fails(() => rpc.txn({ success: [put('dup'), put('dup')] }), expected.duplicateKey);
      await fails(() => rpc.txn({ success: [{ request: { $case: 'requestDeleteRange', value: { key: b('dup/'), rangeEnd: b('dup0') } } }, put('dup/x')] }), expected.duplicateKey);
      await fails(() => rpc.txn({ success: [put('dup'), { request: { $case: 'requestTxn', value: { success: [put('dup')] } } }] }), expected.duplicateKey);
      // then and else never both run: the same key in each is not a duplicate
      assert.equal((await rpc.txn({ success: [put('dup')], failure: [put('dup')] })).succeeded, true);
      await stillServes();
    });

    it('compacted and future revisions: range, txn range, compact', async () => {
      const first = await rpc.put({ key: b('rev'), value: b('1') });
      const second = await rpc.put({ key: b('rev'), value: b('2') });
      const rev = second.header?.revision ?? 0n;
      await rpc.compact({ revision: rev });
      await fails(() => rpc.range({ key: b('rev'), revision: first.header?.revision ?? 0n }), expected.compacted);
      await fails(() => rpc.txn({ success: [{ request: { $case: 'requestRange', value: { key: b('rev'), revision: rev - 1n } } }] }), expected.compacted);
      await fails(() => rpc.compact({ revision: rev }), expected.compacted);
      await fails(() => rpc.compact({ revision: rev - 1n }), expected.compacted);
      await fails(() => rpc.range({ key: b('rev'), revision: rev + 100n }), expected.futureRev);
      await fails(() => rpc.compact({ revision: rev + 100n }), expected.futureRev);
      assert.equal((await rpc.range({ key: b('rev'), revision: rev })).kvs[0]?.value.toString(), '2');
      await stillServes();
    });

    it('leases: unknown lease on put and in a txn, revoke unknown, grant an existing id, TTL too large', async () => {
      await fails(() => rpc.put({ key: b('l'), value: b('v'), lease: 0x1234n }), expected.leaseNotFound);
      await fails(() => rpc.txn({ success: [{ request: { $case: 'requestPut', value: { key: b('l'), value: b('v'), lease: 0x1234n } } }] }), expected.leaseNotFound);
      await fails(() => rpc.leaseRevoke({ ID: 0x1234n }), expected.leaseNotFound);
      await rpc.leaseGrant({ ID: 0x99n, TTL: 60n });
      await fails(() => rpc.leaseGrant({ ID: 0x99n, TTL: 60n }), expected.leaseExists);
      await fails(() => rpc.leaseGrant({ TTL: 9_000_000_001n }), expected.leaseTtlTooLarge);
      await rpc.leaseRevoke({ ID: 0x99n });
      await stillServes();
    });

    it("out-of-range enums and empty ops behave as etcd 3.4's", async () => {
      await rpc.put({ key: b('e/b'), value: b('1') });
      await rpc.put({ key: b('e/a'), value: b('2') });
      // an unknown sort order is no sort: keys come back in key order
      const unsorted = await rpc.range({ key: b('e/'), rangeEnd: b('e0'), sortOrder: 7 as Order, sortTarget: SortBy.VALUE });
      assert.deepEqual(unsorted.kvs.map((kv) => kv.key.toString()), ['e/a', 'e/b']);
      // an unknown compare result or target compares as true
      const weird = [{ result: 9, target: CmpTarget.VALUE }, { result: Result.EQUAL, target: 9 }];
      for (const { result, target: cmpTarget } of weird) {
        const res = await rpc.txn({ compare: [{ key: b('e/a'), target: cmpTarget, result, targetUnion: { $case: 'value', value: b('no') } }] });
        assert.equal(res.succeeded, true, `compare result=${result} target=${cmpTarget}`);
      }
      // a RequestOp with no request in it
      await fails(() => rpc.txn({ success: [{}] }), expected.keyNotFound);
      await stillServes();
    });

    it('malformed protobuf in a well-formed gRPC frame is refused with INTERNAL', async () => {
      const bodies = [
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // endless varint
        Buffer.from([0x0f, 0x01]), // wire type 7 does not exist
        Buffer.from([0x0a, 0x10, 0x61]), // field 1 claims 16 bytes, has 1
      ];
      for (const path of ['/etcdserverpb.KV/Put', '/etcdserverpb.KV/Range', '/etcdserverpb.KV/Txn']) {
        for (const body of bodies) {
          const outcome = await rawUnary(member.endpoint, path, grpcFrame(body));
          assert.equal(outcome.grpcStatus, GrpcCode.Internal, `${path} ${body.toString('hex')}: ${JSON.stringify(outcome)}`);
        }
      }
      await stillServes();
    });

    it('broken gRPC framing: unknown method, short prefix, lying length, compressed flag, empty body, huge length', async () => {
      const range = RangeRequest.encode(RangeRequest.fromPartial({ key: b('probe/0') })).finish();
      const unknown = await rawUnary(member.endpoint, '/etcdserverpb.KV/Nope', grpcFrame(Buffer.from(range)));
      assert.equal(unknown.grpcStatus, GrpcCode.Unimplemented, JSON.stringify(unknown));
      const huge = await rawUnary(member.endpoint, '/etcdserverpb.KV/Range', grpcFrame(Buffer.from(range), { declaredBytes: 0x7fff_ffff }));
      assert.equal(huge.grpcStatus, GrpcCode.ResourceExhausted, JSON.stringify(huge));
      // gRPC's Go and JS servers answer these differently; what matters is an answer, not a crash.
      const bodies = [
        Buffer.from([0, 0, 0]),
        grpcFrame(Buffer.from(range), { declaredBytes: 100 }),
        grpcFrame(Buffer.from(range), { compressed: true }),
        Buffer.alloc(0),
        Buffer.concat([grpcFrame(Buffer.from(range)), grpcFrame(Buffer.from(range))]),
      ];
      for (const body of bodies) {
        const outcome = await rawUnary(member.endpoint, '/etcdserverpb.KV/Range', body);
        assert.ok(outcome.grpcStatus !== undefined || outcome.streamError !== undefined, JSON.stringify(outcome));
      }
      await stillServes();
    });

    it('garbage and half-open connections on the client port', async () => {
      for (const junk of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04'), Buffer.alloc(4096, 0xa5)]) {
        const socket = net.connect(member.clientPort, '127.0.0.1');
        socket.on('error', () => { /* the server may reset us */ });
        socket.on('data', () => { /* drain */ });
        await new Promise<void>((ok) => socket.once('connect', () => ok()));
        socket.write(junk);
        await new Promise<void>((ok) => { socket.once('close', () => ok()); socket.end(); });
      }
      await stillServes();
    });

    it('abrupt disconnects: mid-request, mid-response, mid-watch-stream, with calls in flight, RST_STREAM', async () => {
      const putBody = (i: number): Buffer => grpcFrame(Buffer.from(PutRequest.encode(PutRequest.fromPartial({ key: b(`cut/${i}`), value: b('v') })).finish()));
      // half a request, then the TCP connection goes away
      {
        const { session, stream } = openStream(member.endpoint, '/etcdserverpb.KV/Put');
        stream.on('error', () => {});
        stream.write(putBody(0).subarray(0, 7));
        session.destroy();
      }
      // many complete requests in flight, then the connection goes away before the answers
      {
        const { session, stream } = openStream(member.endpoint, '/etcdserverpb.KV/Put');
        stream.on('error', () => {});
        const more = Array.from({ length: 50 }, (_, i) => session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' }));
        more.forEach((s, i) => { s.on('error', () => {}); s.end(putBody(i + 1)); });
        stream.end(putBody(100));
        await firstResponse(stream);
        session.destroy();
      }
      // a watch stream that is cut right after the server answered
      {
        const { session, stream } = openStream(member.endpoint, '/etcdserverpb.Watch/Watch');
        stream.on('error', () => {});
        stream.write(grpcFrame(Buffer.from(WatchRequest.encode(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('cut/'), rangeEnd: b('cut0') } } })).finish())));
        await firstResponse(stream);
        await rpc.put({ key: b('cut/w'), value: b('event for a watcher that is going away') });
        session.destroy();
      }
      // the client cancels its stream mid-request (RST_STREAM CANCEL) but keeps the connection
      {
        const { session, stream } = openStream(member.endpoint, '/etcdserverpb.KV/Put');
        stream.on('error', () => {});
        stream.write(putBody(200).subarray(0, 9));
        stream.close(http2.constants.NGHTTP2_CANCEL);
        await new Promise<void>((ok) => stream.on('close', () => ok()));
        const after = await rawUnary(member.endpoint, '/etcdserverpb.KV/Put', putBody(201));
        assert.equal(after.grpcStatus, GrpcCode.OK, JSON.stringify(after));
        session.close();
      }
      await stillServes();
    });

    it('an out-of-range sort target: etcd 3.4 panics on it; etcd-ts must answer and keep serving', async () => {
      await rpc.put({ key: b('s/a'), value: b('1') });
      const outcome = await rpcFailure(() => rpc.range({ key: b('s/'), rangeEnd: b('s0'), sortTarget: 9 as SortBy, sortOrder: Order.ASCEND }))
        .then((failure) => `failed: ${JSON.stringify(failure)}`, () => 'answered');
      if (target.name === 'etcd') {
        // Known etcd 3.4 bug (nil sorter in applierV3backend.Range): the process dies. Restart it so
        // the suite can tear down normally; this case only holds etcd-ts to a higher standard.
        await waitFor(() => !member.running || outcome === 'answered', { what: 'etcd to exit', timeoutMs: 5_000 });
        if (!member.running) await member.restart();
      } else {
        assert.ok(!outcome.includes(`"code":${GrpcCode.Unavailable}`), `etcd-ts dropped the connection: ${outcome}`);
      }
      await stillServes();
    });
  });
}

