/**
 * The server's KvStore over the LMDB backend, the MVCC store and the KV applier. Also keeps the member
 * list in the backend, so membership and data are committed in the same batches as the consistent index.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { Backend } from '../storage/backend/backend.js';
import { KvStore as MvccStore, type LeaseAttachments } from '../mvcc/kv-store.js';
import { KvApplier, type LeaseChecker } from './apply/kv-apply.js';
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

  constructor(dir: string, options: KvStoreOpenOptions) {
    this.#dir = dir;
    this.#options = options;
    this.#log = options.log;
    this.#onEvents = options.onEvents;
    this.#backend = Backend.open(dir, { batchIntervalMs: options.batchIntervalMs, batchLimit: options.batchLimit });
    // etcd: always recover the lessor before the key space, whose restore attaches keys to their leases.
    options.leases?.recover(leaseBucket(this.#backend));
    this.#mvcc = this.#openMvcc();
    this.#applier = new KvApplier({ store: this.#mvcc, leases: options.leases ?? noLeases });
    ({ index: this.#consistentIndex, term: this.#consistentTerm } = this.#backend.consistentIndex());
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
      this.#backend = Backend.open(this.#dir, { batchIntervalMs: this.#options.batchIntervalMs, batchLimit: this.#options.batchLimit });
      this.#options.leases?.recover(leaseBucket(this.#backend));
      this.#mvcc = this.#openMvcc();
      this.#applier = new KvApplier({ store: this.#mvcc, leases: this.#options.leases ?? noLeases });
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
  async hashKV(revision: number): Promise<{ hash: number; hashRevision: number; compactRevision: number }> {
    const h = await this.#mvcc.hashKv(revision);
    return { hash: h.hash, hashRevision: h.revision, compactRevision: h.compactRevision };
  }

  watchHistory(): HistoryReader {
    return mvccHistory(() => this.#mvcc);
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

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
