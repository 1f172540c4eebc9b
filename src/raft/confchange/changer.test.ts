import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseConfChanges } from '../conf-change.js';
import { ProgressTracker } from '../tracker/tracker.js';
import type { ConfState } from '../types.js';
import { ConfChangeType } from '../types.js';
import type { ChangeResult } from './changer.js';
import { Changer, ConfChangeError } from './changer.js';
import { restoreConfState } from './restore.js';

/** Applies a change to a tracker (as raft does once a change is applied) and returns its description. */
function apply(trk: ProgressTracker, op: (c: Changer) => ChangeResult): string {
  const r = op(new Changer(trk, 10));
  trk.reset(r.config, r.progress);
  return r.config.toString();
}

const fresh = (): ProgressTracker => new ProgressTracker(10, 0);

test('simple changes: one voter at a time; learners; removing all voters is refused', () => {
  const trk = fresh();
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('v1'))), 'voters=(1)');
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('v2'))), 'voters=(1 2)');
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('l3 l4'))), 'voters=(1 2) learners=(3 4)');
  // Learner to voter and voter to learner, one voter change each.
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('v3'))), 'voters=(1 2 3) learners=(4)');
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('l2'))), 'voters=(1 3) learners=(2 4)');
  assert.throws(() => apply(trk, (c) => c.simple(parseConfChanges('v5 v6'))), ConfChangeError);
  assert.throws(() => apply(trk, (c) => c.simple(parseConfChanges('r1 r3'))), /more than one voter|removed all voters/);
  assert.equal(apply(trk, (c) => c.simple(parseConfChanges('r4 u1'))), 'voters=(1 3) learners=(2)');
  // New members start probing at the last index and count as recently active.
  const pr = trk.get(3n)!;
  assert.equal(pr.next, 10);
  assert.equal(pr.recentActive, true);
});

test('joint: enter copies the voters to the outgoing half; demoted voters wait in learners_next; leave finishes', () => {
  const trk = fresh();
  apply(trk, (c) => c.simple(parseConfChanges('v1')));
  apply(trk, (c) => c.simple(parseConfChanges('v2')));
  apply(trk, (c) => c.simple(parseConfChanges('v3')));
  assert.equal(apply(trk, (c) => c.enterJoint(true, parseConfChanges('v4 l3 r2'))), 'voters=(1 4)&&(1 2 3) learners_next=(3) autoleave');
  assert.throws(() => apply(trk, (c) => c.enterJoint(false, [])), /already joint/);
  assert.throws(() => apply(trk, (c) => c.simple(parseConfChanges('v5'))), /joint config/);
  // Node 2 is still an outgoing voter: it keeps its progress until the joint config is left.
  assert.ok(trk.get(2n) !== undefined);
  assert.equal(apply(trk, (c) => c.leaveJoint()), 'voters=(1 4) learners=(3)');
  assert.equal(trk.get(2n), undefined);
  assert.equal(trk.get(3n)!.isLearner, true);
  assert.throws(() => apply(trk, (c) => c.leaveJoint()), /non-joint/);
});

test('joint: a zero-voter configuration cannot become joint', () => {
  assert.throws(() => apply(fresh(), (c) => c.enterJoint(false, parseConfChanges('v1'))), /zero-voter/);
});

const idArb = fc.integer({ min: 1, max: 8 }).map((x) => BigInt(x));

/** Random valid conf states: voters, learners disjoint; optionally joint with learners_next from the outgoing half. */
const confStateArb: fc.Arbitrary<ConfState> = fc
  .record({
    voters: fc.uniqueArray(idArb, { minLength: 1, maxLength: 5 }),
    learners: fc.uniqueArray(idArb, { maxLength: 3 }),
    outgoing: fc.uniqueArray(idArb, { maxLength: 5 }),
    next: fc.uniqueArray(idArb, { maxLength: 2 }),
    autoLeave: fc.boolean(),
  })
  .map(({ voters, learners, outgoing, next, autoLeave }) => {
    const v = new Set(voters);
    const out = outgoing.filter(() => true);
    const joint = out.length > 0;
    const ln = joint ? next.filter((id) => out.includes(id) && !v.has(id)) : [];
    const l = learners.filter((id) => !v.has(id) && !out.includes(id) && !ln.includes(id));
    const sort = (a: bigint[]): bigint[] => [...a].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    return {
      voters: sort([...v]),
      learners: sort(l),
      votersOutgoing: sort(out),
      learnersNext: sort(ln),
      autoLeave: joint && autoLeave,
    };
  });

test('property: restoring a ConfState yields exactly that configuration', () => {
  fc.assert(
    fc.property(confStateArb, (cs) => {
      const trk = fresh();
      restoreConfState(trk, 10, cs);
      assert.deepEqual(trk.confState(), cs);
      for (const id of [...cs.voters, ...cs.learners, ...cs.votersOutgoing]) assert.ok(trk.get(id) !== undefined);
    }),
    { numRuns: 500 },
  );
});

test('update-node changes nothing; zero ids are skipped', () => {
  const trk = fresh();
  apply(trk, (c) => c.simple(parseConfChanges('v1')));
  assert.equal(apply(trk, (c) => c.simple([{ type: ConfChangeType.UpdateNode, nodeId: 1n }, { type: ConfChangeType.AddNode, nodeId: 0n }])), 'voters=(1)');
});
