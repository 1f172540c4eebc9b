/**
 * The safety checker: every node's host reports what it persisted, committed, applied and served, and
 * the checker compares it with what every other node reported, across crashes and restarts. Each check
 * is incremental (it looks only at the new facts), so it can run after every simulation step.
 */
import type { Entry, HardState, NodeId } from '../../src/raft/types.js';
import { NONE } from '../../src/raft/types.js';
import { decodePut, entryHash, type KvValue } from './kv-machine.js';
import { violation } from './violation.js';

interface Witness {
  readonly hash: number;
  readonly prevTerm: number;
  readonly node: NodeId;
}

interface AppliedRecord {
  readonly chain: number;
  readonly entryHash: number | null;
  readonly node: NodeId;
}

export interface CheckerStats {
  leaders: number;
  entriesPersisted: number;
  entriesApplied: number;
  readsServed: number;
  maxCommit: number;
}

export class SafetyChecker {
  readonly #leaderOfTerm = new Map<number, NodeId>();
  /** Per node, the hard state of the running incarnation (reset on restart). */
  readonly #hardState = new Map<NodeId, HardState>();
  /** `${node}/${term}` -> the vote the node cast in that term, across incarnations. */
  readonly #votes = new Map<string, NodeId>();
  /** index -> term -> the first copy of that entry seen anywhere. */
  readonly #witness = new Map<number, Map<number, Witness>>();
  /** index -> term of the entry committed there. */
  readonly #committedTerm = new Map<number, number>();
  /** committer term -> highest index known committed in it. */
  readonly #commitByTerm = new Map<number, number>();
  readonly #applied = new Map<number, AppliedRecord>();
  /** key -> highest log index of a write to it that some node applied (and so acknowledged). */
  readonly #acked = new Map<number, number>();
  readonly stats: CheckerStats = { leaders: 0, entriesPersisted: 0, entriesApplied: 0, readsServed: 0, maxCommit: 0 };

  /** Election safety: at most one leader per term. */
  onLeader(node: NodeId, term: number): void {
    const prev = this.#leaderOfTerm.get(term);
    if (prev === undefined) {
      this.#leaderOfTerm.set(term, node);
      this.stats.leaders++;
    } else if (prev !== node) {
      violation('election-safety', `term ${term} has two leaders: ${prev} and ${node}`);
    }
  }

  leaderOf(term: number): NodeId | undefined {
    return this.#leaderOfTerm.get(term);
  }

  /** A (re)started node begins from its durable hard state. */
  onStart(node: NodeId, durable: HardState): void {
    this.#hardState.set(node, durable);
    this.#recordVote(node, durable);
  }

  /** Term and commit never go back within an incarnation; a vote, once cast, never changes. */
  onHardState(node: NodeId, hs: HardState): void {
    const prev = this.#hardState.get(node);
    if (prev !== undefined) {
      if (hs.term < prev.term) violation('term-regression', `node ${node}: term ${prev.term} -> ${hs.term}`);
      if (hs.commit < prev.commit) {
        violation('commit-regression', `node ${node}: commit ${prev.commit} -> ${hs.commit}`);
      }
    }
    this.#hardState.set(node, hs);
    this.#recordVote(node, hs);
  }

  #recordVote(node: NodeId, hs: HardState): void {
    if (hs.vote === NONE) return;
    const key = `${node}/${hs.term}`;
    const prev = this.#votes.get(key);
    if (prev === undefined) this.#votes.set(key, hs.vote);
    else if (prev !== hs.vote) {
      violation('vote-changed', `node ${node} voted for ${prev} and then ${hs.vote} in term ${hs.term}`);
    }
  }

  /**
   * Log matching: an entry is identified by (index, term). Every copy must carry the same payload and
   * follow an entry of the same term; by induction two logs that share an entry share the whole prefix.
   */
  onPersistEntries(node: NodeId, entries: readonly Entry[], prevTerm: number): void {
    let prev = prevTerm;
    for (const e of entries) {
      let byTerm = this.#witness.get(e.index);
      if (byTerm === undefined) this.#witness.set(e.index, (byTerm = new Map()));
      const w = byTerm.get(e.term);
      const hash = entryHash(e);
      if (w === undefined) byTerm.set(e.term, { hash, prevTerm: prev, node });
      else if (w.hash !== hash || w.prevTerm !== prev) {
        violation(
          'log-matching',
          `entry ${e.index}/${e.term} on node ${node} (prev term ${prev}) differs from node ${w.node}'s ` +
            `(prev term ${w.prevTerm}${w.hash !== hash ? ', other payload' : ''})`,
        );
      }
      if (e.term < prev) violation('log-matching', `node ${node}: term goes down at ${e.index} (${prev} -> ${e.term})`);
      prev = e.term;
      this.stats.entriesPersisted++;
    }
  }

  /** `entryTerm` is the term of the node's entry at `commit`; `nodeTerm` bounds the committer's term. */
  onCommit(node: NodeId, commit: number, entryTerm: number, nodeTerm: number): void {
    const known = this.#committedTerm.get(commit);
    if (known === undefined) this.#committedTerm.set(commit, entryTerm);
    else if (known !== entryTerm) {
      violation('state-machine-safety', `node ${node} commits term ${entryTerm} at ${commit}, known ${known}`);
    }
    if ((this.#commitByTerm.get(nodeTerm) ?? 0) < commit) this.#commitByTerm.set(nodeTerm, commit);
    if (commit > this.stats.maxCommit) this.stats.maxCommit = commit;
  }

  /**
   * Leader completeness: a leader of term T holds every entry committed in a term below T.
   * termAt(i) is the leader's log term at i, or null when i is at or below its snapshot.
   */
  checkLeaderLog(node: NodeId, term: number, lastIndex: number, termAt: (i: number) => number | null): void {
    let index = 0;
    for (const [t, c] of this.#commitByTerm) if (t < term && c > index) index = c;
    if (index === 0) return;
    if (index > lastIndex) {
      violation('leader-completeness', `leader ${node} of term ${term} ends at ${lastIndex}, ${index} committed before`);
    }
    const have = termAt(index);
    const want = this.#committedTerm.get(index);
    if (have !== null && have !== want) {
      violation('leader-completeness', `leader ${node} of term ${term} has term ${have} at committed ${index}, not ${want}`);
    }
  }

  /** State machine safety: no two nodes apply different entries at one index (checked via the chain). */
  onApply(node: NodeId, entry: Entry, chain: number): void {
    const hash = entryHash(entry);
    const rec = this.#applied.get(entry.index);
    if (rec === undefined) {
      this.#applied.set(entry.index, { chain, entryHash: hash, node });
      const put = decodePut(entry);
      if (put !== null && (this.#acked.get(put.key) ?? 0) < entry.index) this.#acked.set(put.key, entry.index);
    } else if (rec.chain !== chain || (rec.entryHash !== null && rec.entryHash !== hash)) {
      violation('state-machine-safety', `node ${node} applied a different entry or history at ${entry.index} than node ${rec.node}`);
    }
    this.stats.entriesApplied++;
  }

  /** A state machine restored from a snapshot must be the one the others had at that index. */
  onRestore(node: NodeId, index: number, chain: number): void {
    const rec = this.#applied.get(index);
    if (rec === undefined) this.#applied.set(index, { chain, entryHash: null, node });
    else if (rec.chain !== chain) {
      violation('state-machine-safety', `node ${node} restored a snapshot at ${index} whose history differs from node ${rec.node}'s`);
    }
  }

  /** The index a read of `key` starting now must reflect: the last acknowledged write to it. */
  readStart(key: number): number {
    return this.#acked.get(key) ?? 0;
  }

  onReadServed(node: NodeId, read: { id: number; key: number; mustSeeIndex: number }, value: KvValue | undefined): void {
    const seen = value?.index ?? 0;
    if (seen < read.mustSeeIndex) {
      violation(
        'linearizable-read',
        `read ${read.id} of key ${read.key} on node ${node} saw the write at ${seen}, ` +
          `but the write at ${read.mustSeeIndex} was acknowledged before the read began`,
      );
    }
    this.stats.readsServed++;
  }
}
