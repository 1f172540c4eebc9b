/**
 * Each expectation below is what etcd 3.4.23 answered to the same requests (recorded with a gRPC client
 * against /usr/bin/etcd); kv-apply-oracle.test.ts compares against a live etcd when one is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type ErrorKind, isEtcdError } from '../../base/errors.js';
import {
  type Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  type RangeRequest_SortOrder,
  type RangeRequest_SortTarget,
  type RequestOp,
  type ResponseOp,
  TxnRequest,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { type KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import { KvStore } from '../../mvcc/kv-store.js';
import { Backend } from '../../storage/backend/backend.js';
import { KvApplier } from './kv-apply.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const Z = Buffer.from([0]);
const R = (o: Partial<RangeRequest>) => RangeRequest.fromPartial(o);
const P = (o: Partial<PutRequest>) => PutRequest.fromPartial(o);
const D = (o: Partial<DeleteRangeRequest>) => DeleteRangeRequest.fromPartial(o);
const T = (o: Partial<TxnRequest>) => TxnRequest.fromPartial(o);
const op = {
  range: (o: Partial<RangeRequest>): RequestOp => ({ request: { $case: 'requestRange', value: R(o) } }),
  put: (o: Partial<PutRequest>): RequestOp => ({ request: { $case: 'requestPut', value: P(o) } }),
  del: (o: Partial<DeleteRangeRequest>): RequestOp => ({ request: { $case: 'requestDeleteRange', value: D(o) } }),
  txn: (o: Partial<TxnRequest>): RequestOp => ({ request: { $case: 'requestTxn', value: T(o) } }),
};
const cmp = (key: string, target: number, result: number, union: Compare['targetUnion'], rangeEnd = Buffer.alloc(0)): Compare => ({ key: B(key), rangeEnd, target, result, targetUnion: union });

function kvs(list: KeyValue[]): string[] {
  return list.map((kv) => `${kv.key}=${kv.value}@c${kv.createRevision}m${kv.modRevision}v${kv.version}`);
}

function kindOf(fn: () => unknown): ErrorKind | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(isEtcdError(e), String(e));
    return e.kind;
  }
}

async function withApplier(fn: (a: KvApplier, store: KvStore, leases: Set<bigint>) => Promise<void> | void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvapply-test-'));
  const backend = Backend.open(dir);
  const store = KvStore.open(backend, { compactionPauseMs: 0 });
  const leases = new Set<bigint>();
  try {
    await fn(new KvApplier({ store, leases: { exists: (id) => leases.has(id) } }), store, leases);
  } finally {
    await store.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function seed(a: KvApplier): void {
  for (const k of ['a', 'b', 'c']) a.put(P({ key: B(k), value: B('v' + k) }));
  a.put(P({ key: B('a'), value: B('va2') }));
}

test('txns that write nothing keep the revision; deleting nothing deletes nothing', async () => {
  await withApplier((a) => {
    seed(a);
    const empty = a.txn(T({})).response;
    assert.deepEqual([empty.header?.revision, empty.succeeded, empty.responses.length], [5n, true, 0]);
    const onlyRange = a.txn(T({ success: [op.range({ key: B('a') })] })).response;
    assert.equal(onlyRange.header?.revision, 5n);
    const inner = onlyRange.responses[0]!.response;
    assert.ok(inner?.$case === 'responseRange');
    assert.deepEqual([inner.value.header?.revision, inner.value.header?.clusterId], [5n, 0n]);
    const del = a.deleteRange(D({ key: B('zzz') }));
    assert.deepEqual([del.response.header?.revision, del.response.deleted, del.events.length], [5n, 0n, 0]);
    assert.equal(a.txn(T({ success: [op.del({ key: B('zz') })] })).response.header?.revision, 5n);
  });
});

test('compares: unknown target compares equal, unknown result holds, mismatched union compares with zero, absent keys', async () => {
  await withApplier((a) => {
    seed(a);
    const ok = (c: Compare) => a.txn(T({ compare: [c] })).response.succeeded;
    assert.equal(ok(cmp('a', 9, 0, { $case: 'version', value: 2n })), true);
    assert.equal(ok(cmp('a', 0, 9, { $case: 'version', value: 2n })), true);
    assert.equal(ok(cmp('a', 0, 0, { $case: 'value', value: B('x') })), false);
    assert.equal(ok(cmp('a', 0, 0, { $case: 'version', value: 2n })), true);
    assert.equal(ok(cmp('nokey', 0, 0, { $case: 'version', value: 0n })), true);
    assert.equal(ok(cmp('nokey', 3, 0, { $case: 'value', value: B('') })), false);
    assert.equal(ok(cmp('nokey', 3, 3, { $case: 'value', value: B('x') })), false);
    assert.equal(ok(cmp('a', 2, 1, { $case: 'modRevision', value: 0n }, B('z'))), true);
    assert.equal(ok(cmp('a', 0, 1, { $case: 'version', value: 0n }, Z)), true);
    assert.equal(ok(cmp('a', 0, 1, { $case: 'version', value: 1n }, Z)), false, 'every key in range must hold');
    assert.equal(ok(cmp('x', 1, 0, { $case: 'createRevision', value: 0n }, B('y'))), true);
    assert.equal(ok(cmp('a', 4, 0, { $case: 'lease', value: 0n })), true);
    assert.equal(ok(cmp('a', 1, 1, undefined)), true);
    assert.equal(ok(cmp('a', 3, 2, { $case: 'value', value: B('vb') })), true, 'va2 < vb');
  });
});

test('put: lease and ignore checks, prev_kv, ignore_value keeps the value', async () => {
  await withApplier((a, _s, leases) => {
    seed(a);
    assert.equal(kindOf(() => a.put(P({ key: B('nokey'), ignoreValue: true }))), 'KeyNotFound');
    assert.equal(kindOf(() => a.put(P({ key: B('nokey'), ignoreLease: true }))), 'KeyNotFound');
    assert.equal(kindOf(() => a.put(P({ key: B('a'), lease: 12345n }))), 'LeaseNotFound');
    assert.equal(kindOf(() => a.put(P({ key: B('nokey'), lease: 12345n, ignoreValue: true }))), 'LeaseNotFound', 'lease first outside a txn');
    assert.equal(kindOf(() => a.txn(T({ success: [op.put({ key: B('nokey'), lease: 12345n, ignoreValue: true })] }))), 'KeyNotFound', 'key first inside a txn');
    const fresh = a.put(P({ key: B('e'), value: B('x'), prevKv: true }));
    assert.deepEqual([fresh.response.header?.revision, fresh.response.prevKv], [6n, undefined]);
    const again = a.put(P({ key: B('e'), value: B('y'), prevKv: true }));
    assert.deepEqual(kvs([again.response.prevKv!]), ['e=x@c6m6v1']);
    leases.add(77n);
    a.put(P({ key: B('e'), ignoreValue: true, lease: 77n }));
    const kept = a.put(P({ key: B('e'), value: B('z'), ignoreLease: true }));
    assert.equal(kept.events[0]!.kv!.lease, 77n);
    assert.deepEqual(kvs(a.range(R({ key: B('e') })).kvs), ['e=z@c6m9v4']);
    assert.equal(a.range(R({ key: B('e') })).kvs[0]!.lease, 77n);
  });
});

test('range: limit and more, count ignores limit and filters, keys_only, count_only, sort defaults', async () => {
  await withApplier((a) => {
    seed(a);
    a.txn(T({ success: [op.put({ key: B('d'), value: B('vd') }), op.del({ key: B('b') })] }));
    const filtered = a.range(R({ key: B('a'), rangeEnd: Z, limit: 1n, minModRevision: 5n }));
    assert.deepEqual([kvs(filtered.kvs), filtered.more, filtered.count], [['a=va2@c2m5v2'], true, 3n]);
    const counted = a.range(R({ key: B('a'), rangeEnd: Z, limit: 1n, countOnly: true }));
    assert.deepEqual([counted.kvs.length, counted.more, counted.count], [0, false, 3n]);
    const keysOnly = a.range(R({ key: B('a'), rangeEnd: Z, keysOnly: true, limit: 2n }));
    assert.deepEqual([kvs(keysOnly.kvs), keysOnly.more], [['a=@c2m5v2', 'c=@c4m4v1'], true]);
    const byVersion = a.range(R({ key: B('a'), rangeEnd: Z, sortTarget: 1, limit: 2n }));
    assert.deepEqual([kvs(byVersion.kvs), byVersion.more], [['c=vc@c4m4v1', 'd=vd@c6m6v1'], true], 'target alone sorts ascending');
    const desc = a.range(R({ key: B('a'), rangeEnd: Z, sortOrder: 2, sortTarget: 4, limit: 2n }));
    assert.deepEqual(kvs(desc.kvs), ['d=vd@c6m6v1', 'c=vc@c4m4v1']);
    assert.deepEqual(kvs(a.range(R({ key: B('a'), rangeEnd: Z, sortOrder: 2 })).kvs).map((s) => s[0]), ['d', 'c', 'a']);
    assert.deepEqual(a.range(R({ key: B('z'), rangeEnd: B('a') })).count, 0n);
    assert.equal(a.range(R({ key: B('a'), rangeEnd: Z, maxCreateRevision: -1n })).kvs.length, 0);
    assert.equal(a.range(R({ key: B('a'), rangeEnd: Z, limit: -1n })).kvs.length, 3);
    // etcd 3.4: an order it does not know leaves the keys in key order; an unknown target is refused.
    assert.deepEqual(kvs(a.range(R({ key: B('a'), rangeEnd: Z, sortOrder: 5 as RangeRequest_SortOrder, sortTarget: 4 })).kvs).map((s) => s[0]), ['a', 'c', 'd']);
    assert.equal(kindOf(() => a.range(R({ key: B('a'), sortOrder: 1, sortTarget: 9 as RangeRequest_SortTarget }))), 'InvalidSortOption');
    assert.equal(kindOf(() => a.range(R({ key: B('a'), revision: 1000n }))), 'FutureRev');
    assert.equal(kindOf(() => a.range(R({ key: B('a'), revision: 2n ** 62n }))), 'FutureRev');
    assert.equal(a.range(R({ key: B('a'), revision: -1n })).header?.revision, 6n);
  });
});

test('txn: one revision, reads see earlier writes of the txn, sub-response headers as etcd', async () => {
  await withApplier((a) => {
    seed(a);
    const { response, events } = a.txn(
      T({ success: [op.put({ key: B('d'), value: B('vd') }), op.range({ key: B('a'), rangeEnd: B('z') }), op.del({ key: B('b') }), op.range({ key: B('a'), rangeEnd: B('z'), countOnly: true })] }),
    );
    assert.equal(response.header?.revision, 6n);
    const [p, r1, d, r2] = response.responses.map((x: ResponseOp) => x.response);
    assert.ok(p?.$case === 'responsePut' && r1?.$case === 'responseRange' && d?.$case === 'responseDeleteRange' && r2?.$case === 'responseRange');
    assert.equal(p.value.header?.revision, 6n);
    assert.deepEqual(kvs(r1.value.kvs), ['a=va2@c2m5v2', 'b=vb@c3m3v1', 'c=vc@c4m4v1', 'd=vd@c6m6v1']);
    assert.deepEqual([d.value.deleted, r2.value.count], [1n, 3n]);
    assert.equal(events.length, 2);
    const before = a.txn(T({ success: [op.range({ key: B('q') }), op.put({ key: B('q'), value: B('1') })] })).response;
    const rr = before.responses[0]!.response;
    assert.ok(rr?.$case === 'responseRange');
    assert.deepEqual([rr.value.header?.revision, before.header?.revision], [6n, 7n], 'a range before any write reports the old revision');
    const nested = a.txn(
      T({
        success: [
          op.txn({ compare: [cmp('a', 0, 1, { $case: 'version', value: 0n })], success: [op.put({ key: B('n1'), value: B('x') })], failure: [op.put({ key: B('n2'), value: B('y') })] }),
          op.range({ key: B('n'), rangeEnd: B('o') }),
        ],
      }),
    ).response;
    const inner = nested.responses[0]!.response;
    assert.ok(inner?.$case === 'responseTxn');
    assert.deepEqual([inner.value.header?.revision, inner.value.succeeded, nested.header?.revision], [0n, true, 8n], 'nested txn headers stay zero');
  });
});

test('ignore_value of a key an earlier from-key delete removed: KeyNotFound before any write (etcd 3.4 panics)', async () => {
  await withApplier((a, store) => {
    a.put(P({ key: B('b'), value: B('1') }));
    const req = T({ success: [op.del({ key: B('a'), rangeEnd: Z }), op.put({ key: B('b'), ignoreValue: true })] });
    assert.equal(kindOf(() => a.txn(req)), 'KeyNotFound');
    assert.equal(store.revision, 2);
    const nested = T({ success: [op.del({ key: B('a'), rangeEnd: Z }), op.txn({ success: [op.put({ key: B('b'), ignoreLease: true })] })] });
    assert.equal(kindOf(() => a.txn(nested)), 'KeyNotFound');
    const before = T({ success: [op.put({ key: B('b'), ignoreValue: true }), op.del({ key: B('a'), rangeEnd: Z })] });
    assert.equal(a.txn(before).response.header?.revision, 3n, 'a delete after the put is fine');
  });
});

test('nested compares see the state before the outer txn writes', async () => {
  await withApplier((a) => {
    const res = a.txn(T({ success: [op.put({ key: B('k'), value: B('1') }), op.txn({ compare: [cmp('k', 0, 0, { $case: 'version', value: 0n })], success: [op.put({ key: B('yes'), value: B('1') })] })] })).response;
    const inner = res.responses[1]!.response;
    assert.ok(inner?.$case === 'responseTxn');
    assert.equal(inner.value.succeeded, true, 'k did not exist before the txn');
  });
});

test('compaction and revisions in ranges and txns', async () => {
  await withApplier(async (a, store) => {
    seed(a);
    a.txn(T({ success: [op.put({ key: B('d'), value: B('vd') })] }));
    assert.equal(kindOf(() => a.compact({ revision: 1000n, physical: false })), 'FutureRev');
    const c = a.compact({ revision: 4n, physical: true });
    assert.equal(c.response.header?.revision, 6n);
    await c.physicalDone;
    assert.equal(kindOf(() => a.compact({ revision: 4n, physical: false })), 'Compacted');
    assert.equal(kindOf(() => a.compact({ revision: 3n, physical: false })), 'Compacted');
    assert.equal(kindOf(() => a.compact({ revision: -1n, physical: false })), 'Compacted');
    assert.equal(kindOf(() => a.range(R({ key: B('a'), revision: 3n }))), 'Compacted');
    assert.deepEqual(kvs(a.range(R({ key: B('a'), revision: 4n })).kvs), ['a=va@c2m2v1']);
    assert.equal(kindOf(() => a.txn(T({ success: [op.range({ key: B('a'), revision: 3n })] }))), 'Compacted');
    assert.equal(kindOf(() => a.txn(T({ success: [op.range({ key: B('a'), revision: 1000n })] }))), 'FutureRev');
    assert.equal(kindOf(() => a.txn(T({ success: [op.put({ key: B('e'), value: B('x') }), op.range({ key: B('a'), revision: 7n })] }))), 'FutureRev');
    assert.equal(store.revision, 6, 'a txn failing its checks writes nothing');
  });
});

test('compact at 0 on a fresh store is allowed once, as in etcd', async () => {
  await withApplier((a) => {
    assert.equal(a.compact({ revision: 0n, physical: false }).response.header?.revision, 1n);
    assert.equal(kindOf(() => a.compact({ revision: 0n, physical: false })), 'Compacted');
    assert.equal(kindOf(() => a.compact({ revision: 1n, physical: false })), 'ok');
    assert.equal(a.range(R({ key: B('a'), revision: 1n })).count, 0n);
  });
});

test('delete range: from-key, prev_kv and events carry prevKv when asked', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kvapply-test-'));
  const backend = Backend.open(dir);
  const store = KvStore.open(backend);
  try {
    const a = new KvApplier({ store, leases: { exists: () => false }, prevKvInEvents: () => true });
    for (const k of ['b', 'c', 'd']) a.put(P({ key: B(k), value: B('v' + k) }));
    const { response, events } = a.deleteRange(D({ key: B('c'), rangeEnd: Z, prevKv: true }));
    assert.deepEqual([response.deleted, kvs(response.prevKvs), response.header?.revision], [2n, ['c=vc@c3m3v1', 'd=vd@c4m4v1'], 5n]);
    assert.deepEqual(events.map((e) => [e.type, kvs([e.kv!]), kvs([e.prevKv!])]), [
      [1, ['c=@c0m5v0'], ['c=vc@c3m3v1']],
      [1, ['d=@c0m5v0'], ['d=vd@c4m4v1']],
    ]);
  } finally {
    await store.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
