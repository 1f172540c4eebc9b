/**
 * The leader's view of one follower: how far its log matches, what to send next, and a small state
 * machine deciding how to send (probe one message at a time, replicate optimistically, or wait for a
 * snapshot).
 */
import { assert } from '../../base/assert.js';
import type { ProgressStateName } from '../contract.js';
import { Inflights } from './inflights.js';

export const ProgressState = {
  /** Sends at most one append per heartbeat interval until the follower's match index is found. */
  Probe: 0,
  /** Streams appends, bounded by the inflights ring. */
  Replicate: 1,
  /** Waits for a snapshot to be applied; sends no appends. */
  Snapshot: 2,
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

const STATE_NAMES: readonly ProgressStateName[] = ['probe', 'replicate', 'snapshot'];
const STATE_LABELS: readonly string[] = ['StateProbe', 'StateReplicate', 'StateSnapshot'];

export class Progress {
  match: number;
  next: number;
  /** Highest commit index sent to this follower (or that it is known to have). */
  sentCommit: number;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot in flight (StateSnapshot only). */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round; reset by the leader each election timeout. */
  recentActive = false;
  /** In probe: one append is out, wait for a response or a heartbeat. In replicate: the ring is full. */
  msgAppFlowPaused = false;
  inflights: Inflights;
  isLearner: boolean;

  constructor(opts: { next: number; match: number; inflights: Inflights; isLearner: boolean }) {
    this.match = opts.match;
    this.next = opts.next;
    this.sentCommit = 0;
    this.inflights = opts.inflights;
    this.isLearner = opts.isLearner;
  }

  stateName(): ProgressStateName {
    return STATE_NAMES[this.state] as ProgressStateName;
  }

  resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // Coming back from a snapshot: the follower has at least what the snapshot carried.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** An append of `entries` entries (payload `bytes`) was sent starting at next. */
  sentEntries(entries: number, bytes: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entries > 0) {
        this.next += entries;
        this.inflights.add(this.next - 1, bytes);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressState.Probe) {
      if (entries > 0) this.msgAppFlowPaused = true;
    } else {
      assert(false, `sending append in unhandled state ${this.stateName()}`);
    }
  }

  /** Whether a message now could tell the follower a newer commit index. */
  canBumpCommit(index: number): boolean {
    // The follower can only commit what it has: below next.
    return index > this.sentCommit && this.sentCommit < this.next - 1;
  }

  setSentCommit(commit: number): void {
    this.sentCommit = commit;
  }

  /** The follower acknowledged n; false if that is old news. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The follower rejected an append at index `rejected`, hinting that its log may match at matchHint.
   * False if the rejection is stale (out of order).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      // Optimistic sends went past the divergence: resume right after the match.
      this.next = this.match + 1;
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    // In probe state only the most recent append is outstanding.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === ProgressState.Snapshot) return true;
    return this.msgAppFlowPaused;
  }

  clone(): Progress {
    const p = new Progress({ next: this.next, match: this.match, inflights: this.inflights.clone(), isLearner: this.isLearner });
    p.sentCommit = this.sentCommit;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    return p;
  }

  toString(): string {
    let s = `${STATE_LABELS[this.state]} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    const n = this.inflights.count();
    if (n > 0) {
      s += ` inflight=${n}`;
      if (this.inflights.full()) s += '[full]';
    }
    return s;
  }
}
