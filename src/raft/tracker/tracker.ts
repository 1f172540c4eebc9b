/**
 * The leader's bookkeeping: the active configuration (voters, possibly joint, and learners), the
 * Progress of every member, and the votes of the current election.
 */
import type { ConfState, NodeId } from '../types.js';
import { JointConfig } from '../quorum/joint.js';
import type { AckedIndexer } from '../quorum/quorum.js';
import { VoteResult } from '../quorum/quorum.js';
import { sortIds } from '../util.js';
import type { Progress } from './progress.js';

export class TrackerConfig {
  voters: JointConfig;
  /** Leave the joint configuration automatically once it is applied. */
  autoLeave: boolean;
  /** Learners never overlap with voters of either half. */
  learners: Set<NodeId>;
  /** Voters of the outgoing half that become learners when the joint configuration is left. */
  learnersNext: Set<NodeId>;

  constructor(opts?: { voters?: JointConfig; autoLeave?: boolean; learners?: Iterable<NodeId>; learnersNext?: Iterable<NodeId> }) {
    this.voters = opts?.voters ?? new JointConfig();
    this.autoLeave = opts?.autoLeave ?? false;
    this.learners = new Set(opts?.learners ?? []);
    this.learnersNext = new Set(opts?.learnersNext ?? []);
  }

  clone(): TrackerConfig {
    return new TrackerConfig({
      voters: this.voters.clone(),
      autoLeave: this.autoLeave,
      learners: this.learners,
      learnersNext: this.learnersNext,
    });
  }

  toString(): string {
    let s = `voters=${this.voters.toString()}`;
    if (this.learners.size > 0) s += ` learners=(${sortIds(this.learners).join(' ')})`;
    if (this.learnersNext.size > 0) s += ` learners_next=(${sortIds(this.learnersNext).join(' ')})`;
    if (this.autoLeave) s += ' autoleave';
    return s;
  }
}

export type ProgressMap = Map<NodeId, Progress>;

export class ProgressTracker implements AckedIndexer {
  config: TrackerConfig = new TrackerConfig();
  #progress: ProgressMap = new Map();
  /** Member ids in ascending order: deterministic iteration without sorting on every broadcast. */
  #ids: NodeId[] = [];
  votes = new Map<NodeId, boolean>();
  readonly maxInflight: number;
  readonly maxInflightBytes: number;

  constructor(maxInflight: number, maxInflightBytes: number) {
    this.maxInflight = maxInflight;
    this.maxInflightBytes = maxInflightBytes;
  }

  get progress(): ReadonlyMap<NodeId, Progress> {
    return this.#progress;
  }

  /** Installs a configuration and the matching progress map (built by confchange). */
  reset(config: TrackerConfig, progress: ProgressMap): void {
    this.config = config;
    this.#progress = progress;
    this.#ids = sortIds(progress.keys());
  }

  /** Ids of every member with a progress, ascending. Do not mutate. */
  ids(): readonly NodeId[] {
    return this.#ids;
  }

  get(id: NodeId): Progress | undefined {
    return this.#progress.get(id);
  }

  confState(): ConfState {
    return {
      voters: this.config.voters.incoming.slice(),
      votersOutgoing: this.config.voters.outgoing.slice(),
      learners: sortIds(this.config.learners),
      learnersNext: sortIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /** A single voter (and not joint): commits and elections need nobody else. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  ackedIndex(id: NodeId): number | undefined {
    const pr = this.#progress.get(id);
    return pr === undefined ? undefined : pr.match;
  }

  /** The largest log index known to be replicated on a quorum of voters. */
  committed(): number {
    return this.config.voters.committedIndex(this);
  }

  /** Whether a quorum of voters was recently active (the leader heard from them). */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const id of this.#ids) {
      const pr = this.#progress.get(id) as Progress;
      if (pr.isLearner) continue;
      votes.set(id, pr.recentActive);
    }
    return this.config.voters.voteResult(votes) === VoteResult.Won;
  }

  voterNodes(): NodeId[] {
    return this.config.voters.ids();
  }

  learnerNodes(): NodeId[] {
    return sortIds(this.config.learners);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records a vote once; later duplicates from the same voter are ignored. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.#ids) {
      const pr = this.#progress.get(id) as Progress;
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}
