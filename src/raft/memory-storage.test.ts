import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError } from './contract.js';
import { MemoryStorage } from './memory-storage.js';
import { confStateOf } from './rafttest/cluster.js';
import type { Entry } from './types.js';
import { EntryType } from './types.js';

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

/** Storage holding entries 3..5 (terms 3,4,5) after a snapshot at index 3. */
function seeded(): MemoryStorage {
  const s = new MemoryStorage();
  s.append([ent(1, 1), ent(2, 2), ent(3, 3), ent(4, 4), ent(5, 5)]);
  s.createSnapshot(3, { confState: confStateOf([1n]), data: new Uint8Array() });
  s.compact(3);
  return s;
}

const isErr = (reason: string) => (e: unknown) => e instanceof StorageError && e.reason === reason;

test('term: compacted below the snapshot, unavailable past the end', () => {
  const s = seeded();
  assert.throws(() => s.term(2), isErr('compacted'));
  assert.equal(s.term(3), 3);
  assert.equal(s.term(5), 5);
  assert.throws(() => s.term(6), isErr('unavailable'));
});

test('entries: bounds, and the byte limit always lets one entry through', () => {
  const s = new MemoryStorage();
  s.append([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')]);
  assert.equal(s.entries(1, 4, Number.MAX_SAFE_INTEGER).length, 3);
  assert.equal(s.entries(1, 4, 1).length, 1);
  // Each entry counts payload + framing (16 bytes here): two fit in 32.
  assert.equal(s.entries(1, 4, 32).length, 2);
  const c = seeded();
  assert.throws(() => c.entries(3, 5, 100), isErr('compacted'));
  assert.deepEqual(c.entries(4, 6, 1000).map((e) => e.index), [4, 5]);
});

test('first/last index follow compaction and append', () => {
  const s = seeded();
  assert.equal(s.firstIndex(), 4);
  assert.equal(s.lastIndex(), 5);
  s.compact(4);
  assert.equal(s.firstIndex(), 5);
  assert.throws(() => s.compact(4), isErr('compacted'));
});

test('append: overlapping entries replace the conflicting tail; entries below the snapshot are ignored', () => {
  const s = seeded();
  s.append([ent(3, 3), ent(4, 6), ent(5, 6)]);
  assert.deepEqual([s.term(4), s.term(5)], [6, 6]);
  s.append([ent(6, 6)]);
  assert.equal(s.lastIndex(), 6);
  s.append([ent(5, 7)]);
  assert.equal(s.lastIndex(), 5);
  assert.equal(s.term(5), 7);
  s.append([ent(1, 1), ent(2, 2)]);
  assert.equal(s.lastIndex(), 5);
  assert.throws(() => s.append([ent(8, 7)]), /missing log entry/);
});

test('createSnapshot and applySnapshot refuse out-of-date snapshots', () => {
  const s = seeded();
  assert.throws(() => s.createSnapshot(3, { confState: null, data: new Uint8Array() }), isErr('snapshot-out-of-date'));
  const snap = s.createSnapshot(5, { confState: null, data: new Uint8Array([1]) });
  assert.equal(snap.metadata.term, 5);
  assert.deepEqual(snap.metadata.confState.voters, [1n]);
  const t = new MemoryStorage();
  t.applySnapshot(snap);
  assert.equal(t.firstIndex(), 6);
  assert.equal(t.lastIndex(), 5);
  assert.equal(t.term(5), 5);
  assert.throws(() => t.applySnapshot(snap), isErr('snapshot-out-of-date'));
  assert.deepEqual(t.initialState().confState.voters, [1n]);
});
