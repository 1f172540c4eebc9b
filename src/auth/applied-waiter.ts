/**
 * Waits for this member to apply a raft index: a simple token names the entry that issued it, and a
 * member behind that entry must catch up before it can tell whether the token is real.
 */
import { EtcdError } from '../base/errors.js';

/** Bounds the waiters: past it, new waits fail at once rather than queue without limit. */
export const appliedWaitersMax = 10_000;

export class AppliedWaiter {
  readonly #applied: () => number;
  readonly #timeoutMs: number;
  #waiters: Array<{ index: number; done: (ok: boolean) => void }> = [];

  constructor(options: { applied: () => number; timeoutMs: number }) {
    this.#applied = options.applied;
    this.#timeoutMs = options.timeoutMs;
  }

  wait(index: number): Promise<void> {
    if (index <= this.#applied()) return Promise.resolve();
    if (this.#waiters.length >= appliedWaitersMax) return Promise.reject(new EtcdError('TooManyRequests'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new EtcdError('Timeout'));
      }, this.#timeoutMs);
      const waiter = {
        index,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  onApplied(index: number): void {
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((w) => w.index <= index);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.index > index);
    for (const w of ready) w.done(true);
  }
}
