import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../base/logger.js';
import { isEtcdError } from '../../base/errors.js';
import {
  AlarmMember,
  AlarmRequest_AlarmAction as Action,
  AlarmType,
  type PutRequest,
  type TxnRequest,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { RaftRequest } from '../../gen/etcdts/internal.js';
import { AlarmStore, alarmText, type AlarmRecords } from './alarm-store.js';
import { MaintenanceApplyStage, type StageOutcome } from './maintenance-apply.js';
import { BackendQuota, effectiveQuotaBytes, quotaCost, quotaLimits } from './quota.js';

function memoryRecords(): AlarmRecords & { keys: Map<string, Buffer> } {
  const keys = new Map<string, Buffer>();
  return {
    keys,
    forEach: (fn) => [...keys.values()].forEach((k) => fn(k)),
    put: (k) => void keys.set(k.toString('hex'), k),
    delete: (k) => void keys.delete(k.toString('hex')),
  };
}

const put = (key: string, value: string): PutRequest => ({
  key: Buffer.from(key), value: Buffer.from(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false,
});
const txn = (ops: TxnRequest['success']): TxnRequest => ({ compare: [], success: ops, failure: [] });
const req = (request: RaftRequest['request']): RaftRequest => ({ id: 1n, request, deadlineUnixMs: 0n, authUser: '', authRevision: 0n });

test('alarm store: activate is idempotent, persisted as etcd\'s encoded AlarmMember, reloaded, deactivated', () => {
  const records = memoryRecords();
  const store = new AlarmStore(records, { log: silentLogger });
  const r1 = store.apply({ action: Action.ACTIVATE, memberID: 7n, alarm: AlarmType.NOSPACE });
  assert.deepEqual(r1.alarms, [{ memberID: 7n, alarm: AlarmType.NOSPACE }]);
  assert.equal(r1.header, undefined, 'etcd answers alarm requests without a header');
  store.apply({ action: Action.ACTIVATE, memberID: 7n, alarm: AlarmType.NOSPACE });
  store.apply({ action: Action.ACTIVATE, memberID: 3n, alarm: AlarmType.NOSPACE });
  store.apply({ action: Action.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
  assert.equal(records.keys.size, 3);
  assert.deepEqual([...records.keys.values()].map((k) => AlarmMember.decode(k).memberID).sort(), [0n, 3n, 7n]);
  const all = store.apply({ action: Action.GET, memberID: 0n, alarm: AlarmType.NONE }).alarms;
  assert.deepEqual(all.map((m) => [m.alarm, m.memberID]), [[AlarmType.NOSPACE, 3n], [AlarmType.NOSPACE, 7n], [AlarmType.CORRUPT, 0n]]);
  assert.deepEqual(store.apply({ action: Action.GET, memberID: 0n, alarm: AlarmType.CORRUPT }).alarms, [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
  const again = new AlarmStore(records, { log: silentLogger });
  assert.deepEqual(again.get(), store.get(), 'reloaded from the bucket');
  assert.deepEqual(store.apply({ action: Action.DEACTIVATE, memberID: 7n, alarm: AlarmType.NOSPACE }).alarms, [{ memberID: 7n, alarm: AlarmType.NOSPACE }]);
  assert.deepEqual(store.apply({ action: Action.DEACTIVATE, memberID: 7n, alarm: AlarmType.NOSPACE }).alarms, []);
  assert.equal(store.has(AlarmType.NOSPACE), true);
  store.apply({ action: Action.DEACTIVATE, memberID: 3n, alarm: AlarmType.NOSPACE });
  assert.equal(store.has(AlarmType.NOSPACE), false);
  assert.equal(records.keys.size, 1);
  assert.equal(alarmText({ memberID: 9830718245168822281n, alarm: AlarmType.NOSPACE }), 'memberID:9830718245168822281 alarm:NOSPACE ');
  assert.equal(alarmText({ memberID: 0n, alarm: AlarmType.CORRUPT }), 'alarm:CORRUPT ', 'zero fields are left out, as Go prints them');
});

test('quota: etcd\'s cost estimates and the strict size + cost < quota comparison', () => {
  assert.equal(quotaCost({ $case: 'put', value: put('ab', 'xyz') }), 256 + 5);
  const t = txn([{ request: { $case: 'requestPut', value: put('a', 'b') } }, { request: { $case: 'requestPut', value: put('c', 'dd') } }]);
  assert.equal(quotaCost({ $case: 'txn', value: { ...t, failure: [{ request: { $case: 'requestPut', value: put('k', 'v') } }] } }), 256 * 2 + 2 + 3);
  assert.equal(quotaCost({ $case: 'txn', value: txn([{ request: { $case: 'requestTxn', value: t } }]) }), 0, 'nested txns are not counted');
  assert.equal(quotaCost({ $case: 'leaseGrant', value: { TTL: 5n, ID: 0n } }), 64);
  let size = 1000;
  const q = new BackendQuota({ quotaBytes: 1300, sizeBytes: () => size });
  assert.equal(q.available({ $case: 'leaseGrant', value: { TTL: 5n, ID: 0n } }), true);
  assert.equal(q.available({ $case: 'put', value: put('a', 'x'.repeat(42)) }), true);
  assert.equal(q.available({ $case: 'put', value: put('a', 'x'.repeat(43)) }), false, '1000 + 300 is not below 1300');
  size = 0;
  assert.equal(q.available({ $case: 'put', value: put('a', 'x'.repeat(43)) }), true);
  assert.equal(effectiveQuotaBytes(0), quotaLimits.defaultBytes);
  assert.equal(effectiveQuotaBytes(-1), Infinity);
  assert.equal(effectiveQuotaBytes(5), 5);
});

function stage(opts: { size: number; quota: number }) {
  const alarms = new AlarmStore(memoryRecords(), { log: silentLogger });
  const proposed: unknown[] = [];
  const s = new MaintenanceApplyStage({
    alarms, quota: new BackendQuota({ quotaBytes: opts.quota, sizeBytes: () => opts.size }), localId: 42n,
    proposeAlarm: async (r) => {
      proposed.push(r);
      return alarms.apply(r);
    },
  });
  let applied = 0;
  const next = (): StageOutcome => {
    applied++;
    return { value: 'ok' };
  };
  return { s, alarms, proposed, next, applied: () => applied };
}

test('apply stage: a write past the quota is applied, answered NoSpace once this member raised NOSPACE', async () => {
  const t = stage({ size: 1000, quota: 1100 });
  const out = t.s.apply(req({ $case: 'put', value: put('k', 'v') }), t.next);
  assert.equal(t.applied(), 1, 'etcd applies the write and then reports NoSpace');
  assert.ok(isEtcdError(out.error, 'NoSpace'));
  await out.after;
  assert.deepEqual(t.proposed, [{ action: Action.ACTIVATE, memberID: 42n, alarm: AlarmType.NOSPACE }]);
  assert.equal(t.alarms.has(AlarmType.NOSPACE), true);
});

test('apply stage: NOSPACE refuses puts, txns with puts and lease grants; deletes, reads, compaction pass', () => {
  const t = stage({ size: 0, quota: 1 << 30 });
  t.alarms.apply({ action: Action.ACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
  assert.ok(isEtcdError(t.s.apply(req({ $case: 'put', value: put('k', 'v') }), t.next).error, 'NoSpace'));
  assert.ok(isEtcdError(t.s.apply(req({ $case: 'leaseGrant', value: { TTL: 5n, ID: 1n } }), t.next).error, 'NoSpace'));
  assert.ok(isEtcdError(t.s.apply(req({ $case: 'txn', value: txn([{ request: { $case: 'requestPut', value: put('a', 'b') } }]) }), t.next).error, 'NoSpace'));
  assert.equal(t.applied(), 0);
  const del = { key: Buffer.from('k'), rangeEnd: Buffer.alloc(0), prevKv: false };
  assert.equal(t.s.apply(req({ $case: 'deleteRange', value: del }), t.next).value, 'ok');
  assert.equal(t.s.apply(req({ $case: 'txn', value: txn([{ request: { $case: 'requestDeleteRange', value: del } }]) }), t.next).value, 'ok');
  assert.equal(t.s.apply(req({ $case: 'compaction', value: { revision: 1n, physical: false } }), t.next).value, 'ok');
  assert.equal(t.s.apply(req({ $case: 'leaseRevoke', value: { ID: 1n } }), t.next).value, 'ok');
  const disarm = t.s.apply(req({ $case: 'alarm', value: { action: Action.DEACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE } }), t.next);
  assert.equal((disarm.value as { alarms: unknown[] }).alarms.length, 1);
  assert.equal(t.s.apply(req({ $case: 'put', value: put('k', 'v') }), t.next).value, 'ok', 'writes resume once disarmed');
});

test('apply stage: CORRUPT refuses every write, compaction and lease change', () => {
  const t = stage({ size: 0, quota: 1 << 30 });
  t.alarms.apply({ action: Action.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
  const del = { key: Buffer.from('k'), rangeEnd: Buffer.alloc(0), prevKv: false };
  for (const r of [
    req({ $case: 'put', value: put('k', 'v') }),
    req({ $case: 'deleteRange', value: del }),
    req({ $case: 'compaction', value: { revision: 1n, physical: false } }),
    req({ $case: 'leaseGrant', value: { TTL: 5n, ID: 1n } }),
    req({ $case: 'leaseRevoke', value: { ID: 1n } }),
  ]) {
    assert.ok(isEtcdError(t.s.apply(r, t.next).error, 'Corrupt'), r.request?.$case);
  }
  assert.equal(t.applied(), 0);
  assert.equal(t.s.apply(req({ $case: 'clusterVersion', value: { version: '3.4.0' } }), t.next).value, 'ok');
});
