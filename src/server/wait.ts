/**
 * Waiters for proposals: a client's request registers under its request id, the apply loop wakes it with
 * the result of applying that id. Bounded: past `waitersMax` in flight, new requests get TooManyRequests.
 */
import { EtcdError } from '../base/errors.js';
import { assert } from '../base/assert.js';

interface Waiter {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class WaitRegistry {
  readonly #waiters = new Map<bigint, Waiter>();
  readonly #waitersMax: number;

  constructor(options: { waitersMax: number }) {
    this.#waitersMax = options.waitersMax;
  }

  get size(): number {
    return this.#waiters.size;
  }

  /** Registers `id` and returns the promise that trigger() or fail() settles. */
  register<T>(id: bigint): Promise<T> {
    if (this.#waiters.size >= this.#waitersMax) throw new EtcdError('TooManyRequests');
    assert(!this.#waiters.has(id), () => `duplicate request id ${id}`);
    return new Promise<T>((resolve, reject) => {
      this.#waiters.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
  }

  has(id: bigint): boolean {
    return this.#waiters.has(id);
  }

  trigger(id: bigint, value: unknown): void {
    const w = this.#waiters.get(id);
    if (!w) return;
    this.#waiters.delete(id);
    w.resolve(value);
  }

  fail(id: bigint, err: unknown): void {
    const w = this.#waiters.get(id);
    if (!w) return;
    this.#waiters.delete(id);
    w.reject(err);
  }

  failAll(err: unknown): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const w of all) w.reject(err);
  }
}

/**
 * Request ids unique across members and restarts: 2 bytes of the member id, 5 bytes of start time in ms,
 * 1 byte counter that carries into the time part (so ids keep increasing past 256 per ms).
 */
export class RequestIdGenerator {
  #next: bigint;
  constructor(memberId: bigint, nowMs: number) {
    const prefix = (memberId & 0xffffn) << 48n;
    const suffix = (BigInt(nowMs) & 0xff_ffff_ffffn) << 8n;
    this.#next = prefix | suffix;
  }
  next(): bigint {
    const id = this.#next;
    const low = (this.#next + 1n) & 0xffff_ffff_ffffn;
    this.#next = (this.#next & ~0xffff_ffff_ffffn) | low;
    return id;
  }
}
