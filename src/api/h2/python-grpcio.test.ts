/**
 * Python's grpcio (the C-core gRPC stack, a third implementation besides Go and grpc-js) against our
 * server: unary with metadata, an etcd error, server streaming, bidi streaming and a deadline. The script
 * sends and prints raw protobuf bytes, so no generated Python code is needed; this side encodes and
 * decodes with our codecs. Skipped, saying why, where Debian's python3-grpcio is not installed.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { status, type ServerDuplexStream, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import {
  KVService, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseService, MaintenanceService, PutRequest, PutResponse,
  RangeRequest, RangeResponse, SnapshotRequest, SnapshotResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { unary } from '../grpc/unary.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { quietLog, startServer, waitFor } from './test-support.js';

const python = '/usr/bin/python3';
const hasGrpcio = spawnSync(python, ['-c', 'import grpc'], { stdio: 'ignore' }).status === 0;

/** Runs each call and prints one JSON line per result: {"call", "ok", "hex" | "code", "details"}. */
const script = String.raw`
import grpc, json, sys
target, put_hex, range_hex, lease_hexes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(',')
ch = grpc.insecure_channel(target)
def out(**kw): print(json.dumps(kw), flush=True)
def fail(name, e): out(call=name, ok=False, code=e.code().value[0], details=e.details())
try:
    r = ch.unary_unary('/etcdserverpb.KV/Put')(bytes.fromhex(put_hex), metadata=[('token', 'py-token')], timeout=5)
    out(call='put', ok=True, hex=r.hex())
except grpc.RpcError as e: fail('put', e)
try:
    ch.unary_unary('/etcdserverpb.KV/Range')(bytes.fromhex(range_hex), timeout=5)
    out(call='range', ok=True)
except grpc.RpcError as e: fail('range', e)
try:
    msgs = [m.hex() for m in ch.unary_stream('/etcdserverpb.Maintenance/Snapshot')(b'', timeout=5)]
    out(call='snapshot', ok=True, hex=msgs)
except grpc.RpcError as e: fail('snapshot', e)
try:
    msgs = [m.hex() for m in ch.stream_stream('/etcdserverpb.Lease/LeaseKeepAlive')(iter([bytes.fromhex(h) for h in lease_hexes]), timeout=5)]
    out(call='keepalive', ok=True, hex=msgs)
except grpc.RpcError as e: fail('keepalive', e)
try:
    ch.unary_unary('/etcdserverpb.KV/Range')(bytes.fromhex('0a04686f6c64'), timeout=0.2)
    out(call='deadline', ok=True)
except grpc.RpcError as e: fail('deadline', e)
`;

test('python grpcio: unary with metadata, etcd error, server and bidi streams, deadline', { skip: hasGrpcio ? false : 'Debian python3-grpcio is not installed' }, async () => {
  const tokens: unknown[] = [];
  let holdCancelled = false;
  const kv: H2ServiceRegistration = {
    definition: KVService,
    implementation: {
      put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
        tokens.push(call.metadata.get('token')[0]);
        cb(null, PutResponse.fromPartial({ header: { revision: BigInt(call.request.value.length) }, prevKv: { key: call.request.key } }));
      },
      range: unary('Range', quietLog, (r: RangeRequest, call) => {
        if (r.key.toString() !== 'hold') throw new EtcdError('FutureRev');
        call.on('cancelled', () => { holdCancelled = true; });
        return new Promise<RangeResponse>(() => {});
      }),
    },
  };
  const maintenance: H2ServiceRegistration = {
    definition: MaintenanceService,
    implementation: {
      snapshot: (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>) => {
        for (let i = 2; i >= 0; i--) call.write(SnapshotResponse.fromPartial({ remainingBytes: BigInt(i), blob: Buffer.alloc(100, i) }));
        call.end();
      },
    },
  };
  const lease: H2ServiceRegistration = {
    definition: LeaseService,
    implementation: {
      leaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
        call.on('data', (r: LeaseKeepAliveRequest) => call.write(LeaseKeepAliveResponse.fromPartial({ ID: r.ID, TTL: 30n })));
        call.on('end', () => call.end());
      },
    },
  };
  const s = await startServer([kv, maintenance, lease]);
  try {
    const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
    const ids = [5n, 2n ** 63n - 1n];
    const args = [
      '-c', script, s.target,
      hex(PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('py'), value: Buffer.from('12345') })).finish()),
      hex(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('x'), revision: 99n })).finish()),
      ids.map((ID) => hex(LeaseKeepAliveRequest.encode({ ID }).finish())).join(','),
    ];
    // Async, so the server in this process keeps serving while Python runs.
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(python, args);
      let text = '';
      child.stdout.on('data', (d: Buffer) => { text += d.toString(); });
      child.on('error', reject);
      child.on('exit', () => resolve(text));
    });
    const results = new Map(output.trim().split('\n').map((line) => {
      const r = JSON.parse(line) as { call: string; ok: boolean; hex?: string | string[]; code?: number; details?: string };
      return [r.call, r];
    }));
    const put = results.get('put');
    assert.equal(put?.ok, true);
    assert.equal(PutResponse.decode(Buffer.from(String(put?.hex), 'hex')).header?.revision, 5n);
    assert.deepEqual(tokens, ['py-token']);
    assert.deepEqual(results.get('range'), { call: 'range', ok: false, code: status.OUT_OF_RANGE, details: 'etcdserver: mvcc: required revision is a future revision' });
    const snaps = (results.get('snapshot')?.hex as string[]).map((h) => SnapshotResponse.decode(Buffer.from(h, 'hex')).remainingBytes);
    assert.deepEqual(snaps, [2n, 1n, 0n]);
    const alive = (results.get('keepalive')?.hex as string[]).map((h) => LeaseKeepAliveResponse.decode(Buffer.from(h, 'hex')));
    assert.deepEqual(alive.map((r) => [r.ID, r.TTL]), ids.map((id) => [id, 30n]));
    assert.equal(results.get('deadline')?.code, status.DEADLINE_EXCEEDED);
    await waitFor(() => holdCancelled, { what: 'the held handler to see the deadline' });
  } finally {
    await s.server.close(1000);
  }
});
