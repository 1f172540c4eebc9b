/**
 * The append messages in flight to one follower, as a ring of (last index, payload bytes): flow control
 * bounded both by message count and by bytes. The ring grows on demand up to its capacity.
 */
import { assert } from '../../base/assert.js';

export class Inflights {
  #start = 0;
  #count = 0;
  #bytes = 0;
  readonly #size: number;
  /** 0 = no byte limit. */
  readonly #maxBytes: number;
  #indexes: Float64Array;
  #sizes: Float64Array;

  constructor(size: number, maxBytes: number) {
    assert(Number.isSafeInteger(size) && size > 0, () => `inflights size must be positive, got ${size}`);
    this.#size = size;
    this.#maxBytes = maxBytes;
    const initial = Math.min(size, 16);
    this.#indexes = new Float64Array(initial);
    this.#sizes = new Float64Array(initial);
  }

  clone(): Inflights {
    const c = new Inflights(this.#size, this.#maxBytes);
    c.#start = this.#start;
    c.#count = this.#count;
    c.#bytes = this.#bytes;
    c.#indexes = this.#indexes.slice();
    c.#sizes = this.#sizes.slice();
    return c;
  }

  /** Records a message whose last entry is index, carrying bytes of payload. Indexes must increase. */
  add(index: number, bytes: number): void {
    assert(!this.full(), 'cannot add into a full inflights');
    let next = this.#start + this.#count;
    if (next >= this.#size) next -= this.#size;
    if (next >= this.#indexes.length) this.#grow();
    this.#indexes[next] = index;
    this.#sizes[next] = bytes;
    this.#count++;
    this.#bytes += bytes;
  }

  #grow(): void {
    const newSize = Math.min(Math.max(this.#indexes.length * 2, 1), this.#size);
    const idx = new Float64Array(newSize);
    const sz = new Float64Array(newSize);
    idx.set(this.#indexes);
    sz.set(this.#sizes);
    this.#indexes = idx;
    this.#sizes = sz;
  }

  /** Frees every message whose last index is <= to (the follower acknowledged up to `to`). */
  freeLE(to: number): void {
    if (this.#count === 0 || to < (this.#indexes[this.#start] as number)) return;
    let idx = this.#start;
    let i = 0;
    let bytes = 0;
    for (; i < this.#count; i++) {
      if (to < (this.#indexes[idx] as number)) break;
      bytes += this.#sizes[idx] as number;
      idx++;
      if (idx >= this.#size) idx -= this.#size;
    }
    this.#count -= i;
    this.#bytes -= bytes;
    this.#start = this.#count === 0 ? 0 : idx;
  }

  full(): boolean {
    return this.#count === this.#size || (this.#maxBytes !== 0 && this.#bytes >= this.#maxBytes);
  }

  count(): number {
    return this.#count;
  }

  bytes(): number {
    return this.#bytes;
  }

  reset(): void {
    this.#count = 0;
    this.#start = 0;
    this.#bytes = 0;
  }
}
