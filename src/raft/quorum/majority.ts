/** A simple majority configuration: decisions need more than half of its voters. */
import type { NodeId } from '../types.js';
import { sortIds } from '../util.js';
import type { AckedIndexer } from './quorum.js';
import { EMPTY_CONFIG_COMMIT, VoteResult } from './quorum.js';

export class MajorityConfig {
  readonly #voters: Set<NodeId>;
  /** Reused for every commit computation: the hot path allocates nothing. */
  #scratch: number[] = [];

  constructor(voters: Iterable<NodeId> = []) {
    this.#voters = new Set(voters);
  }

  get size(): number {
    return this.#voters.size;
  }

  has(id: NodeId): boolean {
    return this.#voters.has(id);
  }

  ids(): ReadonlySet<NodeId> {
    return this.#voters;
  }

  /** Voters in ascending order. */
  slice(): NodeId[] {
    return sortIds(this.#voters);
  }

  clone(): MajorityConfig {
    return new MajorityConfig(this.#voters);
  }

  /** "(1 2 3)", voters in ascending order. */
  toString(): string {
    return `(${this.slice().join(' ')})`;
  }

  /**
   * The largest index acknowledged by a majority: sort the acked indexes and take the one that more
   * than half of the voters have reached.
   */
  committedIndex(acked: AckedIndexer): number {
    const n = this.#voters.size;
    if (n === 0) return EMPTY_CONFIG_COMMIT;
    const srt = this.#scratch;
    srt.length = n;
    let i = 0;
    for (const id of this.#voters) {
      const idx = acked.ackedIndex(id) ?? 0;
      // Insertion sort, ascending: n is small (3 to 7) and this avoids allocating a comparator.
      let j = i;
      while (j > 0 && (srt[j - 1] as number) > idx) {
        srt[j] = srt[j - 1] as number;
        j--;
      }
      srt[j] = idx;
      i++;
    }
    return srt[n - (Math.floor(n / 2) + 1)] as number;
  }

  /** Won with a majority of yes votes; Lost once a majority can no longer be reached. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    if (this.#voters.size === 0) return VoteResult.Won;
    let yes = 0;
    let missing = 0;
    for (const id of this.#voters) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) yes++;
    }
    const q = Math.floor(this.#voters.size / 2) + 1;
    if (yes >= q) return VoteResult.Won;
    if (yes + missing >= q) return VoteResult.Pending;
    return VoteResult.Lost;
  }
}
