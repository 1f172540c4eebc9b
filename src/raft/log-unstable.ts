/**
 * The tail of the log not yet known to be on stable storage: an optional incoming snapshot followed
 * by entries. Entries handed to the host for persisting are "in progress" until it reports them stable.
 */
import { assert } from '../base/assert.js';
import type { Logger } from './logger.js';
import type { Entry, Snapshot } from './types.js';

export class Unstable {
  snapshot: Snapshot | null = null;
  /** entries[i] has index offset + i. */
  entries: Entry[] = [];
  offset: number;
  snapshotInProgress = false;
  /** Entries below this index were handed to the host already (a Ready is persisting them). */
  offsetInProgress: number;
  /** The entries array was handed out by reference: copy it before mutating. */
  #shared = false;
  readonly #logger: Logger;

  constructor(offset: number, logger: Logger) {
    this.offset = offset;
    this.offsetInProgress = offset;
    this.#logger = logger;
  }

  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length !== 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** Entries not yet handed out; the array itself when all of them are new (no copy). */
  nextEntries(): readonly Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    if (inProgress >= this.entries.length) return [];
    if (inProgress === 0) {
      this.#shared = true;
      return this.entries;
    }
    return this.entries.slice(inProgress);
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress - this.offset < this.entries.length;
  }

  nextSnapshot(): Snapshot | null {
    return this.snapshot === null || this.snapshotInProgress ? null : this.snapshot;
  }

  /** Marks everything currently unstable as handed to the host. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== null) this.snapshotInProgress = true;
  }

  /** Entries up to (i, t) reached stable storage; ignored if the log changed under them meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined) {
      this.#logger.info(`entry at index ${i} missing from unstable log; ignoring`);
      return;
    }
    if (i < this.offset) {
      this.#logger.info(`entry at index ${i} matched unstable snapshot; ignoring`);
      return;
    }
    if (gt !== t) {
      this.#logger.info(`entry at (index,term)=(${i},${t}) mismatched with entry at (${i},${gt}) in unstable log; ignoring`);
      return;
    }
    const num = i + 1 - this.offset;
    if (num === this.entries.length) {
      this.entries = [];
    } else {
      this.entries = this.entries.slice(num);
    }
    this.#shared = false;
    this.offset = i + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === i) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.#shared = false;
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const fromIndex = (ents[0] as Entry).index;
    if (fromIndex === this.offset + this.entries.length) {
      this.#ownEntries();
    } else if (fromIndex <= this.offset) {
      this.#logger.info(`replace the unstable entries from index ${fromIndex}`);
      // The whole unstable tail is replaced; the previous array may still be in a host's hands.
      this.entries = [];
      this.#shared = false;
      this.offset = fromIndex;
      this.offsetInProgress = this.offset;
    } else {
      this.#logger.info(`truncate the unstable entries before index ${fromIndex}`);
      this.entries = this.slice(this.offset, fromIndex);
      this.#shared = false;
      // Entries from fromIndex on are new even if an older version of them was handed out.
      this.offsetInProgress = Math.min(this.offsetInProgress, fromIndex);
    }
    const dst = this.entries;
    for (let k = 0; k < ents.length; k++) dst.push(ents[k] as Entry);
  }

  /** Appends one entry (the leader's hot path: no intermediate array). */
  appendOne(e: Entry): void {
    assert(e.index === this.offset + this.entries.length, () => `unstable append gap at ${e.index}`);
    this.#ownEntries();
    this.entries.push(e);
  }

  /** The array to push new entries at the end of (copied first if a Ready holds it). */
  appendTarget(): Entry[] {
    this.#ownEntries();
    return this.entries;
  }

  /** Entries [lo, hi); the caller checked the bounds. Returns the array itself for a full range. */
  slice(lo: number, hi: number): Entry[] {
    this.#mustCheckOutOfBounds(lo, hi);
    if (lo === this.offset && hi === this.offset + this.entries.length) {
      this.#shared = true;
      return this.entries;
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }

  #ownEntries(): void {
    if (this.#shared) {
      this.entries = this.entries.slice();
      this.#shared = false;
    }
  }

  #mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, () => `invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + this.entries.length;
    assert(lo >= this.offset && hi <= upper, () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
  }
}
