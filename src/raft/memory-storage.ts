/**
 * An in-memory RaftStorage: the stable log after its last snapshot. The host appends to it after
 * persisting a Ready; the server rebuilds one from its WAL on start.
 */
import { assert } from '../base/assert.js';
import type { RaftStorage } from './contract.js';
import { StorageError } from './contract.js';
import type { ConfState, Entry, HardState, Snapshot } from './types.js';
import { EntryType, NONE } from './types.js';
import { countWithinSize } from './util.js';

export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  data: new Uint8Array(0),
  metadata: Object.freeze({ confState: EMPTY_CONF_STATE, index: 0, term: 0 }),
});

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export class MemoryStorage implements RaftStorage {
  #hardState: HardState = EMPTY_HARD_STATE;
  #snapshot: Snapshot = EMPTY_SNAPSHOT;
  /** #ents[0] is a placeholder carrying the index and term of the last compacted entry. */
  #ents: Entry[] = [dummy(0, 0)];

  /** confState: the initial configuration of an empty log (tests and simulations that skip bootstrap). */
  constructor(opts?: { confState?: ConfState }) {
    if (opts?.confState !== undefined) {
      this.#snapshot = { data: EMPTY_SNAPSHOT.data, metadata: { confState: opts.confState, index: 0, term: 0 } };
    }
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.#hardState, confState: this.#snapshot.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.#hardState = hs;
  }

  hardState(): HardState {
    return this.#hardState;
  }

  /** Entries [lo, hi), limited to maxBytes but always at least one if the range is not empty. */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.#offset();
    if (lo <= offset) throw new StorageError('compacted');
    assert(hi <= this.lastIndex() + 1, () => `entries hi ${hi} beyond last index ${this.lastIndex()}`);
    assert(lo <= hi, () => `entries lo ${lo} > hi ${hi}`);
    // Only the placeholder left: nothing stored above the snapshot.
    if (this.#ents.length === 1) throw new StorageError('unavailable');
    const ents = this.#ents.slice(lo - offset, hi - offset);
    const n = countWithinSize(ents, maxBytes);
    if (n < ents.length) ents.length = n;
    return ents;
  }

  term(index: number): number {
    const offset = this.#offset();
    if (index < offset) throw new StorageError('compacted');
    const e = this.#ents[index - offset];
    if (e === undefined) throw new StorageError('unavailable');
    return e.term;
  }

  lastIndex(): number {
    return this.#offset() + this.#ents.length - 1;
  }

  firstIndex(): number {
    return this.#offset() + 1;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** Replaces the whole content with a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    if (this.#snapshot.metadata.index >= snap.metadata.index) throw new StorageError('snapshot-out-of-date');
    this.#snapshot = snap;
    this.#ents = [dummy(snap.metadata.index, snap.metadata.term)];
  }

  /**
   * Records a snapshot of the state machine at index i (<= last index). Entries are kept until compact();
   * confState null keeps the previous snapshot's configuration.
   */
  createSnapshot(i: number, opts: { confState: ConfState | null; data: Uint8Array }): Snapshot {
    if (i <= this.#snapshot.metadata.index) throw new StorageError('snapshot-out-of-date');
    assert(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    const term = this.term(i);
    const confState = opts.confState ?? this.#snapshot.metadata.confState;
    this.#snapshot = { data: opts.data, metadata: { confState, index: i, term } };
    return this.#snapshot;
  }

  /** Discards entries up to and including compactIndex; the caller must have a snapshot covering them. */
  compact(compactIndex: number): void {
    const offset = this.#offset();
    if (compactIndex <= offset) throw new StorageError('compacted');
    assert(compactIndex <= this.lastIndex(), () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - offset;
    const kept = this.#ents.slice(i);
    const head = kept[0] as Entry;
    kept[0] = dummy(head.index, head.term);
    this.#ents = kept;
  }

  /** Appends entries, replacing any conflicting tail; entries at or below the snapshot are ignored. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = this.firstIndex();
    const lastNew = (ents[ents.length - 1] as Entry).index;
    if (lastNew < first) return;
    let from = 0;
    if (first > (ents[0] as Entry).index) from = first - (ents[0] as Entry).index;
    const at = (ents[from] as Entry).index - this.#offset();
    assert(at <= this.#ents.length, () => `missing log entry [last: ${this.lastIndex()}, append at: ${(ents[from] as Entry).index}]`);
    if (at < this.#ents.length) this.#ents.length = at;
    for (let k = from; k < ents.length; k++) this.#ents.push(ents[k] as Entry);
  }

  #offset(): number {
    return (this.#ents[0] as Entry).index;
  }
}

function dummy(index: number, term: number): Entry {
  return { term, index, type: EntryType.Normal, data: new Uint8Array(0) };
}
