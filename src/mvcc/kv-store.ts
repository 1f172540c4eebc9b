/**
 * The MVCC key-value store: every write txn creates one main revision; each change in it a sub revision.
 *
 * Values live only in the backend under their revision key (the mmap serves reads; nothing is cached
 * here); the tree index maps each key to its revisions. Reads are synchronous and see a consistent state
 * because the store is only changed synchronously: a write txn runs start to end() without yielding, and
 * its changes (at currentRevision + 1) are invisible to reads until end() bumps the current revision.
 *
 * Compaction and HashKV run as jobs, one at a time, in the order they were asked for (etcd's FIFO
 * scheduler); see compaction.ts.
 */
import { assert } from '../base/assert.js';
import { EtcdError } from '../base/errors.js';
import { type Event, Event_EventType, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { type Backend } from '../storage/backend/backend.js';
import { type JobContext, finishedCompactKey, hashKv, runCompaction, scheduledCompactKey } from './compaction.js';
import { decodeKeyOf, decodeKeyValue, decodeKeyValueMeta, encodeKeyValue } from './kv-codec.js';
import { type IndexHit, newHit } from './key-index.js';
import { ReadPins } from './read-pins.js';
import { checkRevisionNumber, isTombstoneKey, mainOfKey, revisionKey, subOfKey } from './revision.js';
import { type RangeEnd, TreeIndex } from './tree-index.js';

/** Key-to-lease bookkeeping, implemented by the lessor: the store tells it which key holds which lease. */
export interface LeaseAttachments {
  /** The lease the key is attached to (0n: none). Keys are latin1 strings of the key bytes. */
  leaseOf(key: string): bigint;
  attach(lease: bigint, key: string): void;
  detach(lease: bigint, key: string): void;
}

export interface KvStoreOptions {
  /** Keys per index-compaction chunk and records per compaction/hash batch (etcd's default is 1000). */
  compactionBatchLimit?: number;
  /** Pause between physical compaction batches (etcd sleeps 10 ms). */
  compactionPauseMs?: number;
  /** Longest synchronous step of compaction or hashing, which holds the event loop (default 2 ms). */
  compactionStepBudgetMs?: number;
  leases?: LeaseAttachments;
}

export interface RangeOptions {
  /** The revision to read at; 0 or less: the current one. */
  revision?: number;
  /** At most this many kvs (0 or less: all); count is always the total. */
  limit?: number;
  /** Only count, return no kvs. */
  countOnly?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Keys in range at the revision, regardless of limit. */
  count: number;
  /** The store revision the read was served at (etcd's rr.Rev: the current revision, not the one asked). */
  revision: number;
}

export interface ChangesOptions {
  /** The last main revision to read (inclusive). */
  toRev: number;
  /** Stop after about this many records / bytes, at the next revision boundary. */
  recordsMax: number;
  bytesMax: number;
  /** Only records whose latin1 key this accepts are decoded and returned. */
  wanted: (key: string) => boolean;
}

export interface HashKvResult {
  hash: number;
  /** The current revision when the hash was asked for. */
  revision: number;
  compactRevision: number;
}

const maxQueuedJobs = 1024;

/** The end of a range as the index wants it: undefined (one key), '' (from key) or a latin1 string. */
export function toRangeEnd(end: Buffer | undefined): RangeEnd {
  return end === undefined ? undefined : end.toString('latin1');
}

export class KvStore {
  readonly #backend: Backend;
  readonly #tree = new TreeIndex();
  readonly #leases: LeaseAttachments | undefined;
  readonly #jobCtx: JobContext;
  #currentRev = 1;
  #compactRev = -1;
  #writing = false;
  #closed = false;
  #jobs: Promise<void> = Promise.resolve();
  #queued = 0;
  readonly #pins = new ReadPins();

  private constructor(backend: Backend, options: KvStoreOptions) {
    this.#backend = backend;
    this.#leases = options.leases;
    const batchLimit = options.compactionBatchLimit ?? 1000;
    assert(batchLimit > 0, 'compactionBatchLimit must be positive');
    this.#jobCtx = {
      backend,
      tree: this.#tree,
      batchLimit,
      pauseMs: options.compactionPauseMs ?? 10,
      stepBudgetMs: options.compactionStepBudgetMs ?? 2,
      stopped: () => this.#closed,
      readersBelow: (rev) => this.#pins.readersBelow(rev),
    };
  }

  /** Opens the store over a backend: rebuilds the index, restores revisions, resumes a compaction. */
  static open(backend: Backend, options: KvStoreOptions = {}): KvStore {
    const store = new KvStore(backend, options);
    store.#restore();
    return store;
  }

  get revision(): number {
    return this.#currentRev;
  }

  /** The revision compacted at (reads below it fail); -1 before the first compaction, as in etcd. */
  get compactRevision(): number {
    return this.#compactRev;
  }

  /** Keys that exist at the current revision. */
  get liveKeys(): number {
    return this.#tree.liveKeys;
  }

  /** Keys with any revision in the index (live or awaiting compaction). */
  get indexedKeys(): number {
    return this.#tree.keyCount;
  }

  #restore(): void {
    const finished = this.#backend.get('meta', finishedCompactKey);
    if (finished !== undefined) this.#compactRev = mainOfKey(finished);
    const scheduledBytes = this.#backend.get('meta', scheduledCompactKey);
    let scheduled = scheduledBytes === undefined ? 0 : mainOfKey(scheduledBytes);
    const keyToLease = new Map<string, bigint>();
    const rec = { main: 0, sub: 0, tombstone: false, created: 0, version: 0 };
    this.#backend.forEach('key', {}, (k, v) => {
      const meta = decodeKeyValueMeta(v);
      rec.main = mainOfKey(k);
      rec.sub = subOfKey(k);
      rec.tombstone = isTombstoneKey(k);
      rec.created = meta.createRevision;
      rec.version = meta.version;
      this.#tree.restore(meta.key, rec);
      if (!rec.tombstone && meta.lease !== 0n) keyToLease.set(meta.key, meta.lease);
      else if (keyToLease.size > 0) keyToLease.delete(meta.key);
      this.#currentRev = rec.main;
    });
    // An interrupted compaction may have removed the newest records, never the revision it was asked at.
    this.#currentRev = Math.max(this.#currentRev, this.#compactRev, scheduled, 1);
    if (scheduled <= this.#compactRev) scheduled = 0;
    for (const [key, lease] of keyToLease) this.#leases?.attach(lease, key);
    if (scheduled !== 0) this.compact(scheduled);
  }

  /** Reads [key, end) (end undefined: the key; empty: every key >= key) at a revision. */
  range(key: Buffer, end: Buffer | undefined, opts: RangeOptions = {}): RangeResult {
    return this.rangeAt(key, end, { ...opts, currentRev: this.#currentRev });
  }

  /** @internal The read of a txn whose own writes are at currentRev. */
  rangeAt(key: Buffer, end: Buffer | undefined, opts: RangeOptions & { currentRev: number }): RangeResult {
    assert(!this.#closed, 'store is closed');
    const curRev = opts.currentRev;
    let rev = opts.revision ?? 0;
    if (rev > curRev) throw new EtcdError('FutureRev');
    if (rev <= 0) rev = curRev;
    if (rev < this.#compactRev) throw new EtcdError('Compacted');
    const limit = opts.countOnly ? 1 : (opts.limit ?? 0);
    const { revs, count } = this.#tree.revisions(key.toString('latin1'), toRangeEnd(end), { atRev: rev, limit });
    if (opts.countOnly) return { kvs: [], count, revision: curRev };
    const kvs: KeyValue[] = [];
    for (let i = 0; i < revs.length; i += 2) kvs.push(this.#readRevision(revs[i]!, revs[i + 1]!));
    return { kvs, count, revision: curRev };
  }

  #readRevision(main: number, sub: number): KeyValue {
    const v = this.#backend.get('key', revisionKey(main, sub));
    assert(v !== undefined, () => `revision ${main}.${sub} is in the index but not in the backend`);
    return decodeKeyValue(v);
  }

  /**
   * Visits the index entries of [key, end) visible at a revision (opts.revision as in range()), in key
   * order, without reading any value: the first pass of a streamed range. The hit object is reused.
   * Throws FutureRev / Compacted as range() does. Returns the revision a range would report and the one
   * read at.
   */
  visitRange(
    key: Buffer,
    end: Buffer | undefined,
    opts: { revision?: number },
    fn: (key: string, hit: IndexHit) => boolean | void,
  ): { revision: number; atRev: number } {
    assert(!this.#closed, 'store is closed');
    const curRev = this.#currentRev;
    let rev = opts.revision ?? 0;
    if (rev > curRev) throw new EtcdError('FutureRev');
    if (rev <= 0) rev = curRev;
    if (rev < this.#compactRev) throw new EtcdError('Compacted');
    this.#tree.visit(key.toString('latin1'), toRangeEnd(end), rev, fn);
    return { revision: curRev, atRev: rev };
  }

  /**
   * Keeps the records visible at atRev on disk until the returned release is called (idempotent):
   * compaction above atRev waits before deleting anything. For reads that outlive one synchronous turn.
   */
  pinRevision(atRev: number): () => void {
    assert(!this.#closed, 'store is closed');
    assert(atRev >= this.#compactRev, () => `pin at ${atRev} below the compacted revision ${this.#compactRev}`);
    return this.#pins.pin(atRev);
  }

  /**
   * The stored record (an encoded mvccpb.KeyValue) of a revision, as a view valid only until the next read
   * of the store: copy what you keep. Throws Stopped once the store is closed (a read that outlived it).
   */
  peekRecord(main: number, sub: number): Buffer {
    if (this.#closed) throw new EtcdError('Stopped');
    const v = this.#backend.peek('key', revisionKey(main, sub));
    assert(v !== undefined, () => `revision ${main}.${sub} is in the index but not in the backend`);
    return v;
  }

  /** @internal The KeyValue of key visible at rev, if any. */
  kvAt(key: string, rev: number): KeyValue | undefined {
    const hit = newHit();
    return this.#tree.get(key, rev, hit) ? this.#readRevision(hit.main, hit.sub) : undefined;
  }

  /**
   * The change events of revisions fromRev..toRev in revision order, read back from the backend (for
   * watchers catching up), at most limit of them (a revision's changes may be split by the limit).
   * Throws Compacted when fromRev is below the compacted revision, as etcd's watchable store does.
   */
  events(fromRev: number, toRev: number, opts: { limit?: number } = {}): Event[] {
    assert(!this.#closed, 'store is closed');
    if (fromRev < this.#compactRev) throw new EtcdError('Compacted');
    const out: Event[] = [];
    if (toRev < fromRev) return out;
    const start = revisionKey(Math.max(fromRev, 0), 0);
    const end = revisionKey(Math.min(toRev, this.#currentRev) + 1, 0);
    this.#backend.forEach('key', { start, end, limit: opts.limit ?? Infinity }, (k, v) => {
      const kv = decodeKeyValue(v);
      if (!isTombstoneKey(k)) out.push({ type: Event_EventType.PUT, kv, prevKv: undefined });
      else out.push({ type: Event_EventType.DELETE, kv: { ...kv, modRevision: BigInt(mainOfKey(k)) }, prevKv: undefined });
    });
    return out;
  }

  /** Starts the one write txn; it must end() before anything else writes. */
  write(opts: { prevKv?: boolean } = {}): WriteTxn {
    assert(!this.#closed, 'store is closed');
    assert(!this.#writing, 'a write txn is already open');
    this.#writing = true;
    return new WriteTxn(this, { beginRev: this.#currentRev, prevKv: opts.prevKv ?? false });
  }

  /** @internal */
  get internals(): { backend: Backend; tree: TreeIndex; leases: LeaseAttachments | undefined } {
    return { backend: this.#backend, tree: this.#tree, leases: this.#leases };
  }

  /** @internal Called by WriteTxn.end(). */
  endWrite(changed: boolean): void {
    assert(this.#writing, 'no write txn open');
    this.#writing = false;
    if (changed) this.#currentRev++;
  }

  /**
   * Compacts at rev: reads below rev fail from now on, and the history it hides is removed in the
   * background. Throws Compacted (rev already compacted) or FutureRev. done resolves when the records are
   * physically gone (etcd's physical compaction).
   */
  compact(rev: number): { done: Promise<void> } {
    assert(!this.#closed, 'store is closed');
    if (rev <= this.#compactRev) throw new EtcdError('Compacted');
    if (rev > this.#currentRev) throw new EtcdError('FutureRev');
    checkRevisionNumber(rev, 'compact revision');
    this.#compactRev = rev;
    this.#backend.put('meta', scheduledCompactKey, revisionKey(rev, 0));
    return { done: this.#schedule(async () => void (await runCompaction(this.#jobCtx, rev))) };
  }

  /** Resolves when every compaction (and hash) asked for so far has finished. */
  compactionBarrier(): Promise<void> {
    return this.#jobs;
  }

  /** etcd's HashByRev: the hash of the history up to rev (0: current), comparable across members. */
  hashKv(rev: number): Promise<HashKvResult> {
    assert(!this.#closed, 'store is closed');
    const compactRev = this.#compactRev;
    const revision = this.#currentRev;
    if (rev > 0 && rev <= compactRev) return Promise.reject(new EtcdError('Compacted'));
    if (rev > revision) return Promise.reject(new EtcdError('FutureRev'));
    const at = rev > 0 ? rev : revision;
    return this.#schedule(async () => ({ hash: await hashKv(this.#jobCtx, { rev: at, compactRev }), revision, compactRevision: compactRev }));
  }

  #schedule<T>(job: () => Promise<T>): Promise<T> {
    assert(this.#queued < maxQueuedJobs, 'too many queued compaction/hash jobs');
    this.#queued++;
    const run = this.#jobs.then(job);
    const settled = run.then(
      () => void this.#queued--,
      () => void this.#queued--,
    );
    this.#jobs = settled;
    return run;
  }

  /** Stops background jobs at their next batch boundary and waits for them; the backend stays open. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#pins.close();
    await this.#jobs;
  }

  /**
   * The change events of main revisions fromRev..toRev in revision order, for watchers catching up: a
   * key-ordered scan of the backend is a scan in revision order. Reads about recordsMax records or
   * bytesMax bytes, stopping only at a revision boundary; records whose key `wanted` rejects are not
   * decoded. lastRev is the last revision read in full. History above the compacted revision is
   * complete; at it, only what compaction kept (no tombstones), as in etcd.
   */
  changes(fromRev: number, opts: ChangesOptions): { events: Event[]; lastRev: number } {
    assert(!this.#closed, 'store is closed');
    assert(fromRev >= 1 && fromRev >= this.#compactRev, () => `history from ${fromRev} (compacted at ${this.#compactRev})`);
    const events: Event[] = [];
    if (fromRev > opts.toRev) return { events, lastRev: opts.toRev };
    let records = 0;
    let bytes = 0;
    let lastRev = opts.toRev;
    let prevMain = -1;
    this.#backend.forEach('key', { start: revisionKey(fromRev, 0), end: revisionKey(opts.toRev + 1, 0) }, (k, v) => {
      const main = mainOfKey(k);
      if (main !== prevMain && (records >= opts.recordsMax || bytes >= opts.bytesMax)) {
        lastRev = main - 1;
        return false;
      }
      prevMain = main;
      records++;
      bytes += v.length;
      if (!opts.wanted(decodeKeyOf(v))) return true;
      const kv = decodeKeyValue(v);
      if (isTombstoneKey(k)) {
        kv.modRevision = BigInt(main);
        events.push({ type: Event_EventType.DELETE, kv, prevKv: undefined });
      } else {
        events.push({ type: Event_EventType.PUT, kv, prevKv: undefined });
      }
      return true;
    });
    return { events, lastRev };
  }
}

/** A write txn: all its changes share main revision beginRev + 1, with sub revisions in order. */
export class WriteTxn {
  readonly #store: KvStore;
  readonly #beginRev: number;
  readonly #prevKv: boolean;
  readonly #events: Event[] = [];
  readonly #hit = newHit();
  #ended = false;

  /** @internal Use KvStore.write(). */
  constructor(store: KvStore, opts: { beginRev: number; prevKv: boolean }) {
    this.#store = store;
    this.#beginRev = opts.beginRev;
    this.#prevKv = opts.prevKv;
  }

  /** The revision a reader of this txn is at: beginRev, or beginRev + 1 once something changed. */
  get revision(): number {
    return this.#beginRev + (this.#events.length > 0 ? 1 : 0);
  }

  get changed(): boolean {
    return this.#events.length > 0;
  }

  /** Reads as of this txn, seeing its own earlier writes (etcd's write txn range). */
  range(key: Buffer, end: Buffer | undefined, opts: RangeOptions = {}): RangeResult {
    assert(!this.#ended, 'txn ended');
    return this.#store.rangeAt(key, end, { ...opts, currentRev: this.revision });
  }

  put(key: Buffer, value: Buffer, lease: bigint): void {
    assert(!this.#ended, 'txn ended');
    const { backend, tree, leases } = this.#store.internals;
    const rev = this.#beginRev + 1;
    const sub = this.#events.length;
    const ks = key.toString('latin1');
    const existed = tree.get(ks, rev, this.#hit);
    const kv: KeyValue = {
      key,
      value,
      createRevision: BigInt(existed ? this.#hit.created : rev),
      modRevision: BigInt(rev),
      version: BigInt(existed ? this.#hit.version + 1 : 1),
      lease,
    };
    const prevKv = this.#prevKv ? this.#store.kvAt(ks, this.#beginRev) : undefined;
    backend.put('key', revisionKey(rev, sub), encodeKeyValue(kv));
    tree.put(ks, rev, sub);
    if (leases !== undefined) {
      const old = existed ? leases.leaseOf(ks) : 0n;
      if (old !== 0n) leases.detach(old, ks);
      if (lease !== 0n) leases.attach(lease, ks);
    }
    this.#events.push({ type: Event_EventType.PUT, kv, prevKv });
  }

  /** Deletes the keys of [key, end) live in this txn's view; returns how many. */
  deleteRange(key: Buffer, end: Buffer | undefined): number {
    assert(!this.#ended, 'txn ended');
    const keys = this.#store.internals.tree.keys(key.toString('latin1'), toRangeEnd(end), this.revision);
    for (const k of keys) this.#delete(k);
    return keys.length;
  }

  #delete(ks: string): void {
    const { backend, tree, leases } = this.#store.internals;
    const rev = this.#beginRev + 1;
    const sub = this.#events.length;
    const key = Buffer.from(ks, 'latin1');
    const empty = Buffer.alloc(0);
    const stored: KeyValue = { key, createRevision: 0n, modRevision: 0n, version: 0n, value: empty, lease: 0n };
    const prevKv = this.#prevKv ? this.#store.kvAt(ks, this.#beginRev) : undefined;
    backend.put('key', revisionKey(rev, sub, true), encodeKeyValue(stored));
    assert(tree.tombstone(ks, rev, sub), () => `delete of a key that is not live: ${ks}`);
    const old = leases?.leaseOf(ks) ?? 0n;
    if (old !== 0n) leases!.detach(old, ks);
    this.#events.push({ type: Event_EventType.DELETE, kv: { ...stored, modRevision: BigInt(rev) }, prevKv });
  }

  /** Ends the txn; the revision is the new current one if anything changed. */
  end(): { revision: number; events: Event[] } {
    assert(!this.#ended, 'txn ended twice');
    this.#ended = true;
    const revision = this.revision;
    this.#store.endWrite(this.changed);
    return { revision, events: this.#events };
  }
}
