/**
 * The raft log as the state machine sees it: the stable part (RaftStorage, read-only here) followed by
 * the unstable tail, plus the commit, applying and applied indexes.
 */
import { assert } from '../base/assert.js';
import type { RaftStorage } from './contract.js';
import { StorageError } from './contract.js';
import { Unstable } from './log-unstable.js';
import type { Logger } from './logger.js';
import type { Entry, Snapshot } from './types.js';
import { countWithinSize, entrySizeBytes, entsSizeBytes, NO_LIMIT } from './util.js';

export class RaftLog {
  readonly storage: RaftStorage;
  readonly unstable: Unstable;
  /** Highest index known to be on a quorum of stable storages. */
  committed: number;
  /** Highest index handed to the host for applying (>= applied). */
  applying: number;
  /** Highest index the host reported applied. */
  applied: number;
  readonly #maxApplyingEntsBytes: number;
  #applyingEntsBytes = 0;
  /** A Ready with committed entries is out: wait for advance() before handing out more. */
  #applyingEntsPaused = false;
  readonly #logger: Logger;

  constructor(storage: RaftStorage, opts: { logger: Logger; maxApplyingEntsBytes: number }) {
    this.storage = storage;
    this.#logger = opts.logger;
    this.#maxApplyingEntsBytes = opts.maxApplyingEntsBytes;
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1, opts.logger);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, applying=${this.applying}, unstable.offset=${this.unstable.offset}, unstable.offsetInProgress=${this.unstable.offsetInProgress}, len(unstable.Entries)=${this.unstable.entries.length}`;
  }

  /**
   * Appends entries following (index, logTerm) if that entry matches ours; returns the index of the
   * last new entry, or undefined when the log-matching check fails.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewI = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, () => `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      const offset = index + 1;
      assert(ci - offset <= ents.length, () => `index ${ci - offset} is out of range [${ents.length}]`);
      this.append(ci - offset === 0 ? ents : ents.slice(ci - offset));
    }
    this.commitTo(Math.min(committed, lastNewI));
    return lastNewI;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as Entry).index - 1;
    assert(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Leader's append of one new entry at lastIndex()+1. */
  appendOne(e: Entry): void {
    this.unstable.appendOne(e);
  }

  /**
   * Leader's append of new entries stamped (term, lastIndex()+1...) from payloads: one allocation per
   * entry and no intermediate array.
   */
  appendNew(term: number, type: Entry['type'], data: readonly Uint8Array[]): number {
    const first = this.lastIndex() + 1;
    assert(first === this.unstable.offset + this.unstable.entries.length, () => `leader append at ${first} is not at the unstable end`);
    const dst = this.unstable.appendTarget();
    for (let i = 0; i < data.length; i++) dst.push({ term, index: first + i, type, data: data[i] as Uint8Array });
    return first + data.length - 1;
  }

  /**
   * The index of the first entry whose term differs from ours, or of the first new entry if all
   * existing ones match; 0 if every entry is already in the log.
   */
  findConflict(ents: readonly Entry[]): number {
    for (let k = 0; k < ents.length; k++) {
      const e = ents[k] as Entry;
      if (!this.matchTerm(e.index, e.term)) {
        if (e.index <= this.lastIndex()) {
          this.#logger.info(`found conflict at index ${e.index} [existing term: ${this.zeroTermOnOutOfBounds(e.index)}, conflicting term: ${e.term}]`);
        }
        return e.index;
      }
    }
    return 0;
  }

  /**
   * The largest index <= index whose term is <= term: where a leader's log may match a follower that
   * rejected an append with this hint (fast backtracking, one round trip per term instead of per entry).
   */
  findConflictByTerm(index: number, term: number): number {
    for (; index > 0; index--) {
      const t = this.term(index);
      // Compacted or unavailable: no better answer than this index.
      if (t === undefined) return index;
      if (t <= term) return index;
    }
    return 0;
  }

  hasNextUnstableEnts(): boolean {
    return this.unstable.hasNextEntries();
  }

  nextUnstableEnts(): readonly Entry[] {
    return this.unstable.nextEntries();
  }

  hasNextOrInProgressUnstableEnts(): boolean {
    return this.unstable.entries.length > 0;
  }

  /** Committed entries not yet handed out for applying, at most maxApplyingEntsBytes of them. */
  nextCommittedEnts(allowUnstable: boolean): Entry[] {
    if (this.#applyingEntsPaused) return [];
    if (this.hasNextOrInProgressSnapshot()) return [];
    const lo = this.applying + 1;
    const hi = this.#maxAppliableIndex(allowUnstable) + 1;
    if (lo >= hi) return [];
    const maxBytes = this.#maxApplyingEntsBytes - this.#applyingEntsBytes;
    assert(maxBytes > 0, () => `applying entry size (${this.#applyingEntsBytes}) exceeds the limit`);
    return this.slice(lo, hi, maxBytes);
  }

  hasNextCommittedEnts(allowUnstable: boolean): boolean {
    if (this.#applyingEntsPaused) return false;
    if (this.hasNextOrInProgressSnapshot()) return false;
    return this.applying + 1 < this.#maxAppliableIndex(allowUnstable) + 1;
  }

  #maxAppliableIndex(allowUnstable: boolean): number {
    let hi = this.committed;
    if (!allowUnstable) hi = Math.min(hi, this.unstable.offset - 1);
    return hi;
  }

  nextUnstableSnapshot(): Snapshot | null {
    return this.unstable.nextSnapshot();
  }

  hasNextUnstableSnapshot(): boolean {
    return this.unstable.nextSnapshot() !== null;
  }

  hasNextOrInProgressSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  snapshot(): Snapshot {
    if (this.unstable.snapshot !== null) return this.unstable.snapshot;
    return this.storage.snapshot();
  }

  firstIndex(): number {
    const i = this.unstable.maybeFirstIndex();
    return i !== undefined ? i : this.storage.firstIndex();
  }

  lastIndex(): number {
    const i = this.unstable.maybeLastIndex();
    return i !== undefined ? i : this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // Never decrease commit.
    if (this.committed < toCommit) {
      assert(toCommit <= this.lastIndex(), () => `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`);
      this.committed = toCommit;
    }
  }

  appliedTo(i: number, sizeBytes: number): void {
    if (i === 0) return;
    assert(this.committed >= i && i >= this.applied, () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    this.applied = i;
    this.applying = Math.max(this.applying, i);
    this.#applyingEntsBytes = this.#applyingEntsBytes > sizeBytes ? this.#applyingEntsBytes - sizeBytes : 0;
    this.#applyingEntsPaused = this.#applyingEntsBytes >= this.#maxApplyingEntsBytes;
  }

  acceptApplying(i: number, sizeBytes: number, allowUnstable: boolean): void {
    assert(this.committed >= i, () => `applying(${i}) is out of range [committed(${this.committed})]`);
    this.applying = i;
    this.#applyingEntsBytes += sizeBytes;
    // Pause when over budget, or when the last hand-out was cut short by the size limit: the next one
    // waits for advance() so that a host cannot hold unbounded committed entries.
    this.#applyingEntsPaused =
      this.#applyingEntsBytes >= this.#maxApplyingEntsBytes || i < this.#maxAppliableIndex(allowUnstable);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  acceptUnstable(): void {
    this.unstable.acceptInProgress();
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'unexpected error when getting the last term');
    return t;
  }

  /** The term of entry i, or undefined when it is compacted away or beyond the last index. */
  term(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    // The valid range is [index of the dummy entry, last index].
    if (i + 1 < this.firstIndex() || i > this.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch (err) {
      if (err instanceof StorageError && (err.reason === 'compacted' || err.reason === 'unavailable')) return undefined;
      throw err;
    }
  }

  zeroTermOnOutOfBounds(i: number): number {
    return this.term(i) ?? 0;
  }

  /** Entries from i on, within maxBytes; throws StorageError('compacted') when i is compacted. */
  entries(i: number, maxBytes: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), NO_LIMIT);
  }

  /**
   * Whether a candidate's log (last index, last term) is at least as up-to-date as ours (§5.4.1):
   * the later term wins; with equal terms the longer log wins.
   */
  isUpToDate(lasti: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    const t = this.term(i);
    return t !== undefined && t === term;
  }

  /** Commits maxIndex if its entry is from term (§5.4.2: only current-term entries commit by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnOutOfBounds(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(s: Snapshot): void {
    this.#logger.info(`log [${this.toString()}] starts to restore snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries [lo, hi) within maxBytes (at least one), from storage and/or the unstable tail. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    this.#mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    const uOffset = this.unstable.offset;
    if (lo >= uOffset) {
      const ents = this.unstable.slice(lo, hi);
      const n = countWithinSize(ents, maxBytes);
      return n === ents.length ? ents : ents.slice(0, n);
    }
    const cut = Math.min(hi, uOffset);
    const stored = this.#storageEntries(lo, cut, maxBytes);
    if (hi <= uOffset || stored.length < cut - lo) return stored;
    // The stable part fit entirely: top it up from the unstable tail within the remaining budget.
    const used = entsSizeBytes(stored);
    if (used >= maxBytes) return stored;
    const tail = this.unstable.slice(uOffset, hi);
    const n = countWithinSize(tail, maxBytes - used);
    // countWithinSize grants one entry even past the budget; here the budget is shared, so check it.
    const take = n === 1 && entrySizeBytes(tail[0] as Entry) > maxBytes - used ? 0 : n;
    // A copy: storage may hand out an array it keeps.
    return take === 0 ? stored : stored.concat(take === tail.length ? tail : tail.slice(0, take));
  }

  #storageEntries(lo: number, hi: number, maxBytes: number): Entry[] {
    try {
      return this.storage.entries(lo, hi, maxBytes);
    } catch (err) {
      if (err instanceof StorageError && err.reason === 'unavailable') {
        assert(false, () => `entries[${lo}:${hi}) is unavailable from storage`);
      }
      throw err;
    }
  }

  #mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new StorageError('compacted');
    const length = this.lastIndex() + 1 - fi;
    assert(hi <= fi + length, () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
