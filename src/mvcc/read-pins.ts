/**
 * Revisions that reads in progress still need on disk. A streamed range reads the records visible at its
 * revision over many event-loop turns; compaction at a higher revision waits for it before deleting
 * history (etcd gets the same from bbolt: a read transaction keeps the pages it sees).
 */
import { assert } from '../base/assert.js';
import { EtcdError } from '../base/errors.js';

/** More pins than this is a leak (each streamed range holds one while it is written). */
const pinsMax = 100_000;

interface Waiter {
  rev: number;
  resolve: () => void;
}

export class ReadPins {
  /** Pinned revision -> how many reads hold it. */
  readonly #held = new Map<number, number>();
  #count = 0;
  #waiters: Waiter[] = [];
  #closed = false;

  get count(): number {
    return this.#count;
  }

  /** Holds atRev; the returned release may be called any number of times. Past pinsMax: TooManyRequests. */
  pin(atRev: number): () => void {
    // Clients decide how many streamed ranges are open: past the limit it is their error, not ours.
    if (this.#count >= pinsMax) throw new EtcdError('TooManyRequests');
    this.#held.set(atRev, (this.#held.get(atRev) ?? 0) + 1);
    this.#count++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release(atRev);
    };
  }

  #release(atRev: number): void {
    const n = this.#held.get(atRev);
    assert(n !== undefined && n > 0, 'release of a revision not pinned');
    if (n === 1) this.#held.delete(atRev);
    else this.#held.set(atRev, n - 1);
    this.#count--;
    this.#wake();
  }

  #anyBelow(rev: number): boolean {
    for (const r of this.#held.keys()) if (r < rev) return true;
    return false;
  }

  /** Resolves once no pin below rev is held, or the pins are closed. */
  readersBelow(rev: number): Promise<void> {
    if (this.#closed || !this.#anyBelow(rev)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ rev, resolve }));
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const waiting: Waiter[] = [];
    for (const w of this.#waiters) {
      if (this.#closed || !this.#anyBelow(w.rev)) w.resolve();
      else waiting.push(w);
    }
    this.#waiters = waiting;
  }

  /** The store is closing: nobody waits for reads that will fail anyway. */
  close(): void {
    this.#closed = true;
    this.#wake();
  }
}
