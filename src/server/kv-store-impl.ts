/**
 * The server's KvStore over the LMDB backend, the MVCC store and the KV applier. Also keeps the member
 * list in the backend, so membership and data are committed in the same batches as the consistent index.
 */
import type { Logger } from '../base/logger.js';
import { Backend } from '../storage/backend/backend.js';
import { KvStore as MvccStore, type LeaseAttachments } from '../mvcc/kv-store.js';
import { KvApplier, type LeaseChecker } from './apply/kv-apply.js';
import type {
  CompactionRequest,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
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
  /** Lease lookups; until leases exist no lease id is known. */
  readonly leases?: LeaseChecker & LeaseAttachments;
  /** Receives each write's events (for watchers). */
  readonly onEvents?: (events: readonly Event[], revision: number) => void;
}

function idKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(id);
  return b;
}

const noLeases: LeaseChecker = { exists: () => false };

class ServerKvStore implements KvStore {
  readonly #backend: Backend;
  readonly #mvcc: MvccStore;
  readonly #applier: KvApplier;
  readonly #log: Logger;
  readonly #onEvents: KvStoreOpenOptions['onEvents'];
  #consistentIndex: number;

  constructor(backend: Backend, options: KvStoreOpenOptions) {
    this.#backend = backend;
    this.#log = options.log;
    this.#onEvents = options.onEvents;
    const mvccOptions = options.leases
      ? { compactionBatchLimit: options.compactionBatchLimit, leases: options.leases }
      : { compactionBatchLimit: options.compactionBatchLimit };
    this.#mvcc = MvccStore.open(backend, mvccOptions);
    this.#applier = new KvApplier({ store: this.#mvcc, leases: options.leases ?? noLeases });
    this.#consistentIndex = backend.consistentIndex().index;
  }

  rev(): number {
    return this.#mvcc.revision;
  }
  compactRev(): number {
    return this.#mvcc.compactRevision;
  }
  range(req: RangeRequest): RangeResponse {
    return this.#applier.range(req);
  }
  readTxn(req: TxnRequest): TxnResponse {
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
  setConsistentIndex(index: number, term: number): void {
    this.#consistentIndex = index;
    this.#backend.setConsistentIndex({ index, term });
  }
  endApplyBatch(): void {
    // The backend commits by its own interval and limit; nothing to force per apply batch.
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
  const backend = Backend.open(dir, { batchIntervalMs: options.batchIntervalMs, batchLimit: options.batchLimit });
  return new ServerKvStore(backend, options);
}
