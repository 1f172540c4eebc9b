/**
 * The watchable store: routes each applied write's events to the watchers that want them, and catches
 * up watchers that are behind from the MVCC history.
 *
 * - Synced watchers (a WatcherGroup: keys in a map, ranges in an interval tree) get a write's events
 *   synchronously from notify(), right after the write is applied: all events of one revision in one
 *   response, each event encoded once and shared.
 * - Unsynced watchers (a past start revision, or victims woken up) are caught up by a background loop,
 *   in rounds: up to syncWatchersMax watchers, and history read in bounded batches that always end on a
 *   revision boundary. The loop yields to the event loop between rounds, so writes are never held up.
 * - A watcher whose stream has no room for a response becomes a victim: parked with only its next
 *   revision, holding no events (so memory is bounded by the streams' queues, not by how far behind a
 *   client is), and moved back to unsynced when its stream drains.
 * - An unsynced watcher whose next revision was compacted away is told so (compact_revision) and dropped.
 *
 * Everything runs on one thread, and writes are applied synchronously: between two statements here no
 * write can slip in, which is what makes "move from unsynced to synced" safe without locks.
 */
import { assert } from '../base/assert.js';
import type { Logger } from '../base/logger.js';
import type { Event, KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { defaultWatchLimits, type WatchLimits } from './limits.js';
import { SharedEvent, type PrevKvLookup } from './shared-event.js';
import { WatcherGroup } from './watcher-group.js';
import type { Watcher, WatcherOwner, WatcherState } from './watcher.js';

export interface HistoryChanges {
  /** Change events in revision order (tombstones as DELETE events carrying their revision). */
  readonly events: Event[];
  /** Every revision up to here has been read in full (fromRev - 1 when nothing was read). */
  readonly lastRev: number;
}

export interface ChangesOptions {
  /** The last main revision to read (inclusive). */
  readonly toRev: number;
  /** Stop after about this many records / bytes, at the next revision boundary. */
  readonly recordsMax: number;
  readonly bytesMax: number;
  /** Only records whose latin1 key this accepts are decoded and returned. */
  readonly wanted: (key: string) => boolean;
}

/** What the watch subsystem reads from the MVCC store. */
export interface HistoryReader {
  revision(): number;
  /** -1 before the first compaction, as in etcd. */
  compactRevision(): number;
  changes(fromRev: number, options: ChangesOptions): HistoryChanges;
  /** The key-value of key at rev; undefined when absent or when rev is compacted. */
  kvAt(key: Buffer, rev: number): KeyValue | undefined;
}

export interface WatchableStoreOptions {
  readonly history: HistoryReader;
  readonly log: Logger;
  readonly limits?: Partial<WatchLimits>;
  /** How a catch-up round is scheduled; default setImmediate. Tests pass a manual scheduler. */
  readonly schedule?: (run: () => void) => void;
}

export interface WatchStats {
  readonly synced: number;
  readonly unsynced: number;
  readonly victims: number;
  readonly queuedBytes: number;
}

/** A stream that gathers the responses of one delivered write and writes them together. */
export interface OutputBuffer {
  flushOutput(): void;
}

/** Something the store can shut down when it closes (a stream). */
export interface Closable {
  shutdown(): void;
}

export class WatchableStore {
  readonly limits: WatchLimits;
  readonly history: HistoryReader;
  readonly lookupPrevKv: PrevKvLookup;
  readonly #log: Logger;
  readonly #schedule: (run: () => void) => void;
  readonly #synced = new WatcherGroup();
  /** Insertion-ordered: a round takes the first ones and re-appends those still behind (round robin). */
  readonly #unsynced = new Set<Watcher>();
  readonly #victims = new Map<WatcherOwner, Set<Watcher>>();
  readonly #streams = new Set<Closable>();
  /** Streams holding responses gathered during the current notify() or catch-up round. */
  readonly #pendingOutput: OutputBuffer[] = [];
  #victimCount = 0;
  /** The revision the next notify() must carry: every write that changes something is notified. */
  #nextRev: number;
  #queuedBytes = 0;
  #scheduled = false;
  #closed = false;

  constructor(options: WatchableStoreOptions) {
    this.limits = { ...defaultWatchLimits, ...options.limits };
    this.history = options.history;
    this.#log = options.log;
    this.#schedule = options.schedule ?? ((run) => void setImmediate(run));
    this.lookupPrevKv = (key, rev) => this.history.kvAt(key, rev);
    this.#nextRev = this.history.revision() + 1;
  }

  get watcherCount(): number {
    return this.#synced.size + this.#unsynced.size + this.#victimCount;
  }

  /** Bytes queued by all streams (each stream reports its changes). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  queued(deltaBytes: number): void {
    this.#queuedBytes += deltaBytes;
    assert(this.#queuedBytes >= 0, 'negative queued bytes');
  }

  stats(): WatchStats {
    return { synced: this.#synced.size, unsynced: this.#unsynced.size, victims: this.#victimCount, queuedBytes: this.#queuedBytes };
  }

  /** A stream gathered its first response since the last flush: it is flushed when delivery ends. */
  outputPending(stream: OutputBuffer): void {
    this.#pendingOutput.push(stream);
  }

  #flushOutput(): void {
    // A flush can make room elsewhere but never delivers, so nothing is added while this runs.
    const streams = this.#pendingOutput;
    for (let i = 0; i < streams.length; i++) streams[i]!.flushOutput();
    streams.length = 0;
  }

  registerStream(stream: Closable): void {
    this.#streams.add(stream);
  }

  unregisterStream(stream: Closable): void {
    this.#streams.delete(stream);
  }

  /** Whether another watcher may be added (watchersMax). */
  hasCapacity(): boolean {
    return !this.#closed && this.watcherCount < this.limits.watchersMax;
  }

  /**
   * Starts w at startRev (etcd's rule: 0 or a future revision is synced from max(current + 1, startRev);
   * a past one is caught up from history). Check hasCapacity() first.
   */
  add(w: Watcher, startRev: number): void {
    assert(this.hasCapacity(), 'watcher added past watchersMax or after close');
    assert(w.state === 'canceled', 'watcher added twice');
    const current = this.history.revision();
    if (startRev === 0 || startRev > current) {
      w.minRev = Math.max(current + 1, startRev);
      this.#synced.add(w);
      this.#setState(w, 'synced');
    } else {
      w.minRev = startRev;
      this.#unsynced.add(w);
      this.#setState(w, 'unsynced');
      this.#kick();
    }
  }

  /** Removes w wherever it is (cancel, or its stream closed). */
  remove(w: Watcher): void {
    switch (w.state) {
      case 'synced':
        assert(this.#synced.delete(w), 'synced watcher missing from the synced group');
        break;
      case 'unsynced':
        assert(this.#unsynced.delete(w), 'unsynced watcher missing');
        break;
      case 'victim':
        assert(this.#victims.get(w.owner)?.delete(w) === true, 'victim missing');
        this.#victimCount--;
        break;
      case 'compacted':
      case 'canceled':
        break;
    }
    this.#setState(w, 'canceled');
  }

  /** The events of one applied write txn (all at `revision`), delivered to the synced watchers. */
  notify(events: readonly Event[], revision: number): void {
    if (events.length === 0) return;
    if (revision !== this.#nextRev) {
      // Revisions the synced watchers were not told of: the store was replaced (a snapshot from the
      // leader), or a write bypassed notify(). History has them all, this write's included.
      this.#log.warn('watch: revisions changed without notification; catching watchers up from history', { expected: this.#nextRev, revision });
      this.#unsyncAllFrom(this.#nextRev);
      this.#nextRev = revision + 1;
      return;
    }
    this.#nextRev = revision + 1;
    if (this.#synced.size === 0) return;
    if (events.length === 1) {
      this.#notifyOne(new SharedEvent(events[0]!), revision);
      return this.#flushOutput();
    }
    const batches = new Map<Watcher, SharedEvent[]>();
    for (const ev of events) {
      const shared = new SharedEvent(ev);
      assert(shared.revision === revision, () => `event at ${shared.revision} notified as revision ${revision}`);
      this.#synced.forEachWatching(shared.key, (w) => {
        if (revision < w.minRev) return;
        const batch = batches.get(w);
        if (batch === undefined) batches.set(w, [shared]);
        else batch.push(shared);
      });
    }
    for (const [w, events] of batches) {
      if (w.state !== 'synced') continue; // canceled by a side effect of an earlier delivery
      if (w.owner.deliver(w, { events, headerRev: revision })) continue;
      this.#synced.delete(w);
      w.minRev = revision;
      this.#park(w);
    }
    this.#flushOutput();
  }

  /** The common single-event write, without per-watcher batches. */
  #notifyOne(shared: SharedEvent, revision: number): void {
    assert(shared.revision === revision, () => `event at ${shared.revision} notified as revision ${revision}`);
    const targets: Watcher[] = [];
    this.#synced.forEachWatching(shared.key, (w) => {
      if (revision >= w.minRev) targets.push(w);
    });
    const batch = { events: [shared], headerRev: revision };
    for (const w of targets) {
      if (w.state !== 'synced' || w.owner.deliver(w, batch)) continue;
      this.#synced.delete(w);
      w.minRev = revision;
      this.#park(w);
    }
  }

  /**
   * The store under the watchers was replaced (a snapshot received from the leader): synced watchers
   * catch up from history from the first revision they were not told of. Safe to call at any time.
   */
  resync(): void {
    const current = this.history.revision();
    if (current + 1 === this.#nextRev) return;
    this.#unsyncAllFrom(Math.min(this.#nextRev, current + 1));
    this.#nextRev = current + 1;
  }

  #unsyncAllFrom(rev: number): void {
    for (const w of [...this.#synced.values()]) {
      this.#synced.delete(w);
      w.minRev = Math.max(w.minRev, rev);
      this.#unsynced.add(w);
      this.#setState(w, 'unsynced');
    }
    this.#kick();
  }

  /** A stream has room again: its victims go back to be caught up. */
  wakeVictims(owner: WatcherOwner): void {
    const parked = this.#victims.get(owner);
    if (parked === undefined || parked.size === 0) return;
    this.#victims.delete(owner);
    this.#victimCount -= parked.size;
    for (const w of parked) {
      this.#unsynced.add(w);
      this.#setState(w, 'unsynced');
    }
    this.#kick();
  }

  /** Ends every stream (server shutdown); clients reconnect elsewhere or later. */
  close(): void {
    if (this.#closed) return;
    for (const s of [...this.#streams]) s.shutdown();
    this.#closed = true;
    this.#streams.clear();
  }

  #park(w: Watcher): void {
    let set = this.#victims.get(w.owner);
    if (set === undefined) this.#victims.set(w.owner, (set = new Set()));
    set.add(w);
    this.#victimCount++;
    this.#setState(w, 'victim');
  }

  #setState(w: Watcher, next: WatcherState): void {
    const from = w.state;
    if (from === next) return;
    w.state = next;
    w.owner.stateChanged(w, from);
  }

  #kick(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    this.#schedule(() => {
      this.#scheduled = false;
      if (this.#closed) return;
      try {
        this.syncRound();
      } catch (err) {
        this.#log.error('watch catch-up round failed', { error: String((err as Error)?.stack ?? err) });
        throw err;
      }
    });
  }

  /**
   * One catch-up round (the background loop runs these until no watcher is behind). Returns how many
   * watchers are still unsynced. Exposed for tests; the store schedules rounds itself.
   */
  syncRound(): number {
    if (this.#unsynced.size === 0) return 0;
    const current = this.history.revision();
    const chosen = this.#choose(current, this.history.compactRevision());
    if (chosen.group.size === 0) return this.#unsynced.size;
    const { events, lastRev } = this.history.changes(chosen.minRev, {
      toRev: current,
      recordsMax: this.limits.syncRecordsMax,
      bytesMax: this.limits.syncBytesMax,
      wanted: (key) => chosen.group.contains(key),
    });
    assert(lastRev >= chosen.minRev - 1 && lastRev <= current, () => `history read ended at ${lastRev}`);
    const batches = new Map<Watcher, SharedEvent[]>();
    for (const ev of events) {
      const shared = new SharedEvent(ev);
      chosen.group.forEachWatching(shared.key, (w) => {
        if (shared.revision < w.minRev) return;
        const batch = batches.get(w);
        if (batch === undefined) batches.set(w, [shared]);
        else batch.push(shared);
      });
    }
    for (const w of chosen.group.values()) this.#advance(w, { batch: batches.get(w), lastRev, current });
    this.#flushOutput();
    if (this.#unsynced.size > 0) this.#kick();
    return this.#unsynced.size;
  }

  /** Picks this round's watchers; tells compacted ones, parks those whose stream is full. */
  #choose(current: number, compactRev: number): { group: WatcherGroup; minRev: number } {
    const group = new WatcherGroup();
    let minRev = Infinity;
    for (const w of this.#unsynced) {
      if (group.size >= this.limits.syncWatchersMax) break;
      if (w.minRev < compactRev) {
        // The client hears of it before the state change can release a deferred progress response.
        this.#unsynced.delete(w);
        w.owner.compacted(w, compactRev);
        this.#setState(w, 'compacted');
        continue;
      }
      if (w.minRev <= 0) {
        // etcd reads no history for a negative start revision that is not below the compacted one.
        w.minRev = current + 1;
      }
      if (!w.owner.hasRoom()) {
        this.#unsynced.delete(w);
        this.#park(w);
        continue;
      }
      group.add(w);
      minRev = Math.min(minRev, w.minRev);
    }
    return { group, minRev };
  }

  /** After a round's read: send w its events, then move it on (synced, or to the back of the queue). */
  #advance(w: Watcher, r: { batch: SharedEvent[] | undefined; lastRev: number; current: number }): void {
    if (w.state !== 'unsynced') return; // canceled by a side effect of an earlier delivery
    this.#unsynced.delete(w);
    // The header revision is the last one read: everything up to it is now sent (a bookmark), even when
    // this round stopped short of the current revision.
    if (r.batch !== undefined && !w.owner.deliver(w, { events: r.batch, headerRev: r.lastRev })) {
      this.#park(w);
      return;
    }
    w.minRev = Math.max(w.minRev, r.lastRev + 1);
    if (w.minRev > r.current) {
      this.#synced.add(w);
      this.#setState(w, 'synced');
    } else {
      this.#unsynced.add(w);
    }
  }
}
