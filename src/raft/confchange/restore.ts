/**
 * Rebuilds a tracker configuration from a ConfState (a snapshot's or the storage's) by replaying it as
 * a sequence of changes, so that restoring goes through the same checked code as live changes.
 */
import type { ConfChangeSingle, ConfState } from '../types.js';
import { ConfChangeType } from '../types.js';
import type { ProgressTracker } from '../tracker/tracker.js';
import type { ChangeResult } from './changer.js';
import { Changer } from './changer.js';

/**
 * Example: voters=(1 2 3) learners=(5) outgoing=(1 2 4 6) learners_next=(4) replays as
 * outgoing: add 1, add 2, add 4, add 6 (one simple step each), then enter joint with
 * incoming: remove 1 2 4 6, add 1 2 3, add-learner 5, add-learner 4.
 */
function toConfChangeSingle(cs: ConfState): { out: ConfChangeSingle[]; in: ConfChangeSingle[] } {
  const out: ConfChangeSingle[] = [];
  const inc: ConfChangeSingle[] = [];
  for (const id of cs.votersOutgoing) out.push({ type: ConfChangeType.AddNode, nodeId: id });
  for (const id of cs.votersOutgoing) inc.push({ type: ConfChangeType.RemoveNode, nodeId: id });
  for (const id of cs.voters) inc.push({ type: ConfChangeType.AddNode, nodeId: id });
  for (const id of cs.learners) inc.push({ type: ConfChangeType.AddLearnerNode, nodeId: id });
  for (const id of cs.learnersNext) inc.push({ type: ConfChangeType.AddLearnerNode, nodeId: id });
  return { out, in: inc };
}

/**
 * Applies cs on top of the tracker's (normally empty) configuration. The tracker is updated step by step;
 * the final result is returned as well.
 */
export function restoreConfState(tracker: ProgressTracker, lastIndex: number, cs: ConfState): ChangeResult {
  const { out, in: inc } = toConfChangeSingle(cs);
  const ops: Array<(c: Changer) => ChangeResult> = [];
  if (out.length === 0) {
    for (const cc of inc) ops.push((c) => c.simple([cc]));
  } else {
    for (const cc of out) ops.push((c) => c.simple([cc]));
    ops.push((c) => c.enterJoint(cs.autoLeave, inc));
  }
  let result: ChangeResult = { config: tracker.config, progress: new Map(tracker.progress) };
  for (const op of ops) {
    result = op(new Changer(tracker, lastIndex));
    tracker.reset(result.config, result.progress);
  }
  return result;
}
