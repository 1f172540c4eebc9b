import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StorageError } from './contract.js';
import { RaftLog } from './log.js';
import { SILENT_LOGGER } from './logger.js';
import { MemoryStorage } from './memory-storage.js';
import { confStateOf } from './rafttest/cluster.js';
import type { Entry } from './types.js';
import { EntryType } from './types.js';

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: new TextEncoder().encode(data) });

function newLog(stored: Entry[] = [], opts: { maxApplyingEntsBytes?: number } = {}): { log: RaftLog; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.append(stored);
  const log = new RaftLog(storage, { logger: SILENT_LOGGER, maxApplyingEntsBytes: opts.maxApplyingEntsBytes ?? 1 << 30 });
  return { log, storage };
}

test('findConflict: first mismatching or new entry, 0 when all present', () => {
  const { log } = newLog([ent(1, 1), ent(2, 2), ent(3, 3)]);
  assert.equal(log.findConflict([ent(1, 1), ent(2, 2)]), 0);
  assert.equal(log.findConflict([ent(2, 2), ent(3, 3), ent(4, 4)]), 4);
  assert.equal(log.findConflict([ent(2, 2), ent(3, 4)]), 3);
  assert.equal(log.findConflict([ent(1, 4)]), 1);
});

test('findConflictByTerm: largest index with term <= the given term', () => {
  // terms: idx 1..6 -> 1,1,2,2,5,5
  const { log } = newLog([ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 5), ent(6, 5)]);
  assert.equal(log.findConflictByTerm(6, 4), 4);
  assert.equal(log.findConflictByTerm(6, 5), 6);
  assert.equal(log.findConflictByTerm(6, 1), 2);
  assert.equal(log.findConflictByTerm(6, 0), 0);
});

test('maybeAppend: log-matching check, conflict truncation, commit capped by the last new entry', () => {
  const { log } = newLog([ent(1, 1), ent(2, 2), ent(3, 3)]);
  assert.equal(log.maybeAppend(3, 2, 3, [ent(4, 4)]), undefined, 'mismatching prev term');
  assert.equal(log.maybeAppend(4, 3, 3, []), undefined, 'prev index beyond last');
  assert.equal(log.maybeAppend(3, 3, 3, [ent(4, 4)]), 4);
  assert.equal(log.committed, 3);
  // Entry 4 conflicts (term 4 vs 5): the tail is replaced; the commit is capped by the last new entry.
  assert.equal(log.maybeAppend(2, 2, 10, [ent(3, 3), ent(4, 5)]), 4);
  assert.equal(log.term(4), 5);
  assert.equal(log.committed, 4);
  assert.throws(() => log.maybeAppend(1, 1, 4, [ent(2, 9)]), /conflict with committed entry/);
});

test('term(): undefined outside [snapshot index, last index]', () => {
  const { log, storage } = newLog([ent(1, 1), ent(2, 2), ent(3, 3)]);
  storage.createSnapshot(2, { confState: confStateOf([1n]), data: new Uint8Array() });
  storage.compact(2);
  const l2 = new RaftLog(storage, { logger: SILENT_LOGGER, maxApplyingEntsBytes: 1 << 20 });
  assert.equal(l2.term(1), undefined);
  assert.equal(l2.term(2), 2);
  assert.equal(l2.term(3), 3);
  assert.equal(l2.term(4), undefined);
  assert.throws(() => l2.entries(2, 100), (e: unknown) => e instanceof StorageError && e.reason === 'compacted');
  assert.equal(log.lastTerm(), 3);
});

test('slice spans storage and the unstable tail, within the byte budget', () => {
  const { log } = newLog([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb')]);
  log.append([ent(3, 2, 'cccc'), ent(4, 2, 'dddd')]);
  assert.deepEqual(log.slice(1, 5, 1 << 20).map((e) => e.index), [1, 2, 3, 4]);
  // 16 bytes per entry: the budget of 40 takes two stored and none of the unstable ones.
  assert.deepEqual(log.slice(1, 5, 40).map((e) => e.index), [1, 2]);
  assert.deepEqual(log.slice(1, 5, 48).map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(log.slice(3, 5, 1).map((e) => e.index), [3]);
});

test('isUpToDate (§5.4.1): later last term wins, then longer log', () => {
  const { log } = newLog([ent(1, 1), ent(2, 2), ent(3, 3)]);
  assert.equal(log.isUpToDate(2, 4), true);
  assert.equal(log.isUpToDate(3, 3), true);
  assert.equal(log.isUpToDate(4, 3), true);
  assert.equal(log.isUpToDate(2, 3), false);
  assert.equal(log.isUpToDate(10, 2), false);
});

test('maybeCommit commits only an entry of the given term', () => {
  const { log } = newLog([ent(1, 1), ent(2, 2)]);
  assert.equal(log.maybeCommit(2, 1), false);
  assert.equal(log.maybeCommit(2, 2), true);
  assert.equal(log.committed, 2);
  assert.equal(log.maybeCommit(1, 1), false, 'commit never decreases');
});

test('committed entries are handed out once, bounded by the applying budget', () => {
  const { log } = newLog([ent(1, 1, 'aaaa'), ent(2, 1, 'bbbb'), ent(3, 1, 'cccc')], { maxApplyingEntsBytes: 32 });
  log.commitTo(3);
  const first = log.nextCommittedEnts(true);
  assert.deepEqual(first.map((e) => e.index), [1, 2]);
  log.acceptApplying(2, 32, true);
  assert.equal(log.hasNextCommittedEnts(true), false, 'paused until applied');
  log.appliedTo(2, 32);
  assert.deepEqual(log.nextCommittedEnts(true).map((e) => e.index), [3]);
});

test('unstable entries are applied only when allowed', () => {
  const { log } = newLog([ent(1, 1)]);
  log.append([ent(2, 1)]);
  log.commitTo(2);
  assert.deepEqual(log.nextCommittedEnts(false).map((e) => e.index), [1]);
  assert.deepEqual(log.nextCommittedEnts(true).map((e) => e.index), [1, 2]);
});
