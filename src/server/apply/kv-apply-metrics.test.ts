/** The operation counts etcd 3.4 reports per store txn (mvcc/metrics_txn.go), request by request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Compare_CompareResult, Compare_CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest, type Compare, type RequestOp,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { KvStore } from '../../mvcc/kv-store.js';
import { Backend } from '../../storage/backend/backend.js';
import { KvApplier, type MvccOpCounts } from './kv-apply.js';

const B = (s: string) => Buffer.from(s);
const exists = (key: string): Compare => ({
  key: B(key), rangeEnd: Buffer.alloc(0), target: Compare_CompareTarget.VERSION, result: Compare_CompareResult.GREATER,
  targetUnion: { $case: 'version', value: 0n },
});
const rangeOp = (key: string): RequestOp => ({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: B(key) }) } });
const putOp = (key: string): RequestOp => ({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: B(key), value: B('v') }) } });

async function withApplier(body: (a: KvApplier, ended: MvccOpCounts[], stores: { live: KvStore; reopen: () => KvStore }) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-apply-metrics-'));
  const backend = Backend.open(dir, { batchIntervalMs: 60_000 });
  const ended: MvccOpCounts[] = [];
  const store = KvStore.open(backend);
  const applier = new KvApplier({
    store, leases: { exists: () => false },
    metrics: { txnEnded: (ops) => ended.push({ ranges: ops.ranges, puts: ops.puts, deletes: ops.deletes }) },
  });
  try {
    body(applier, ended, { live: store, reopen: () => KvStore.open(backend) });
  } finally {
    await store.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ops = (ranges: number, puts: number, deletes: number): MvccOpCounts => ({ ranges, puts, deletes });

test('puts, ranges and deletes, with the reads prev_kv and ignore_* make', async () => {
  await withApplier((a, ended) => {
    a.put(PutRequest.fromPartial({ key: B('a'), value: B('1') }));
    a.put(PutRequest.fromPartial({ key: B('a'), value: B('2'), prevKv: true }));
    a.put(PutRequest.fromPartial({ key: B('a'), ignoreValue: true }));
    a.range(RangeRequest.fromPartial({ key: B('a') }));
    a.deleteRange(DeleteRangeRequest.fromPartial({ key: B('a'), prevKv: true }));
    a.deleteRange(DeleteRangeRequest.fromPartial({ key: B('zz') }));
    assert.deepEqual(ended, [ops(0, 1, 0), ops(1, 1, 0), ops(1, 1, 0), ops(1, 0, 0), ops(1, 0, 1), ops(0, 0, 1)]);
  });
});

test('a put that fails its check still ends its store txn with the read it made', async () => {
  await withApplier((a, ended) => {
    assert.throws(() => a.put(PutRequest.fromPartial({ key: B('nope'), ignoreValue: true })));
    assert.deepEqual(ended, [ops(1, 0, 0)]);
  });
});

test('a txn: compares (short-circuited) in a read txn, then its ops in a write txn; read-only txns use one', async () => {
  await withApplier((a, ended) => {
    a.put(PutRequest.fromPartial({ key: B('a'), value: B('1') }));
    ended.length = 0;
    a.txn(TxnRequest.fromPartial({ compare: [exists('a')], success: [putOp('b'), rangeOp('c')] }));
    assert.deepEqual(ended, [ops(1, 0, 0), ops(1, 1, 0)]);
    ended.length = 0;
    // The second compare is never evaluated once the first fails.
    a.txn(TxnRequest.fromPartial({ compare: [exists('nope'), exists('a')], success: [rangeOp('a')], failure: [rangeOp('a'), rangeOp('b')] }));
    assert.deepEqual(ended, [ops(3, 0, 0)]);
  });
});

test('a lease revocation deletes its keys in one store txn', async () => {
  await withApplier((a, ended) => {
    a.put(PutRequest.fromPartial({ key: B('x'), value: B('1') }));
    a.put(PutRequest.fromPartial({ key: B('y'), value: B('1') }));
    ended.length = 0;
    a.deleteKeys(['x', 'y']);
    assert.deepEqual(ended, [ops(0, 0, 2)]);
  });
});

test('live keys: a put of a new key adds one, a delete removes one; a reopened store counts the same', async () => {
  await withApplier((a, _ended, { live, reopen }) => {
    a.put(PutRequest.fromPartial({ key: B('a'), value: B('1') }));
    a.put(PutRequest.fromPartial({ key: B('b'), value: B('1') }));
    a.put(PutRequest.fromPartial({ key: B('b'), value: B('2') }));
    assert.equal(live.liveKeys, 2);
    a.deleteRange(DeleteRangeRequest.fromPartial({ key: B('a') }));
    assert.equal(live.liveKeys, 1);
    a.put(PutRequest.fromPartial({ key: B('c'), value: B('1') }));
    a.txn(TxnRequest.fromPartial({ success: [putOp('a'), { request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: B('a') }) } }] }));
    assert.equal(live.liveKeys, 2);
    a.put(PutRequest.fromPartial({ key: B('a'), value: B('again') }));
    assert.equal(live.liveKeys, 3);
    const reopened = reopen();
    assert.equal(reopened.liveKeys, 3);
  });
});
