/**
 * The server's KvStore over the LMDB backend, the MVCC store and the KV applier. Also keeps the member
 * list in the backend, so membership and data are committed in the same batches as the consistent index.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { Backend, bucketNames, type Bucket, type BackendMetrics, type BackendOptions } from '../storage/backend/backend.js';
import { openBackendSnapshot, removeStaleSnapshots, type BackendSnapshot } from '../storage/backend/backend-snapshot.js';
import { crc32c } from '../mvcc/crc32c.js';
import type { AlarmRecords } from './maintenance/alarm-store.js';
import { KvStore as MvccStore, type LeaseAttachments } from '../mvcc/kv-store.js';
import { KvApplier, type LeaseChecker, type MvccMetrics } from './apply/kv-apply.js';
import { planRange } from './apply/range-plan.js';
import { rangeResponseOf } from './apply/range-stream.js';
import type { StreamedMessage } from '../api/h2/streamed-message.js';
import type { LeaseRecords } from '../lease/lessor.js';
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  TxnRequest,
  TxnResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { Event } from '../gen/etcd/mvcc/mvccpb/kv.js';
import type { KvStore } from './kv-store.js';
import type { AuthBackend } from '../auth/auth-store.js';
import { mvccHistory } from '../watch/mvcc-history.js';
import type { HistoryReader } from '../watch/watchable-store.js';

export interface KvStoreOpenOptions {
  readonly log: Logger;
  readonly batchIntervalMs: number;
  readonly batchLimit: number;
  readonly compactionBatchLimit: number;
  /** Lease lookups; without a lessor no lease id is known. */
  readonly leases?: Leases;
  /** Receives each write's events (for watchers). */
  readonly onEvents?: (events: readonly Event[], revision: number) => void;
  /** Commit timings and per-txn operation counts; default: not reported. */
  readonly metrics?: { readonly backend: BackendMetrics; readonly mvcc: MvccMetrics };
}

function idKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(id);
  return b;
}

/** The lessor, as the store needs it: recovered from the lease bucket before the MVCC store re-attaches keys. */
export interface Leases extends LeaseChecker, LeaseAttachments {
  recover(records: LeaseRecords): void;
}

/** Client snapshots (Maintenance.Snapshot) being streamed at once; each holds a copy of the backend. */
const snapshotsOpenMax = 4;

const noLeases: LeaseChecker = { exists: () => false };

/** The backend's lease bucket; writes join the current apply batch, so the consistent index covers them. */
function leaseBucket(backend: Backend): LeaseRecords {
  return {
    forEach: (fn) => void backend.forEach('lease', {}, (k, v) => fn(Buffer.from(k), Buffer.from(v))),
    put: (key, value) => backend.put('lease', key, value),
    delete: (key) => backend.delete('lease', key),
  };
}

class ServerKvStore implements KvStore {
  readonly #dir: string;
  readonly #options: KvStoreOpenOptions;
  #backend: Backend;
  #mvcc: MvccStore;
  #applier: KvApplier;
  #restoring = false;
  readonly #log: Logger;
  readonly #onEvents: KvStoreOpenOptions['onEvents'];
  #consistentIndex: number;
  #consistentTerm = 0;
  #snapshotsOpen = 0;

  constructor(dir: string, options: KvStoreOpenOptions) {
    this.#dir = dir;
    this.#options = options;
    this.#log = options.log;
    this.#onEvents = options.onEvents;
    this.#backend = Backend.open(dir, this.#backendOptions());
    removeStaleSnapshots(dir);
    // etcd: always recover the lessor before the key space, whose restore attaches keys to their leases.
    options.leases?.recover(leaseBucket(this.#backend));
    this.#mvcc = this.#openMvcc();
    this.#applier = this.#newApplier();
    ({ index: this.#consistentIndex, term: this.#consistentTerm } = this.#backend.consistentIndex());
  }

  #backendOptions(): BackendOptions {
    const o = this.#options;
    const base = { batchIntervalMs: o.batchIntervalMs, batchLimit: o.batchLimit };
    return o.metrics ? { ...base, metrics: o.metrics.backend } : base;
  }

  #newApplier(): KvApplier {
    const o = this.#options;
    const base = { store: this.#mvcc, leases: o.leases ?? noLeases };
    return new KvApplier(o.metrics ? { ...base, metrics: o.metrics.mvcc } : base);
  }

  #openMvcc(): MvccStore {
    const o = this.#options;
    return MvccStore.open(this.#backend, o.leases
      ? { compactionBatchLimit: o.compactionBatchLimit, leases: o.leases }
      : { compactionBatchLimit: o.compactionBatchLimit });
  }

  async snapshotToFile(file: string): Promise<void> {
    await this.#backend.snapshotTo(file);
  }

  async openSnapshot(): Promise<BackendSnapshot> {
    this.#readable();
    // Each client snapshot is a full copy on disk until its stream ends: bound how many exist at once.
    if (this.#snapshotsOpen >= snapshotsOpenMax) throw new EtcdError('TooManyRequests');
    this.#snapshotsOpen++;
    let snapshot: BackendSnapshot;
    try {
      snapshot = await openBackendSnapshot(this.#backend, { stagingDir: this.#dir });
    } catch (err) {
      this.#snapshotsOpen--;
      throw err;
    }
    let released = false;
    return {
      sizeBytes: snapshot.sizeBytes,
      consistentIndex: snapshot.consistentIndex,
      read: (buf) => snapshot.read(buf),
      close: async () => {
        if (!released) this.#snapshotsOpen--;
        released = true;
        await snapshot.close();
      },
    };
  }

  async restoreFromFile(file: string): Promise<void> {
    this.#restoring = true;
    try {
      await this.#mvcc.close();
      await this.#backend.close();
      const live = join(this.#dir, 'db');
      rmSync(live, { recursive: true, force: true });
      mkdirSync(live, { recursive: true });
      renameSync(file, join(live, 'data.mdb'));
      fsyncDir(live);
      fsyncDir(this.#dir);
      this.#backend = Backend.open(this.#dir, this.#backendOptions());
      this.#options.leases?.recover(leaseBucket(this.#backend));
      this.#mvcc = this.#openMvcc();
      this.#applier = this.#newApplier();
      ({ index: this.#consistentIndex, term: this.#consistentTerm } = this.#backend.consistentIndex());
    } finally {
      this.#restoring = false;
    }
  }

  #readable(): void {
    // Only while a leader's snapshot replaces the backend, which takes moments and happens rarely.
    if (this.#restoring) throw new EtcdError('NotCapable');
  }

  rev(): number {
    return this.#mvcc.revision;
  }
  compactRev(): number {
    return this.#mvcc.compactRevision;
  }
  range(req: RangeRequest): RangeResponse {
    this.#readable();
    return this.#applier.range(req);
  }
  async rangeForWire(
    req: RangeRequest,
    opts: { header: (revision: number) => ResponseHeader; streamBytesMin: number },
  ): Promise<RangeResponse | StreamedMessage> {
    this.#readable();
    const mvcc = this.#mvcc;
    // A single key (the hot point read) is never large: no plan, no pin, the materialising path.
    const plan = req.rangeEnd.length === 0 ? undefined : planRange(mvcc, req);
    if (plan === undefined) {
      const res = this.#applier.range(req);
      return { ...res, header: opts.header(Number(res.header?.revision ?? mvcc.revision)) };
    }
    return rangeResponseOf(mvcc, plan, { header: opts.header(plan.revision), streamBytesMin: opts.streamBytesMin });
  }
  readTxn(req: TxnRequest): TxnResponse {
    this.#readable();
    return this.#applier.txn(req).response;
  }

  applyPut(req: PutRequest): PutResponse {
    const r = this.#applier.put(req);
    this.#emit(r.events);
    return r.response;
  }
  applyDeleteRange(req: DeleteRangeRequest): DeleteRangeResponse {
    const r = this.#applier.deleteRange(req);
    this.#emit(r.events);
    return r.response;
  }
  applyTxn(req: TxnRequest): TxnResponse {
    const r = this.#applier.txn(req);
    this.#emit(r.events);
    return r.response;
  }
  applyDeleteKeys(keys: readonly string[]): number {
    const r = this.#applier.deleteKeys(keys);
    this.#emit(r.events);
    return r.response;
  }
  applyCompaction(req: CompactionRequest): { response: CompactionResponse; physical: Promise<void> } {
    const r = this.#applier.compact(req);
    return { response: r.response, physical: r.physicalDone };
  }

  #emit(events: readonly Event[]): void {
    if (events.length > 0) this.#onEvents?.(events, this.#mvcc.revision);
  }

  consistentIndex(): number {
    return this.#consistentIndex;
  }
  consistentTerm(): number {
    return this.#consistentTerm;
  }
  setConsistentIndex(index: number, term: number): void {
    this.#consistentIndex = index;
    this.#consistentTerm = term;
    this.#backend.setConsistentIndex({ index, term });
  }
  async forceCommit(): Promise<void> {
    await this.#backend.commit();
    await this.#backend.sync();
  }

  dbSizeBytes(): number {
    return this.#backend.size();
  }
  dbSizeInUseBytes(): number {
    return this.#backend.sizeInUse();
  }
  liveKeys(): number {
    return this.#mvcc.liveKeys;
  }
  async hashKV(revision: number): Promise<{ hash: number; hashRevision: number; compactRevision: number }> {
    const h = await this.#mvcc.hashKv(revision);
    return { hash: h.hash, hashRevision: h.revision, compactRevision: h.compactRevision };
  }

  async hash(): Promise<{ hash: number; revision: number }> {
    await this.#backend.commit();
    // One synchronous pass, so no commit lands in the middle (etcd hashes inside one read transaction).
    const revision = this.#mvcc.revision;
    return { hash: backendHash(this.#backend), revision };
  }

  async defragment(): Promise<void> {
    await this.#backend.defragment();
  }

  alarmRecords(): AlarmRecords {
    return {
      forEach: (fn) => void this.#backend.forEach('alarm', {}, (k) => fn(Buffer.from(k))),
      put: (key) => this.#backend.put('alarm', key, Buffer.alloc(0)),
      delete: (key) => this.#backend.delete('alarm', key),
    };
  }

  watchHistory(): HistoryReader {
    return mvccHistory(() => this.#mvcc);
  }

  authBackend(): AuthBackend {
    return {
      get: (bucket, key) => this.#backend.get(bucket, key),
      put: (bucket, key, value) => this.#backend.put(bucket, key, value),
      delete: (bucket, key) => this.#backend.delete(bucket, key),
      forEach: (bucket, fn) => void this.#backend.forEach(bucket, {}, (k, v) => fn(Buffer.from(k), Buffer.from(v))),
    };
  }

  saveMember(id: bigint, encoded: Uint8Array): void {
    this.#backend.put('members', idKey(id), Buffer.from(encoded));
  }
  deleteMember(id: bigint): void {
    this.#backend.delete('members', idKey(id));
    this.#backend.put('membersRemoved', idKey(id), Buffer.from([1]));
  }
  loadMembers(): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.#backend.forEach('members', {}, (_k, v) => {
      out.push(Buffer.from(v));
    });
    return out;
  }

  async close(): Promise<void> {
    await this.#mvcc.close();
    await this.#backend.close();
    this.#log.info('closed backend');
  }
}

/** Opens (or creates) the backend under `dir` and the store over it. */
export async function openKvStore(dir: string, options: KvStoreOpenOptions): Promise<KvStore> {
  return new ServerKvStore(dir, options);
}

/** Buckets in byte order of their names (bolt's order); the consistent index and its term are skipped. */
const hashedBuckets: readonly Bucket[] = [...bucketNames].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
const hashIgnored = new Set(['consistent_index', 'term']);

function backendHash(backend: Backend): number {
  let crc = 0;
  for (const bucket of hashedBuckets) {
    crc = crc32c(crc, Buffer.from(bucket));
    backend.forEach(bucket, {}, (k, v) => {
      if (bucket === 'meta' && hashIgnored.has(k.toString('latin1'))) return;
      crc = crc32c(crc32c(crc, k), v);
    });
  }
  return crc;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
