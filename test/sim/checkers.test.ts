import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../../src/raft/types.js';
import { EntryType, NONE } from '../../src/raft/types.js';
import { SafetyChecker } from './checkers.js';
import { chainHash, encodePut } from './kv-machine.js';
import { SimViolation } from './violation.js';

function e(index: number, term: number, payload = index): Entry {
  return { index, term, type: EntryType.Normal, data: encodePut({ proposalId: payload, key: 0 }) };
}

function throwsKind(fn: () => void, kind: string): void {
  assert.throws(fn, (err: unknown) => err instanceof SimViolation && err.kind === kind);
}

test('election safety: two leaders in one term are caught', () => {
  const c = new SafetyChecker();
  c.onLeader(1n, 3);
  c.onLeader(1n, 3);
  c.onLeader(2n, 4);
  throwsKind(() => c.onLeader(2n, 3), 'election-safety');
});

test('hard state: term and commit never go back within an incarnation; votes never change', () => {
  const c = new SafetyChecker();
  c.onStart(1n, { term: 1, vote: NONE, commit: 0 });
  c.onHardState(1n, { term: 2, vote: 2n, commit: 5 });
  throwsKind(() => c.onHardState(1n, { term: 2, vote: 2n, commit: 4 }), 'commit-regression');
  throwsKind(() => c.onHardState(1n, { term: 1, vote: 2n, commit: 5 }), 'term-regression');
  // after a restart the commit may restart lower (it was not synced), but the vote is remembered
  c.onStart(1n, { term: 2, vote: NONE, commit: 3 });
  throwsKind(() => c.onHardState(1n, { term: 2, vote: 3n, commit: 3 }), 'vote-changed');
});

test('log matching: same index and term means same payload and same predecessor', () => {
  const c = new SafetyChecker();
  c.onPersistEntries(1n, [e(1, 1), e(2, 1), e(3, 2)], 0);
  c.onPersistEntries(2n, [e(1, 1), e(2, 1)], 0);
  c.onPersistEntries(2n, [e(3, 2)], 1);
  throwsKind(() => c.onPersistEntries(3n, [e(3, 2, 99)], 1), 'log-matching');
  throwsKind(() => c.onPersistEntries(3n, [e(3, 2)], 3), 'log-matching');
  throwsKind(() => c.onPersistEntries(4n, [e(1, 3), e(2, 2)], 0), 'log-matching');
});

test('leader completeness: a later leader must hold what was committed in earlier terms', () => {
  const c = new SafetyChecker();
  c.onCommit(1n, 5, 2, 2);
  const log = new Map([[5, 2]]);
  c.checkLeaderLog(2n, 3, 6, (i) => log.get(i) ?? 1);
  // the leader of term 2 itself is not constrained by a commit made in term 2
  c.checkLeaderLog(3n, 2, 1, () => 1);
  throwsKind(() => c.checkLeaderLog(3n, 3, 4, () => 2), 'leader-completeness');
  throwsKind(() => c.checkLeaderLog(3n, 3, 9, () => 3), 'leader-completeness');
  // at or below the leader's snapshot the entry is covered by the snapshot
  c.checkLeaderLog(3n, 3, 9, () => null);
  throwsKind(() => c.onCommit(2n, 5, 3, 3), 'state-machine-safety');
});

test('state machine safety: different entries or histories at one index are caught', () => {
  const c = new SafetyChecker();
  const a1 = chainHash(0, e(1, 1));
  c.onApply(1n, e(1, 1), a1);
  c.onApply(2n, e(1, 1), a1);
  throwsKind(() => c.onApply(3n, e(1, 2), chainHash(0, e(1, 2))), 'state-machine-safety');
  c.onRestore(4n, 1, a1);
  throwsKind(() => c.onRestore(5n, 1, a1 + 1), 'state-machine-safety');
});

test('reads must reflect every write acknowledged before they began', () => {
  const c = new SafetyChecker();
  assert.equal(c.readStart(0), 0);
  c.onApply(1n, e(1, 1, 7), chainHash(0, e(1, 1, 7)));
  const mustSeeIndex = c.readStart(0);
  assert.equal(mustSeeIndex, 1);
  c.onReadServed(2n, { id: 1, key: 0, mustSeeIndex }, { proposalId: 7, index: 1 });
  throwsKind(() => c.onReadServed(3n, { id: 2, key: 0, mustSeeIndex }, undefined), 'linearizable-read');
  // a read that began before the write may see either
  c.onReadServed(3n, { id: 3, key: 0, mustSeeIndex: 0 }, undefined);
});
