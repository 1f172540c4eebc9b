import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Event_EventType } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { KvStore } from '../mvcc/kv-store.js';
import { Backend } from '../storage/backend/backend.js';
import { mvccHistory } from './mvcc-history.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

test('history is read in batches that end on revision boundaries, filtered by key, with prev_kv lookups honouring compaction', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mvcc-history-test-'));
  const backend = Backend.open(dir);
  const kv = KvStore.open(backend, { compactionPauseMs: 0 });
  try {
    const h = mvccHistory(() => kv);
    const txn = (ops: Array<[string, string | null]>): void => {
      const t = kv.write();
      for (const [k, v] of ops) if (v === null) t.deleteRange(B(k), undefined); else t.put(B(k), B(v), 0n);
      t.end();
    };
    txn([['a', '1']]); // 2
    txn([['a', '2'], ['b', '1'], ['c', '1']]); // 3: three records
    txn([['a', null], ['b', '2']]); // 4
    txn([['c', '2']]); // 5
    const all = (): boolean => true;
    const show = (r: ReturnType<typeof h.changes>): string =>
      `${r.events.map((e) => `${e.type === Event_EventType.PUT ? 'P' : 'D'}${e.kv!.key.toString()}@${e.kv!.modRevision}`).join(' ')} | ${r.lastRev}`;
    assert.equal(show(h.changes(2, { toRev: 5, recordsMax: 100, bytesMax: 1e6, wanted: all })), 'Pa@2 Pa@3 Pb@3 Pc@3 Da@4 Pb@4 Pc@5 | 5');
    // Two records asked for: revision 3 is still read whole.
    assert.equal(show(h.changes(2, { toRev: 5, recordsMax: 2, bytesMax: 1e6, wanted: all })), 'Pa@2 Pa@3 Pb@3 Pc@3 | 3');
    assert.equal(show(h.changes(4, { toRev: 5, recordsMax: 1, bytesMax: 1e6, wanted: all })), 'Da@4 Pb@4 | 4');
    assert.equal(show(h.changes(2, { toRev: 4, recordsMax: 100, bytesMax: 1e6, wanted: (k) => k === 'b' })), 'Pb@3 Pb@4 | 4');
    assert.equal(show(h.changes(6, { toRev: 5, recordsMax: 100, bytesMax: 1e6, wanted: all })), ' | 5');
    assert.equal(h.kvAt(B('a'), 3)?.value.toString(), '2');
    assert.equal(h.kvAt(B('a'), 4), undefined);
    await kv.compact(4).done;
    assert.equal(h.kvAt(B('b'), 3), undefined, 'revision 3 is compacted');
    assert.equal(h.kvAt(B('b'), 4)?.value.toString(), '2');
    // As etcd: compaction at 4 drops the tombstone at 4 (the key is dead there); what it kept is read.
    assert.equal(show(h.changes(4, { toRev: 5, recordsMax: 100, bytesMax: 1e6, wanted: all })), 'Pb@4 Pc@5 | 5');
  } finally {
    await kv.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
