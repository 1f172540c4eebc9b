import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Unstable } from './log-unstable.js';
import { SILENT_LOGGER } from './logger.js';
import { EMPTY_SNAPSHOT } from './memory-storage.js';
import type { Entry, Snapshot } from './types.js';
import { EntryType } from './types.js';

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array() });
const snap = (index: number, term: number): Snapshot => ({ data: new Uint8Array(), metadata: { ...EMPTY_SNAPSHOT.metadata, index, term } });

function unstable(offset: number, ents: Entry[], s: Snapshot | null = null): Unstable {
  const u = new Unstable(offset, SILENT_LOGGER);
  if (s !== null) u.restore(s);
  if (ents.length > 0) u.truncateAndAppend(ents);
  return u;
}

test('maybe first/last index and term consult the snapshot and entries', () => {
  const u = unstable(5, [ent(5, 1)], snap(4, 1));
  assert.equal(u.maybeFirstIndex(), 5);
  assert.equal(u.maybeLastIndex(), 5);
  assert.equal(u.maybeTerm(4), 1);
  assert.equal(u.maybeTerm(5), 1);
  assert.equal(u.maybeTerm(6), undefined);
  assert.equal(u.maybeTerm(3), undefined);
  const empty = unstable(5, []);
  assert.equal(empty.maybeFirstIndex(), undefined);
  assert.equal(empty.maybeLastIndex(), undefined);
});

test('nextEntries hands out only what is not in progress; the array is shared, not copied', () => {
  const u = unstable(5, [ent(5, 1), ent(6, 1)]);
  const first = u.nextEntries();
  assert.equal(first, u.entries);
  u.acceptInProgress();
  assert.equal(u.nextEntries().length, 0);
  u.appendOne(ent(7, 1));
  // Copy-on-write: the handed-out array is not mutated by later appends.
  assert.equal(first.length, 2);
  assert.deepEqual(u.nextEntries().map((e) => e.index), [7]);
});

test('stableTo drops persisted entries, ignores stale or mismatched acks', () => {
  const u = unstable(5, [ent(5, 1), ent(6, 1), ent(7, 2)]);
  u.stableTo(6, 2); // wrong term
  assert.equal(u.offset, 5);
  u.stableTo(6, 1);
  assert.equal(u.offset, 7);
  assert.deepEqual(u.entries.map((e) => e.index), [7]);
  u.stableTo(4, 1); // not in the unstable log
  assert.equal(u.offset, 7);
  u.stableTo(7, 2);
  assert.equal(u.entries.length, 0);
  assert.equal(u.offset, 8);
});

test('truncateAndAppend: append, replace everything, or truncate then append', () => {
  const u = unstable(5, [ent(5, 1), ent(6, 1), ent(7, 1)]);
  u.acceptInProgress();
  u.truncateAndAppend([ent(6, 2), ent(7, 2)]);
  assert.deepEqual(u.entries.map((e) => `${e.index}/${e.term}`), ['5/1', '6/2', '7/2']);
  // Truncated entries that were in progress are new again.
  assert.equal(u.offsetInProgress, 6);
  u.truncateAndAppend([ent(4, 3)]);
  assert.equal(u.offset, 4);
  assert.deepEqual(u.entries.map((e) => `${e.index}/${e.term}`), ['4/3']);
  u.truncateAndAppend([ent(5, 3)]);
  assert.equal(u.entries.length, 2);
});

test('restore replaces everything with the snapshot; stableSnapTo clears it', () => {
  const u = unstable(5, [ent(5, 1)]);
  u.restore(snap(6, 2));
  assert.equal(u.offset, 7);
  assert.equal(u.entries.length, 0);
  assert.equal(u.nextSnapshot()?.metadata.index, 6);
  u.acceptInProgress();
  assert.equal(u.nextSnapshot(), null);
  u.stableSnapTo(6);
  assert.equal(u.snapshot, null);
});
