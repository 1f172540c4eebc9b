/** Shared vocabulary of the quorum math. */
import type { NodeId } from '../types.js';

export const VoteResult = {
  /** Not enough votes yet to decide either way. */
  Pending: 1,
  Lost: 2,
  Won: 3,
} as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** The index each voter acknowledged (undefined: nothing known about that voter). */
export interface AckedIndexer {
  ackedIndex(id: NodeId): number | undefined;
}

/** What an empty configuration commits: "anything", so that a joint config with an empty half uses the other. */
export const EMPTY_CONFIG_COMMIT = Number.MAX_SAFE_INTEGER;

/** AckedIndexer over a plain map, for tests and tools. */
export class MapAckIndexer implements AckedIndexer {
  constructor(readonly map: ReadonlyMap<NodeId, number>) {}
  ackedIndex(id: NodeId): number | undefined {
    return this.map.get(id);
  }
}
