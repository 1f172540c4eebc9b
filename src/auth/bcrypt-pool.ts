/**
 * bcrypt runs on libuv's threadpool, which the WAL's fdatasync shares. Unbounded, a burst of logins would
 * occupy every pool thread for ~50 ms each and stall the log (and with it every write). So at most
 * `concurrency` bcrypt jobs run at once (the pool size minus two, at least one); the rest wait in a
 * bounded queue, and past it a login is refused as etcd refuses excess work ("too many requests").
 */
import bcrypt from 'bcrypt';
import { EtcdError } from '../base/errors.js';

export const bcryptLimits = {
  queuedMax: 10_000,
} as const;

function poolSize(): number {
  const n = Number(process.env['UV_THREADPOOL_SIZE'] ?? '4');
  return Number.isSafeInteger(n) && n > 0 ? n : 4;
}

class Gate {
  readonly #concurrency: number;
  #running = 0;
  readonly #queue: Array<() => void> = [];

  constructor(concurrency: number) {
    this.#concurrency = concurrency;
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#queue.length >= bcryptLimits.queuedMax) throw new EtcdError('TooManyRequests');
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running += 1;
    }
    try {
      return await job();
    } finally {
      // Hand the slot straight to the next waiter, or give it back.
      const next = this.#queue.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}

const gate = new Gate(Math.max(1, poolSize() - 2));

export function bcryptCompare(password: string, hash: string): Promise<boolean> {
  return gate.run(() => bcrypt.compare(password, hash));
}

/** A hash with etcd's "$2a$" prefix, so a backend written here reads the same in etcd. */
export function bcryptHash(password: string, cost: number): Promise<string> {
  return gate.run(async () => bcrypt.hash(password, await bcrypt.genSalt(cost, 'a')));
}
