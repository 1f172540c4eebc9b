/**
 * Computes the configuration (and progress map) that results from a membership change, without
 * touching the live tracker: single-step changes, entering and leaving a joint configuration.
 * Invalid requests fail with ConfChangeError; the caller decides whether that is fatal.
 */
import type { ConfChangeSingle, NodeId } from '../types.js';
import { ConfChangeType } from '../types.js';
import { MajorityConfig } from '../quorum/majority.js';
import { JointConfig } from '../quorum/joint.js';
import { Inflights } from '../tracker/inflights.js';
import { Progress } from '../tracker/progress.js';
import type { ProgressMap, ProgressTracker } from '../tracker/tracker.js';
import { TrackerConfig } from '../tracker/tracker.js';

export class ConfChangeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfChangeError';
  }
}

export interface ChangeResult {
  readonly config: TrackerConfig;
  readonly progress: ProgressMap;
}

interface Working {
  cfg: TrackerConfig;
  prs: ProgressMap;
  incoming: Set<NodeId>;
  outgoing: Set<NodeId>;
}

export class Changer {
  readonly #tracker: ProgressTracker;
  /** New members start probing from here. */
  readonly #lastIndex: number;

  constructor(tracker: ProgressTracker, lastIndex: number) {
    this.#tracker = tracker;
    this.#lastIndex = lastIndex;
  }

  /** Enters a joint configuration: the current voters become the outgoing half, ccs shape the incoming one. */
  enterJoint(autoLeave: boolean, ccs: readonly ConfChangeSingle[]): ChangeResult {
    const w = this.#checkAndCopy();
    if (w.outgoing.size > 0) throw new ConfChangeError('config is already joint');
    if (w.incoming.size === 0) throw new ConfChangeError("can't make a zero-voter config joint");
    for (const id of w.incoming) w.outgoing.add(id);
    this.#apply(w, ccs);
    w.cfg.autoLeave = autoLeave;
    return checkAndReturn(w);
  }

  /** Leaves the joint configuration: outgoing-only voters go away (or become learners if staged so). */
  leaveJoint(): ChangeResult {
    const w = this.#checkAndCopy();
    if (w.outgoing.size === 0) throw new ConfChangeError("can't leave a non-joint config");
    for (const id of w.cfg.learnersNext) {
      w.cfg.learners.add(id);
      (w.prs.get(id) as Progress).isLearner = true;
    }
    w.cfg.learnersNext.clear();
    for (const id of w.outgoing) {
      if (!w.incoming.has(id) && !w.cfg.learners.has(id)) w.prs.delete(id);
    }
    w.outgoing.clear();
    w.cfg.autoLeave = false;
    return checkAndReturn(w);
  }

  /** Changes applied directly, allowed only when at most one voter changes (thesis §4.1). */
  simple(ccs: readonly ConfChangeSingle[]): ChangeResult {
    const w = this.#checkAndCopy();
    if (w.outgoing.size > 0) throw new ConfChangeError("can't apply simple config change in joint config");
    this.#apply(w, ccs);
    const before = this.#tracker.config.voters.incoming.ids();
    if (symdiff(before, w.incoming) > 1) {
      throw new ConfChangeError('more than one voter changed without entering joint config');
    }
    return checkAndReturn(w);
  }

  #apply(w: Working, ccs: readonly ConfChangeSingle[]): void {
    for (const cc of ccs) {
      // A zero id is a change the application decided not to carry out.
      if (cc.nodeId === 0n) continue;
      switch (cc.type) {
        case ConfChangeType.AddNode:
          this.#makeVoter(w, cc.nodeId);
          break;
        case ConfChangeType.AddLearnerNode:
          this.#makeLearner(w, cc.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          remove(w, cc.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          break;
        default:
          throw new ConfChangeError(`unexpected conf type ${String(cc.type)}`);
      }
    }
    if (w.incoming.size === 0) throw new ConfChangeError('removed all voters');
  }

  #makeVoter(w: Working, id: NodeId): void {
    const pr = w.prs.get(id);
    if (pr === undefined) {
      this.#initProgress(w, id, false);
      return;
    }
    pr.isLearner = false;
    w.cfg.learners.delete(id);
    w.cfg.learnersNext.delete(id);
    w.incoming.add(id);
  }

  #makeLearner(w: Working, id: NodeId): void {
    const pr = w.prs.get(id);
    if (pr === undefined) {
      this.#initProgress(w, id, true);
      return;
    }
    if (pr.isLearner) return;
    remove(w, id);
    // Keep the progress: the node stays a member, only its role changes.
    w.prs.set(id, pr);
    // A voter of the outgoing half can only become a learner once the joint config is left.
    if (w.outgoing.has(id)) {
      w.cfg.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      w.cfg.learners.add(id);
    }
  }

  #initProgress(w: Working, id: NodeId, isLearner: boolean): void {
    if (isLearner) w.cfg.learners.add(id);
    else w.incoming.add(id);
    const pr = new Progress({
      // Probing from the last index: the new member most likely needs a snapshot, which probing finds out.
      next: Math.max(this.#lastIndex, 1),
      match: 0,
      inflights: new Inflights(this.#tracker.maxInflight, this.#tracker.maxInflightBytes),
      isLearner,
    });
    // Otherwise check-quorum could depose the leader before the new member had a chance to answer.
    pr.recentActive = true;
    w.prs.set(id, pr);
  }

  #checkAndCopy(): Working {
    const cfg = this.#tracker.config.clone();
    const prs: ProgressMap = new Map();
    for (const [id, pr] of this.#tracker.progress) prs.set(id, pr.clone());
    const w = { cfg, prs, incoming: new Set(cfg.voters.incoming.ids()), outgoing: new Set(cfg.voters.outgoing.ids()) };
    checkInvariants(w);
    return w;
  }
}

function remove(w: Working, id: NodeId): void {
  if (!w.prs.has(id)) return;
  w.incoming.delete(id);
  w.cfg.learners.delete(id);
  w.cfg.learnersNext.delete(id);
  // Still a voter of the outgoing half: it keeps its progress until the joint config is left.
  if (!w.outgoing.has(id)) w.prs.delete(id);
}

function checkAndReturn(w: Working): ChangeResult {
  w.cfg.voters = new JointConfig(new MajorityConfig(w.incoming), new MajorityConfig(w.outgoing));
  checkInvariants(w);
  return { config: w.cfg, progress: w.prs };
}

function checkInvariants(w: Working): void {
  const { cfg, prs, incoming, outgoing } = w;
  for (const ids of [incoming, outgoing, cfg.learners, cfg.learnersNext]) {
    for (const id of ids) if (!prs.has(id)) throw new ConfChangeError(`no progress for ${id}`);
  }
  for (const id of cfg.learnersNext) {
    if (!outgoing.has(id)) throw new ConfChangeError(`${id} is in LearnersNext, but not Voters[1]`);
    if ((prs.get(id) as Progress).isLearner) throw new ConfChangeError(`${id} is in LearnersNext, but is already marked as learner`);
  }
  for (const id of cfg.learners) {
    if (outgoing.has(id)) throw new ConfChangeError(`${id} is in Learners and Voters[1]`);
    if (incoming.has(id)) throw new ConfChangeError(`${id} is in Learners and Voters[0]`);
    if (!(prs.get(id) as Progress).isLearner) throw new ConfChangeError(`${id} is in Learners, but is not marked as learner`);
  }
  if (outgoing.size === 0) {
    if (cfg.learnersNext.size > 0) throw new ConfChangeError('cfg.LearnersNext must be empty when not joint');
    if (cfg.autoLeave) throw new ConfChangeError('AutoLeave must be false when not joint');
  }
}

function symdiff(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  let n = 0;
  for (const id of a) if (!b.has(id)) n++;
  for (const id of b) if (!a.has(id)) n++;
  return n;
}
