// The load generator against a small in-process KV server that records what arrives: the request count,
// the keys, the connections they came over, and injected failures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Server, ServerCredentials, status, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import {
  KVService,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { LOAD_FLAGS, loadConfigFromFlags, type LoadOp } from './load-config.js';
import { runLoad } from './load-generator.js';
import { parseFlags } from './options.js';

interface Seen {
  puts: Buffer[];
  ranges: RangeRequest[];
  txns: TxnRequest[];
  peers: Set<string>;
}

const header = { clusterId: 1n, memberId: 1n, revision: 1n, raftTerm: 1n };

async function fakeKv(opts: { failKeyIndex?: number }): Promise<{ port: number; seen: Seen; stop: () => Promise<void> }> {
  const seen: Seen = { puts: [], ranges: [], txns: [], peers: new Set() };
  const failing = (key: Buffer): boolean => opts.failKeyIndex !== undefined && key.readUInt32BE(key.length - 4) === opts.failKeyIndex;
  const server = new Server();
  server.addService(KVService, {
    put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
      seen.peers.add(call.getPeer());
      seen.puts.push(call.request.key);
      if (failing(call.request.key)) cb({ code: status.RESOURCE_EXHAUSTED, details: 'injected' });
      else cb(null, { header, prevKv: undefined });
    },
    range: (call: ServerUnaryCall<RangeRequest, RangeResponse>, cb: sendUnaryData<RangeResponse>) => {
      seen.peers.add(call.getPeer());
      seen.ranges.push(call.request);
      cb(null, { header, kvs: [], more: false, count: 0n });
    },
    txn: (call: ServerUnaryCall<TxnRequest, TxnResponse>, cb: sendUnaryData<TxnResponse>) => {
      seen.peers.add(call.getPeer());
      seen.txns.push(call.request);
      cb(null, { header, succeeded: true, responses: [] });
    },
    deleteRange: () => assert.fail('unexpected deleteRange'),
    compact: () => assert.fail('unexpected compact'),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  const stop = (): Promise<void> => new Promise((resolve) => server.tryShutdown(() => resolve()));
  return { port, seen, stop };
}

function config(op: LoadOp, port: number, argv: string[]) {
  return loadConfigFromFlags(op, parseFlags(['--endpoint', `127.0.0.1:${port}`, ...argv], LOAD_FLAGS).flags);
}

test('exactly total timed requests, over exactly --conns connections, sequential keys cycle the key space', async () => {
  const kv = await fakeKv({});
  try {
    const cfg = config('put', kv.port, ['--total', '200', '--warmup', '40', '--clients', '20', '--conns', '4',
      '--workers', '0', '--sequential-keys', '--key-space-size', '50', '--val-size', '16']);
    const result = await runLoad(cfg);
    assert.equal(result.histogram.count, 200);
    assert.equal(result.errorCount, 0);
    assert.equal(kv.seen.puts.length, 240);
    assert.equal(kv.seen.peers.size, 4, `peers: ${[...kv.seen.peers].join(', ')}`);
    const timedKeys = kv.seen.puts.slice(40).map((k) => k.readUInt32BE(4));
    assert.deepEqual(new Set(timedKeys), new Set(Array.from({ length: 50 }, (_, i) => i)));
    assert.ok(result.opsPerSec > 0 && result.elapsedMs > 0);
    assert.ok(result.histogram.percentile(50) > 0);
  } finally {
    await kv.stop();
  }
});

test('worker threads share one request counter and report failures by status', async () => {
  const kv = await fakeKv({ failKeyIndex: 7 });
  try {
    const cfg = config('put', kv.port, ['--total', '100', '--clients', '8', '--conns', '4', '--workers', '2',
      '--sequential-keys', '--key-space-size', '10']);
    const result = await runLoad(cfg);
    assert.equal(result.threads, 2);
    assert.equal(kv.seen.puts.length, 100);
    assert.equal(result.errorCount, 10);
    assert.equal(result.histogram.count, 90);
    assert.deepEqual(Object.keys(result.errors), [`grpc-${status.RESOURCE_EXHAUSTED}: injected`]);
    assert.equal(kv.seen.peers.size, 4);
  } finally {
    await kv.stop();
  }
});

test('range requests carry consistency and span; txn-put compares and puts distinct keys', async () => {
  const kv = await fakeKv({});
  try {
    await runLoad(config('range', kv.port, ['--total', '30', '--workers', '0', '--consistency', 's', '--key-space-size', '100', '--range-span', '5']));
    assert.equal(kv.seen.ranges.length, 30);
    for (const r of kv.seen.ranges) {
      assert.equal(r.serializable, true);
      assert.equal(r.rangeEnd.readUInt32BE(4) - r.key.readUInt32BE(4), 5);
    }
    await runLoad(config('txn-put', kv.port, ['--total', '20', '--workers', '0', '--txn-ops', '3', '--key-space-size', '4', '--sequential-keys']));
    assert.equal(kv.seen.txns.length, 20);
    for (const t of kv.seen.txns) {
      assert.equal(t.compare.length, 3);
      assert.equal(t.success.length, 3);
      const keys = t.success.map((op) => (op.request?.$case === 'requestPut' ? op.request.value.key.toString('hex') : ''));
      assert.equal(new Set(keys).size, 3);
    }
  } finally {
    await kv.stop();
  }
});
