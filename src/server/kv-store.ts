/**
 * What the server needs from the MVCC store and the KV applier, declared by the server (the consumer).
 * Implemented over src/mvcc and src/server/apply by createKvStore().
 */
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
import type { HistoryReader } from '../watch/watchable-store.js';
import type { StreamedMessage } from '../api/h2/streamed-message.js';
import type { MemberPersistence } from './membership.js';
import type { AlarmRecords } from './maintenance/alarm-store.js';
import type { BackendSnapshot } from '../storage/backend/backend-snapshot.js';
import type { AuthBackend } from '../auth/auth-store.js';

export interface KvStore extends MemberPersistence {
  /** The current revision of the key space. */
  rev(): number;
  compactRev(): number;
  /** A read at the current applied state (or at req.revision). Throws Compacted / FutureRev. */
  range(req: RangeRequest): RangeResponse;
  /**
   * range() as the wire wants it: a response of at least streamBytesMin encoded bytes comes back as a
   * StreamedMessage written chunk by chunk (the read revision stays pinned until it is closed); smaller
   * ones as a RangeResponse with the header made by `header`. Optional: stores without it serve range().
   */
  rangeForWire?(req: RangeRequest, opts: { header: (revision: number) => ResponseHeader; streamBytesMin: number }): Promise<RangeResponse | StreamedMessage>;
  /** A read-only txn evaluated locally (no writes in any branch). */
  readTxn(req: TxnRequest): TxnResponse;

  applyPut(req: PutRequest): PutResponse;
  applyDeleteRange(req: DeleteRangeRequest): DeleteRangeResponse;
  applyTxn(req: TxnRequest): TxnResponse;
  /** Deletes these keys (latin1 strings of the key bytes) in one write txn; returns how many were live. */
  applyDeleteKeys(keys: readonly string[]): number;
  /** Schedules compaction; `physical` settles when the revisions are gone from disk. */
  applyCompaction(req: CompactionRequest): { response: CompactionResponse; physical: Promise<void> };

  /** The index of the last raft entry whose effects are in the backend; stored in the same batch. */
  consistentIndex(): number;
  setConsistentIndex(index: number, term: number): void;
  /** The term of the entry at the consistent index. */
  consistentTerm(): number;
  /** Commits everything applied so far and makes it durable. */
  forceCommit(): Promise<void>;

  dbSizeBytes(): number;
  dbSizeInUseBytes(): number;
  /** Keys that exist at the current revision (etcd_debugging_mvcc_keys_total). */
  liveKeys(): number;
  hashKV(revision: number): Promise<{ hash: number; hashRevision: number; compactRevision: number }>;
  /** The whole backend's hash (etcd's Hash RPC): CRC-32C over every bucket but the consistent index. */
  hash(): Promise<{ hash: number; revision: number }>;
  /** Returns free pages to the file system while serving goes on (see Backend.defragment). */
  defragment(): Promise<void>;
  /** The backend's alarm bucket (always the current backend's, also after a restore). */
  alarmRecords(): AlarmRecords;
  /** Writes a consistent copy of the backend (a snapshot for a follower). */
  snapshotToFile(file: string): Promise<void>;
  /** A point-in-time copy of the backend to stream to a client (Maintenance.Snapshot). */
  openSnapshot(): Promise<BackendSnapshot>;
  /** Replaces the backend with a copy received from the leader, and reloads everything from it. */
  restoreFromFile(file: string): Promise<void>;
  /** The backend's auth buckets, following the backend across snapshot restores. */
  authBackend(): AuthBackend;
  /** The store's history as watchers catching up read it. */
  watchHistory(): HistoryReader;
  close(): Promise<void>;
}
