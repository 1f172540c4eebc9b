import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Inflights } from './inflights.js';
import { Progress, ProgressState } from './progress.js';

const mk = (match: number, next: number): Progress => new Progress({ match, next, inflights: new Inflights(4, 0), isLearner: false });

test('probe: one append in flight pauses until a response', () => {
  const p = mk(0, 5);
  assert.equal(p.isPaused(), false);
  p.sentEntries(3, 30);
  assert.equal(p.isPaused(), true);
  assert.equal(p.next, 5, 'probe does not advance next optimistically');
  assert.equal(p.maybeUpdate(7), true);
  assert.equal(p.isPaused(), false);
  assert.equal(p.next, 8);
});

test('replicate: next advances optimistically and the ring bounds messages in flight', () => {
  const p = mk(4, 5);
  p.becomeReplicate();
  for (let i = 0; i < 4; i++) p.sentEntries(2, 10);
  assert.equal(p.next, 13);
  assert.equal(p.isPaused(), true);
  p.maybeUpdate(8);
  p.inflights.freeLE(8);
  p.msgAppFlowPaused = p.inflights.full();
  assert.equal(p.isPaused(), false);
});

test('maybeDecrTo: stale rejections are ignored; probe uses the hint; replicate resets to match+1', () => {
  const p = mk(3, 10);
  assert.equal(p.maybeDecrTo(5, 4), false, 'not the index we probed');
  assert.equal(p.maybeDecrTo(9, 6), true);
  assert.equal(p.next, 7);
  assert.equal(p.maybeDecrTo(6, 0), true);
  assert.equal(p.next, 4, 'never below match+1');
  const r = mk(5, 6);
  r.becomeReplicate();
  r.sentEntries(5, 0);
  assert.equal(r.maybeDecrTo(4, 0), false, 'at or below match: stale');
  assert.equal(r.maybeDecrTo(8, 0), true);
  assert.equal(r.next, 6);
});

test('snapshot state: paused until the snapshot is reported; probing resumes after it', () => {
  const p = mk(1, 2);
  p.becomeSnapshot(10);
  assert.equal(p.state, ProgressState.Snapshot);
  assert.equal(p.isPaused(), true);
  p.becomeProbe();
  assert.equal(p.next, 11);
  assert.equal(p.state, ProgressState.Probe);
});

test('canBumpCommit: only when the follower could learn a newer commit', () => {
  const p = mk(5, 8);
  p.setSentCommit(3);
  assert.equal(p.canBumpCommit(5), true);
  assert.equal(p.canBumpCommit(3), false);
  p.setSentCommit(7);
  assert.equal(p.canBumpCommit(9), false, 'sent commit already covers everything below next');
});
