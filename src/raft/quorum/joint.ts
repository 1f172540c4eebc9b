/** A joint configuration (C_old,new, thesis §4.3): every decision needs a majority in both halves. */
import type { NodeId } from '../types.js';
import { sortIds } from '../util.js';
import { MajorityConfig } from './majority.js';
import type { AckedIndexer } from './quorum.js';
import { VoteResult } from './quorum.js';

export class JointConfig {
  /** [incoming, outgoing]; outgoing is empty unless the configuration is joint. */
  incoming: MajorityConfig;
  outgoing: MajorityConfig;

  constructor(incoming: MajorityConfig = new MajorityConfig(), outgoing: MajorityConfig = new MajorityConfig()) {
    this.incoming = incoming;
    this.outgoing = outgoing;
  }

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  clone(): JointConfig {
    return new JointConfig(this.incoming.clone(), this.outgoing.clone());
  }

  /** Union of the voters of both halves, ascending. */
  ids(): NodeId[] {
    const s = new Set<NodeId>(this.incoming.ids());
    for (const id of this.outgoing.ids()) s.add(id);
    return sortIds(s);
  }

  has(id: NodeId): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  toString(): string {
    if (this.outgoing.size > 0) return `${this.incoming.toString()}&&${this.outgoing.toString()}`;
    return this.incoming.toString();
  }

  committedIndex(acked: AckedIndexer): number {
    const a = this.incoming.committedIndex(acked);
    const b = this.outgoing.committedIndex(acked);
    return a < b ? a : b;
  }

  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const r1 = this.incoming.voteResult(votes);
    const r2 = this.outgoing.voteResult(votes);
    if (r1 === r2) return r1;
    if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending;
  }
}
