/**
 * A min-heap of lease ids by time (ms), with one entry per id: setting an id again moves it. The lessor
 * keeps two, expiries and checkpoint times; one entry per lease keeps each bounded by the lease count
 * however often leases are renewed.
 */
import { assert } from '../base/assert.js';

export interface QueueItem {
  readonly id: bigint;
  readonly timeMs: number;
}

export class LeaseQueue {
  readonly #items: QueueItem[] = [];
  readonly #pos = new Map<bigint, number>();

  get size(): number {
    return this.#items.length;
  }

  peek(): QueueItem | undefined {
    return this.#items[0];
  }

  has(id: bigint): boolean {
    return this.#pos.has(id);
  }

  /** Inserts `id` at `timeMs`, or moves it there. */
  set(id: bigint, timeMs: number): void {
    assert(!Number.isNaN(timeMs), 'queue time is NaN');
    const at = this.#pos.get(id);
    if (at === undefined) {
      this.#items.push({ id, timeMs });
      this.#pos.set(id, this.#items.length - 1);
      this.#up(this.#items.length - 1);
      return;
    }
    const old = this.#items[at]!.timeMs;
    this.#items[at] = { id, timeMs };
    if (timeMs < old) this.#up(at);
    else this.#down(at);
  }

  delete(id: bigint): boolean {
    const at = this.#pos.get(id);
    if (at === undefined) return false;
    const last = this.#items.pop()!;
    this.#pos.delete(id);
    if (at < this.#items.length) {
      this.#items[at] = last;
      this.#pos.set(last.id, at);
      this.#down(at);
      this.#up(at);
    }
    return true;
  }

  pop(): QueueItem | undefined {
    const top = this.#items[0];
    if (top !== undefined) this.delete(top.id);
    return top;
  }

  clear(): void {
    this.#items.length = 0;
    this.#pos.clear();
  }

  #swap(i: number, j: number): void {
    const a = this.#items[i]!;
    const b = this.#items[j]!;
    this.#items[i] = b;
    this.#items[j] = a;
    this.#pos.set(b.id, i);
    this.#pos.set(a.id, j);
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#items[parent]!.timeMs <= this.#items[i]!.timeMs) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < n && this.#items[l]!.timeMs < this.#items[min]!.timeMs) min = l;
      if (r < n && this.#items[r]!.timeMs < this.#items[min]!.timeMs) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }
}
