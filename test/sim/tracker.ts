/**
 * Tracks every client proposal and read from the moment it is made to its outcome, so that after the
 * faults heal each one can be accounted for: committed, refused by the core (ProposalDroppedError), or
 * lost with a leader that lost its leadership or crashed. Anything else is a liveness failure.
 */
import type { NodeId } from '../../src/raft/types.js';

export type ProposalOutcome = 'pending' | 'committed' | 'dropped' | 'lost';

export interface ProposalRecord {
  readonly id: number;
  readonly node: NodeId;
  readonly round: number;
  /** Strict proposals are made in a healed, converged cluster: they must commit. */
  readonly strict: boolean;
  outcome: ProposalOutcome;
  commitIndex: number;
  dropReason: string;
  lostReason: string;
  /** The leaders (node, term) that appended the proposal to their log. */
  readonly appendedBy: { node: NodeId; term: number; incarnation: number }[];
}

export interface ReadRecord {
  readonly id: number;
  readonly node: NodeId;
  readonly key: number;
  readonly round: number;
  readonly mustSeeIndex: number;
  readonly strict: boolean;
  served: boolean;
}

export interface TrackerSummary {
  proposals: number;
  committed: number;
  dropped: number;
  lost: number;
  pending: number;
  reads: number;
  readsServed: number;
}

export class ProposalTracker {
  readonly #proposals = new Map<number, ProposalRecord>();
  readonly #reads = new Map<number, ReadRecord>();
  #nextId = 1;

  newId(): number {
    return this.#nextId++;
  }

  onProposed(p: { id: number; node: NodeId; round: number; strict: boolean }): void {
    this.#proposals.set(p.id, {
      ...p,
      outcome: 'pending',
      commitIndex: 0,
      dropReason: '',
      lostReason: '',
      appendedBy: [],
    });
  }

  onDropped(id: number, reason: string): void {
    const p = this.#proposals.get(id);
    if (p !== undefined && p.outcome === 'pending') {
      p.outcome = 'dropped';
      p.dropReason = reason;
    }
  }

  onLeaderAppend(id: number, leader: { node: NodeId; term: number; incarnation: number }): void {
    this.#proposals.get(id)?.appendedBy.push(leader);
  }

  onApplied(id: number, index: number): void {
    const p = this.#proposals.get(id);
    if (p === undefined) return;
    if (p.outcome === 'pending' || p.outcome === 'lost') {
      p.outcome = 'committed';
      p.commitIndex = index;
    }
  }

  onLost(id: number, reason: string): void {
    const p = this.#proposals.get(id);
    if (p !== undefined && p.outcome === 'pending') {
      p.outcome = 'lost';
      p.lostReason = reason;
    }
  }

  proposal(id: number): ProposalRecord | undefined {
    return this.#proposals.get(id);
  }

  pending(): ProposalRecord[] {
    return [...this.#proposals.values()].filter((p) => p.outcome === 'pending');
  }

  onRead(r: Omit<ReadRecord, 'served'>): void {
    this.#reads.set(r.id, { ...r, served: false });
  }

  read(id: number): ReadRecord | undefined {
    return this.#reads.get(id);
  }

  onReadServed(id: number): void {
    const r = this.#reads.get(id);
    if (r !== undefined) r.served = true;
  }

  unservedStrictReads(): ReadRecord[] {
    return [...this.#reads.values()].filter((r) => r.strict && !r.served);
  }

  summary(): TrackerSummary {
    const s: TrackerSummary = { proposals: 0, committed: 0, dropped: 0, lost: 0, pending: 0, reads: 0, readsServed: 0 };
    for (const p of this.#proposals.values()) {
      s.proposals++;
      s[p.outcome]++;
    }
    for (const r of this.#reads.values()) {
      s.reads++;
      if (r.served) s.readsServed++;
    }
    return s;
  }
}
