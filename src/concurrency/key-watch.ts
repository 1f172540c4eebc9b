/**
 * A watcher the server holds for itself (a lock waiting for its predecessor's delete, an election
 * observer), on the same watchable store as client watch streams: it is told of each applied write as
 * clients are, and caught up from history when it starts in the past. No polling.
 *
 * Its queue is bounded: when the consumer falls behind, the store parks the watcher as a victim (holding
 * nothing) and catches it up from history once the consumer has taken what was queued.
 */
import { assert } from '../base/assert.js';
import { EtcdError } from '../base/errors.js';
import type { Event } from '../gen/etcd/mvcc/mvccpb/kv.js';
import type { Closable, WatchableStore } from '../watch/watchable-store.js';
import { aboveAllKeys, Watcher, type EventBatch, type WatcherOwner } from '../watch/watcher.js';
import { concurrencyLimits } from './limits.js';

export interface KeyWatchSpec {
  readonly key: Buffer;
  /** Watch every key with this prefix instead of the single key. */
  readonly prefix?: boolean;
  /** The first revision to report (0: from the next write). */
  readonly startRev: number;
}

export interface WatchedChanges {
  readonly events: readonly Event[];
  /** The revision the store had sent up to with these events (a watch response header's revision). */
  readonly headerRev: number;
}

/** Internal watcher ids count down from -1, apart from any client watch id. */
let nextInternalId = -1n;

export class KeyWatch implements WatcherOwner, Closable {
  readonly #store: WatchableStore;
  readonly #watcher: Watcher;
  readonly #queue: WatchedChanges[] = [];
  #wake: (() => void) | null = null;
  #failure: EtcdError | null = null;
  #closed = false;

  constructor(store: WatchableStore, spec: KeyWatchSpec) {
    // Past the member's watcher bound a waiter is refused rather than left without a watcher.
    if (!store.hasCapacity()) throw new EtcdError('TooManyRequests');
    this.#store = store;
    const key = spec.key.toString('latin1');
    const end = spec.prefix === true ? prefixEnd(key) : undefined;
    this.#watcher = new Watcher({
      id: nextInternalId--, key, end, noPut: false, noDelete: false, prevKv: false, progressNotify: false, fragment: false,
    }, this);
    store.registerStream(this);
    store.add(this.#watcher, spec.startRev);
  }

  /**
   * The next changes, in revision order. Rejects when the start revision was compacted away (Compacted),
   * the store shut down or the watch was closed (Stopped), or `signal` aborted (with its reason).
   */
  async next(signal: AbortSignal): Promise<WatchedChanges> {
    for (;;) {
      const head = this.#queue.shift();
      if (head !== undefined) {
        // Taking from a full queue makes room: the parked watcher may catch up again.
        if (this.#queue.length === concurrencyLimits.watchQueuedBatchesMax - 1) this.#store.wakeVictims(this);
        return head;
      }
      if (this.#failure !== null) throw this.#failure;
      if (this.#closed) throw new EtcdError('Stopped');
      signal.throwIfAborted();
      await this.#waitForWork(signal);
    }
  }

  /** Removes the watcher; every KeyWatch is closed by whoever opened it, whatever happened. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#store.remove(this.#watcher);
    this.#store.unregisterStream(this);
    this.#queue.length = 0;
    this.#wake?.();
  }

  #waitForWork(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.#wake = null;
        resolve();
      };
      signal.addEventListener('abort', done, { once: true });
      this.#wake = done;
    });
  }

  // ---- WatcherOwner: called by the store ----

  deliver(_w: Watcher, batch: EventBatch): boolean {
    if (this.#closed) return true;
    if (this.#queue.length >= concurrencyLimits.watchQueuedBatchesMax) return false;
    this.#queue.push({ events: batch.events.map((e) => e.event), headerRev: batch.headerRev });
    this.#wake?.();
    return true;
  }

  hasRoom(): boolean {
    return this.#queue.length < concurrencyLimits.watchQueuedBatchesMax;
  }

  compacted(): void {
    this.#fail(new EtcdError('Compacted'));
  }

  stateChanged(): void {}

  // ---- Closable: the store is shutting down ----

  shutdown(): void {
    this.#fail(new EtcdError('Stopped'));
  }

  #fail(err: EtcdError): void {
    this.#failure ??= err;
    this.#wake?.();
  }
}

/** The first latin1 key after every key with this prefix (etcd's prefix range end). */
export function prefixEnd(prefix: string): string {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const code = prefix.charCodeAt(i);
    assert(code <= 0xff, 'keys are latin1 strings of bytes');
    if (code < 0xff) return prefix.slice(0, i) + String.fromCharCode(code + 1);
  }
  return aboveAllKeys;
}
