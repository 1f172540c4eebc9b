import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../base/logger.js';
import { openKvStore } from '../kv-store-impl.js';
import { AlarmStore } from './alarm-store.js';
import { AlarmRequest_AlarmAction as Action, AlarmType } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';

const opts = { log: silentLogger, batchIntervalMs: 10, batchLimit: 1000, compactionBatchLimit: 100 };
const put = (key: string, value: string) => ({
  key: Buffer.from(key), value: Buffer.from(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false,
});

test('backend hash: stable across restarts and consistent-index changes, changed by data; alarms persist in the store', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-hash-'));
  try {
    let store = await openKvStore(dir, opts);
    store.applyPut(put('a', '1'));
    store.setConsistentIndex(5, 2);
    const alarms = new AlarmStore(store.alarmRecords(), { log: silentLogger });
    alarms.apply({ action: Action.ACTIVATE, memberID: 9n, alarm: AlarmType.NOSPACE });
    store.setConsistentIndex(6, 2);
    const h1 = await store.hash();
    assert.equal(h1.revision, 2);
    store.setConsistentIndex(7, 3);
    assert.equal((await store.hash()).hash, h1.hash, 'the consistent index and its term are not hashed');
    await store.forceCommit();
    await store.close();
    store = await openKvStore(dir, opts);
    assert.equal((await store.hash()).hash, h1.hash, 'same after a restart');
    assert.deepEqual(new AlarmStore(store.alarmRecords(), { log: silentLogger }).get(), [{ memberID: 9n, alarm: AlarmType.NOSPACE }]);
    store.applyPut(put('b', '2'));
    store.setConsistentIndex(8, 3);
    assert.notEqual((await store.hash()).hash, h1.hash);
    await store.defragment();
    const after = await store.hash();
    store.applyPut(put('c', '3'));
    store.setConsistentIndex(9, 3);
    assert.notEqual((await store.hash()).hash, after.hash);
    assert.equal(store.range({ key: Buffer.from('a'), rangeEnd: Buffer.alloc(0), limit: 0n, revision: 0n, sortOrder: 0, sortTarget: 0, serializable: true, keysOnly: false, countOnly: false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n }).kvs.length, 1);
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('alarm store reload: the alarms of a replaced backend replace the old ones', () => {
  const keysA = new Map<string, Buffer>();
  const keysB = new Map<string, Buffer>();
  const records = (m: Map<string, Buffer>) => ({
    forEach: (fn: (k: Buffer) => void) => [...m.values()].forEach((k) => fn(k)),
    put: (k: Buffer) => void m.set(k.toString('hex'), k),
    delete: (k: Buffer) => void m.delete(k.toString('hex')),
  });
  const a = new AlarmStore(records(keysA), { log: silentLogger });
  a.apply({ action: Action.ACTIVATE, memberID: 1n, alarm: AlarmType.NOSPACE });
  new AlarmStore(records(keysB), { log: silentLogger }).apply({ action: Action.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
  let changes = 0;
  const watched = new AlarmStore(records(keysA), { log: silentLogger, onChange: () => void changes++ });
  watched.reload(records(keysB));
  assert.deepEqual(watched.get(), [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
  assert.equal(watched.has(AlarmType.NOSPACE), false);
  assert.equal(changes, 1);
});
