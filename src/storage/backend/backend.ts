/**
 * The on-disk backend: named buckets of binary keys and values in one LMDB environment (bbolt's role in
 * etcd), written in batches.
 *
 * Batching and visibility. Writes go into an in-memory batch (etcd's batch tx + read buffer in one): a map
 * per bucket, keyed by the key's latin1 string. commit() hands the whole batch to lmdb-js as asynchronous
 * puts issued in one synchronous loop; lmdb-js's event-turn batching puts every write of one event turn
 * into one LMDB transaction, committed (and fsynced, overlapped with later work) on its writer thread, so
 * the main thread never waits for the disk. Until that transaction has committed, the batch stays in an
 * in-flight list and reads consult it: get() and forEach() see pending, then in-flight (newest first), then
 * LMDB. We chose this over holding a synchronous LMDB write transaction open on the main thread (which
 * would give read-your-writes for free): measured here, a synchronous commit blocks the event loop for
 * 0.4-2 ms with fsync, and dropping the fsync (noSync) risks a corrupt file on power loss, while the
 * asynchronous path costs ~1-2 us of main-thread time per write and keeps LMDB's crash safety.
 *
 * Atomicity of the consistent index. A batch is committed whole or not at all, and the backend only starts
 * a commit at a safe point: from its interval timer (a separate macrotask, so never inside a synchronous
 * apply), from commit(), or from setConsistentIndex() (the count limit), which the applier calls after the
 * writes of an entry. Every committed state therefore has the data of exactly the entries up to the stored
 * consistent index. A crash loses at most the uncommitted batches; the WAL replays those entries because
 * they are above the stored index. Callers must issue the writes of one raft entry in one synchronous
 * section (no await in between), which the apply loop does.
 *
 * Durability: commit() resolves when the transaction is committed (visible, survives a process crash);
 * sync() when it is flushed to disk (survives a machine crash). Before the WAL is truncated past an index,
 * the caller awaits sync() so the backend holds everything the truncated log held.
 */
import fs from 'node:fs';
import path from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { AssertionError, assert } from '../../base/assert.js';

export const bucketNames = [
  'key',
  'meta',
  'lease',
  'auth',
  'authUsers',
  'authRoles',
  'members',
  'membersRemoved',
  'alarm',
  'cluster',
] as const;
export type Bucket = (typeof bucketNames)[number];

/** What the backend reports: each batch commit's duration (etcd_disk_backend_commit_duration_seconds). */
export interface BackendMetrics {
  commitSeconds(seconds: number): void;
}

const noBackendMetrics: BackendMetrics = { commitSeconds: () => {} };

export interface BackendOptions {
  /** Default: nothing reported. */
  metrics?: BackendMetrics;
  /** Commit once this many writes are pending, at the next safe point (etcd's batch limit). */
  batchLimit?: number;
  /** Commit pending writes at least this often (etcd's batch interval). */
  batchIntervalMs?: number;
}

export const defaultBatchLimit = 10_000;
export const defaultBatchIntervalMs = 100;

/** Limits of an online defragmentation. */
export const defragLimits = {
  /** Catch-up rounds run while commits go on, before the final step holds them. */
  catchUpRoundsMax: 8,
  /** Touched keys small enough to copy in the final step (commits held meanwhile). */
  finalStepKeysMax: 20_000,
  /** Touched keys recorded at most; past it the defragmentation gives up. */
  touchedKeysMax: 5_000_000,
  /** Keys copied between waits for the copy's writes. */
  copyChunkKeys: 5_000,
};

const consistentIndexKey = Buffer.from('consistent_index');
const termKey = Buffer.from('term');
const dataDirName = 'db';

interface Pending {
  key: Buffer;
  /** null: deleted in this batch. */
  value: Buffer | null;
}

type BucketMaps = Map<Bucket, Map<string, Pending>>;

interface Batch {
  maps: BucketMaps;
  writes: number;
  /** Set once per applied entry, so kept as numbers and written to meta when the batch commits. */
  ci: ConsistentIndex | undefined;
}

type Dbs = Record<Bucket, Database<Buffer, Buffer>>;

export interface ConsistentIndex {
  index: number;
  term: number;
}

function openEnv(dir: string): { env: RootDatabase; dbs: Dbs } {
  const env = open({ path: dir, maxDbs: bucketNames.length + 2, noSubdir: false });
  const dbs = {} as Dbs;
  for (const name of bucketNames) {
    dbs[name] = env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
  }
  return { env, dbs };
}

function uint64(n: number): Buffer {
  assert(Number.isSafeInteger(n) && n >= 0, () => `not a safe uint64: ${n}`);
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), 0);
  b.writeUInt32BE(n % 0x1_0000_0000, 4);
  return b;
}

function readUint64(b: Buffer | undefined): number {
  if (b === undefined) return 0;
  assert(b.length === 8, 'uint64 value must be 8 bytes');
  const hi = b.readUInt32BE(0);
  assert(hi < 0x20_0000, 'uint64 value above 2^53');
  return hi * 0x1_0000_0000 + b.readUInt32BE(4);
}

export class Backend {
  readonly dir: string;
  #env: RootDatabase;
  #dbs: Dbs;
  #pending: Batch = { maps: new Map(), writes: 0, ci: undefined };
  #inflight: Batch[] = [];
  #lastCommit: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout;
  #batchLimit: number;
  readonly #metrics: BackendMetrics;
  #paused = 0;
  #resumed: Promise<void> = Promise.resolve();
  #resume: () => void = () => {};
  #failure: Error | undefined;
  #closed = false;
  #defragCount = 0;
  #defragRun: Promise<void> | null = null;
  /** Keys committed since a defragmentation's copy began; null when none runs. */
  #touched: Map<Bucket, Set<string>> | null = null;
  #defragOverrun = false;
  #defragAbort = false;
  #exclusiveTail: Promise<void> = Promise.resolve();
  /** size() until the next commit or swap; null: to be read again. */
  #sizeBytes: number | null = null;

  private constructor(dir: string, options: BackendOptions) {
    this.dir = dir;
    ({ env: this.#env, dbs: this.#dbs } = openEnv(path.join(dir, dataDirName)));
    this.#batchLimit = options.batchLimit ?? defaultBatchLimit;
    this.#metrics = options.metrics ?? noBackendMetrics;
    assert(this.#batchLimit > 0, 'batchLimit must be positive');
    const interval = options.batchIntervalMs ?? defaultBatchIntervalMs;
    this.#timer = setInterval(() => {
      const idle = this.#pending.writes === 0 || this.#paused > 0 || this.#failure !== undefined;
      if (!idle) void this.commit().catch(() => {});
    }, interval);
    this.#timer.unref();
  }

  /** Opens (creating if needed) the backend in dir; finishes or discards an interrupted defragmentation. */
  static open(dir: string, options: BackendOptions = {}): Backend {
    fs.mkdirSync(dir, { recursive: true });
    recoverInterruptedDefrag(dir);
    return new Backend(dir, options);
  }

  #check(): void {
    if (this.#failure !== undefined) throw this.#failure;
    assert(!this.#closed, 'backend is closed');
  }

  /** The newest write to key not yet committed to LMDB (the open batch, then batches in flight). */
  #unflushed(bucket: Bucket, key: Buffer): { value: Buffer | null } | undefined {
    if (this.#pending.writes === 0 && this.#inflight.length === 0) return undefined;
    const s = key.toString('latin1');
    const p = this.#pending.maps.get(bucket)?.get(s);
    if (p !== undefined) return p;
    for (let i = this.#inflight.length - 1; i >= 0; i--) {
      const f = this.#inflight[i]!.maps.get(bucket)?.get(s);
      if (f !== undefined) return f;
    }
    return undefined;
  }

  get(bucket: Bucket, key: Buffer): Buffer | undefined {
    this.#check();
    const unflushed = this.#unflushed(bucket, key);
    if (unflushed !== undefined) return unflushed.value ?? undefined;
    return this.#dbs[bucket].getBinary(key);
  }

  /**
   * get() without a copy of an LMDB value: the buffer is valid only until the next read of this backend,
   * so callers read what they need (a length, a few bytes, one copy) at once. For scans of large values.
   */
  peek(bucket: Bucket, key: Buffer): Buffer | undefined {
    this.#check();
    const unflushed = this.#unflushed(bucket, key);
    if (unflushed !== undefined) return unflushed.value ?? undefined;
    // lmdb-js answers with its shared read buffer, only `length` set to the value's: a real view of that
    // length keeps copy() and set() (which go by byteLength) within the value.
    const v = this.#dbs[bucket].getBinaryFast(key);
    return v === undefined ? undefined : v.subarray(0, v.length);
  }

  /** Writes into the current batch; the buffers are kept by reference, so callers must not reuse them. */
  put(bucket: Bucket, key: Buffer, value: Buffer): void {
    this.#write(bucket, key, value);
  }

  delete(bucket: Bucket, key: Buffer): void {
    this.#write(bucket, key, null);
  }

  #write(bucket: Bucket, key: Buffer, value: Buffer | null): void {
    this.#check();
    assert(key.length > 0, 'backend keys must not be empty');
    let m = this.#pending.maps.get(bucket);
    if (m === undefined) {
      m = new Map();
      this.#pending.maps.set(bucket, m);
    }
    m.set(key.toString('latin1'), { key, value });
    this.#pending.writes++;
  }

  /**
   * Writes not yet durable in LMDB's committed state: pending plus in flight. The backend itself never
   * refuses a write, so the server watches this to stop accepting proposals while the disk falls behind.
   */
  get uncommittedWrites(): number {
    let n = this.#pending.writes;
    for (const b of this.#inflight) n += b.writes;
    return n;
  }

  /** Writes waiting for the next commit (the consistent index counts as one). */
  get pendingWrites(): number {
    return this.#pending.writes;
  }

  /**
   * Visits [start, end) of a bucket in key order (end undefined: to the last key), merging the uncommitted
   * batches over LMDB. fn returns false to stop. Returns the number of entries visited.
   */
  forEach(bucket: Bucket, opts: { start?: Buffer; end?: Buffer; limit?: number }, fn: (key: Buffer, value: Buffer) => boolean | void): number {
    this.#check();
    const limit = opts.limit ?? Infinity;
    const overlay = this.#overlayIn(bucket, opts.start, opts.end);
    const range = this.#dbs[bucket].getRange({ ...(opts.start ? { start: opts.start } : {}), ...(opts.end ? { end: opts.end } : {}) });
    let visited = 0;
    const emit = (k: Buffer, v: Buffer | null): boolean => {
      if (v === null) return true;
      visited++;
      return fn(k, v) !== false && visited < limit;
    };
    if (limit <= 0) return 0;
    let oi = 0;
    for (const { key, value } of range) {
      if (overlay.length === oi) {
        if (!emit(key, value)) return visited;
        continue;
      }
      const ks = key.toString('latin1');
      for (; oi < overlay.length && overlay[oi]![0] < ks; oi++) {
        if (!emit(overlay[oi]![1].key, overlay[oi]![1].value)) return visited;
      }
      if (oi < overlay.length && overlay[oi]![0] === ks) {
        const shadow = overlay[oi++]![1];
        if (!emit(shadow.key, shadow.value)) return visited;
      } else if (!emit(key, value)) return visited;
    }
    for (; oi < overlay.length; oi++) {
      if (!emit(overlay[oi]![1].key, overlay[oi]![1].value)) return visited;
    }
    return visited;
  }

  /** Uncommitted writes of a bucket within [start, end), newest winning, sorted by key. */
  #overlayIn(bucket: Bucket, start: Buffer | undefined, end: Buffer | undefined): Array<[string, Pending]> {
    if (this.#pending.writes === 0 && this.#inflight.length === 0) return [];
    const lo = start?.toString('latin1');
    const hi = end?.toString('latin1');
    const merged = new Map<string, Pending>();
    for (const batch of [...this.#inflight, this.#pending]) {
      const m = batch.maps.get(bucket);
      if (m === undefined) continue;
      for (const [s, p] of m) if ((lo === undefined || s >= lo) && (hi === undefined || s < hi)) merged.set(s, p);
    }
    return [...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /**
   * Records the raft index and term whose effects the batch now holds, then commits if the batch is full.
   * Call it after the writes of each applied entry: it is the safe point where a commit cannot split one.
   */
  setConsistentIndex(ci: ConsistentIndex): void {
    this.#check();
    assert(Number.isSafeInteger(ci.index) && ci.index >= 0 && Number.isSafeInteger(ci.term) && ci.term >= 0, 'bad consistent index');
    if (this.#pending.ci === undefined) this.#pending.writes++;
    this.#pending.ci = { index: ci.index, term: ci.term };
    if (this.#pending.writes >= this.#batchLimit && this.#paused === 0) void this.commit().catch(() => {});
  }

  /** The consistent index the backend holds (including the uncommitted batch). */
  consistentIndex(): ConsistentIndex {
    this.#check();
    for (const batch of [this.#pending, ...[...this.#inflight].reverse()]) if (batch.ci !== undefined) return { ...batch.ci };
    return { index: readUint64(this.#dbs.meta.getBinary(consistentIndexKey)), term: readUint64(this.#dbs.meta.getBinary(termKey)) };
  }

  /** Commits the pending batch as one LMDB transaction; resolves when it (and all before it) committed. */
  commit(): Promise<void> {
    this.#check();
    if (this.#paused > 0) return this.#resumed.then(() => this.commit());
    if (this.#pending.writes === 0) return this.#lastCommit;
    const batch = this.#pending;
    const startMs = performance.now();
    this.#pending = { maps: new Map(), writes: 0, ci: undefined };
    this.#inflight.push(batch);
    this.#recordTouched(batch);
    let last: Promise<boolean> | undefined;
    if (batch.ci !== undefined) {
      this.#dbs.meta.put(consistentIndexKey, uint64(batch.ci.index));
      last = this.#dbs.meta.put(termKey, uint64(batch.ci.term));
    }
    for (const [bucket, m] of batch.maps) {
      const db = this.#dbs[bucket];
      for (const p of m.values()) last = p.value === null ? db.remove(p.key) : db.put(p.key, p.value);
    }
    const done = (last ?? Promise.resolve(true)).then(
      () => {
        assert(this.#inflight[0] === batch, 'backend batches must commit in order');
        this.#inflight.shift();
        // From the batch handed over to its LMDB transaction committed, as etcd times bolt's tx.Commit.
        this.#metrics.commitSeconds((performance.now() - startMs) / 1000);
        this.#sizeBytes = null;
      },
      (err: unknown) => {
        this.#failure = new AssertionError(`backend commit failed: ${String(err)}`);
        throw this.#failure;
      },
    );
    this.#lastCommit = done;
    return done;
  }

  /** Commits what is pending and resolves once everything committed is flushed to disk. */
  async sync(): Promise<void> {
    await this.commit();
    await this.#env.flushed;
  }

  /**
   * Bytes the database file occupies (etcd's backend Size). Reading LMDB's statistics costs ~0.1 ms, and
   * the quota asks on every write, so the figure is cached until the next commit lands.
   */
  size(): number {
    this.#check();
    if (this.#sizeBytes === null) {
      const info = this.#env.getStats() as { lastPageNumber: number; pageSize: number };
      this.#sizeBytes = (info.lastPageNumber + 1) * info.pageSize;
    }
    return this.#sizeBytes;
  }

  /** Bytes of pages in use by some tree (the rest is free space defragment() returns; etcd's SizeInUse). */
  sizeInUse(): number {
    this.#check();
    type Stat = { pageSize: number; treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    const pages = (s: Stat): number => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    const env = this.#env.getStats() as Stat & { root: Stat; free: Stat };
    let used = 2 + pages(env.root) + pages(env.free);
    for (const name of bucketNames) used += pages(this.#dbs[name].getStats() as Stat);
    return used * env.pageSize;
  }

  #pause(): void {
    if (this.#paused++ === 0) this.#resumed = new Promise((resolve) => (this.#resume = resolve));
  }

  #unpause(): void {
    assert(this.#paused > 0, 'unbalanced backend pause');
    if (--this.#paused === 0) this.#resume();
  }

  /**
   * Writes a consistent copy of the committed state to file (for raft snapshots and `snapshot save`):
   * commits, then holds further commits (writes keep landing in the batch and stay readable) until the copy
   * is done, so the copy is exactly that committed state and its consistent index is the one returned.
   */
  snapshotTo(file: string, opts: { compact?: boolean } = {}): Promise<ConsistentIndex & { sizeBytes: number }> {
    const committed = this.commit();
    return this.#exclusive(() => this.#snapshotTo(file, opts, committed));
  }

  async #snapshotTo(file: string, opts: { compact?: boolean }, committed: Promise<void>): Promise<ConsistentIndex & { sizeBytes: number }> {
    await committed;
    this.#pause();
    try {
      await this.#lastCommit;
      const ci = {
        index: readUint64(this.#dbs.meta.getBinary(consistentIndexKey)),
        term: readUint64(this.#dbs.meta.getBinary(termKey)),
      };
      const tmp = fs.mkdtempSync(`${file}.tmp-`);
      try {
        await this.#env.backup(tmp, opts.compact ?? false);
        fs.renameSync(path.join(tmp, 'data.mdb'), file);
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
      return { ...ci, sizeBytes: fs.statSync(file).size };
    } finally {
      this.#unpause();
    }
  }

  /**
   * Rewrites the database without free pages while the backend keeps serving: reads and commits go on
   * against the live copy during the long part, and only the short final step holds commits.
   *
   * 1. From now on every committed key is recorded (bucket, key) as "touched".
   * 2. A compacting copy of an LMDB read snapshot is written off the main thread (mdb_env_copy2).
   * 3. Catch-up rounds copy the current committed value (or absence) of each touched key into the copy,
   *    with a fresh touched set per round, until few are left. A value read in a round may be stale only
   *    if a later commit changed it, and that commit recorded the key for the next round.
   * 4. Final step: commits held (writes land in the batch, stay readable), the last touched keys copied,
   *    the copy fsynced and swapped in by two directory renames that open() can finish or undo.
   * A crash at any point leaves the live copy or the complete new one; nothing committed is lost.
   * Concurrent calls share one run.
   */
  defragment(): Promise<void> {
    this.#defragRun ??= this.#defragment().finally(() => {
      this.#touched = null;
      this.#defragOverrun = false;
      this.#defragRun = null;
    });
    return this.#defragRun;
  }

  #checkDefrag(): void {
    this.#check();
    if (this.#defragAbort) throw new Error('defragment: the backend is closing');
  }

  async #defragment(): Promise<void> {
    this.#checkDefrag();
    const n = ++this.#defragCount;
    const next = path.join(this.dir, `${dataDirName}.defrag-${process.pid}-${n}`);
    fs.rmSync(next, { recursive: true, force: true });
    fs.mkdirSync(next);
    let copy: { env: RootDatabase; dbs: Dbs } | null = null;
    try {
      this.#touched = new Map();
      for (const batch of this.#inflight) this.#recordTouched(batch);
      await this.#env.backup(next, true);
      this.#checkDefrag();
      // The bulk of the copy reaches the disk now, off the main thread, not inside the final step.
      await fsyncFileAsync(path.join(next, 'data.mdb'));
      this.#checkDefrag();
      copy = openEnv(next);
      for (let round = 0; round < defragLimits.catchUpRoundsMax && this.#touchedCount() > defragLimits.finalStepKeysMax; round++) {
        await this.#copyTouched(copy.dbs);
        this.#checkDefrag();
      }
      await this.#exclusive(() => this.#finishDefrag(copy!, n));
      copy = null;
    } finally {
      if (copy !== null) await copy.env.close();
      if (fs.existsSync(next)) fs.rmSync(next, { recursive: true, force: true });
    }
  }

  /** The final, commit-holding step of defragment(): last catch-up, fsync, swap. */
  async #finishDefrag(copy: { env: RootDatabase; dbs: Dbs }, n: number): Promise<void> {
    const old = path.join(this.dir, `${dataDirName}.old-${process.pid}-${n}`);
    const oldEnv = this.#env;
    this.#pause();
    try {
      await this.#lastCommit;
      this.#checkDefrag();
      await this.#copyTouched(copy.dbs);
      // LMDB syncs its own commits: this covers the catch-up writes (the bulk was synced before).
      await copy.env.flushed;
      const live = path.join(this.dir, dataDirName);
      const next = path.join(this.dir, `${dataDirName}.defrag-${process.pid}-${n}`);
      this.#env = copy.env;
      this.#dbs = copy.dbs;
      this.#sizeBytes = null;
      this.#touched = null;
      fs.renameSync(live, old);
      fs.renameSync(next, live);
      fsyncDir(this.dir);
    } finally {
      this.#unpause();
    }
    // Commits go on in the new copy. Unlinking a large file with dirty pages waits for them, so the old
    // copy is removed off the main thread.
    await oldEnv.flushed;
    await oldEnv.close();
    await fs.promises.rm(old, { recursive: true, force: true });
  }

  #touchedCount(): number {
    let count = 0;
    for (const keys of this.#touched?.values() ?? []) count += keys.size;
    return count;
  }

  #recordTouched(batch: Batch): void {
    const touched = this.#touched;
    if (touched === null) return;
    const add = (bucket: Bucket, key: string): void => {
      let keys = touched.get(bucket);
      if (keys === undefined) touched.set(bucket, (keys = new Set()));
      keys.add(key);
    };
    if (batch.ci !== undefined) {
      add('meta', consistentIndexKey.toString('latin1'));
      add('meta', termKey.toString('latin1'));
    }
    for (const [bucket, m] of batch.maps) for (const s of m.keys()) add(bucket, s);
    if (this.#touchedCount() > defragLimits.touchedKeysMax) {
      // Writes outran the copy: give up this defragmentation rather than grow without bound.
      this.#touched = new Map();
      this.#defragOverrun = true;
    }
  }

  /** One catch-up round: the committed value of every key touched so far, copied into the new env. */
  async #copyTouched(dbs: Dbs): Promise<void> {
    if (this.#defragOverrun) {
      this.#defragOverrun = false;
      throw new Error('defragment: too many writes during the copy; try again');
    }
    const round = this.#touched ?? new Map<Bucket, Set<string>>();
    if (this.#touched !== null) this.#touched = new Map();
    let last: Promise<unknown> = Promise.resolve();
    let sinceYield = 0;
    for (const [bucket, keys] of round) {
      const from = this.#dbs[bucket];
      const to = dbs[bucket];
      for (const s of keys) {
        const key = Buffer.from(s, 'latin1');
        const value = from.getBinary(key);
        last = value === undefined ? to.remove(key) : to.put(key, Buffer.from(value));
        if (++sinceYield === defragLimits.copyChunkKeys) {
          sinceYield = 0;
          await last;
        }
      }
    }
    await last;
  }

  /** Runs fn with no other swap or copy of the environment in progress (snapshot copies, defragment). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#exclusiveTail.then(fn);
    this.#exclusiveTail = run.then(() => {}, () => {});
    return run;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#defragRun !== null) {
      this.#defragAbort = true;
      await this.#defragRun.catch(() => {});
    }
    clearInterval(this.#timer);
    if (this.#failure === undefined) await this.commit();
    this.#closed = true;
    await this.#env.close();
  }
}

async function fsyncFileAsync(file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * After a crash during defragment(): if the live copy is there, leftovers are discarded; if it was renamed
 * away but the new copy was complete (it is only renamed after being written and fsynced), the new copy
 * becomes live.
 */
function recoverInterruptedDefrag(dir: string): void {
  const live = path.join(dir, dataDirName);
  const entries = fs.readdirSync(dir);
  const defrags = entries.filter((e) => e.startsWith(`${dataDirName}.defrag-`));
  const olds = entries.filter((e) => e.startsWith(`${dataDirName}.old-`));
  if (!fs.existsSync(live)) {
    const complete = defrags.find((d) => olds.some((o) => o.slice(`${dataDirName}.old-`.length) === d.slice(`${dataDirName}.defrag-`.length)));
    if (complete !== undefined) fs.renameSync(path.join(dir, complete), live);
  }
  for (const e of [...defrags, ...olds]) {
    if (fs.existsSync(path.join(dir, e))) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}
