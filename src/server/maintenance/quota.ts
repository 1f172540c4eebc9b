/**
 * The backend quota (etcd 3.4's backendQuota): a request that adds data is allowed while the backend's
 * size plus the request's estimated cost stays below the quota. The size compared is the database file's
 * (etcd's Backend().Size(), not the size in use), so only a defragmentation after a compaction frees room.
 */
import type { LeaseGrantRequest, PutRequest, RequestOp, TxnRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';

/** etcd's defaults and bounds. */
export const quotaLimits = {
  defaultBytes: 2 * 1024 * 1024 * 1024,
  /** Above this etcd warns (it still accepts the value). */
  maxRecommendedBytes: 8 * 1024 * 1024 * 1024,
  /** etcd's estimated per-key and per-lease overheads. */
  kvOverheadBytes: 256,
  leaseOverheadBytes: 64,
};

export type QuotaRequest =
  | { $case: 'put'; value: PutRequest }
  | { $case: 'txn'; value: TxnRequest }
  | { $case: 'leaseGrant'; value: LeaseGrantRequest };

function costPut(r: PutRequest): number {
  return quotaLimits.kvOverheadBytes + r.key.length + r.value.length;
}

/** The larger of the two branches' puts; nested txns are not counted (as in etcd 3.4). */
function costTxn(r: TxnRequest): number {
  const branch = (ops: readonly RequestOp[]): number =>
    ops.reduce((sum, op) => sum + (op.request?.$case === 'requestPut' ? costPut(op.request.value) : 0), 0);
  return Math.max(branch(r.success), branch(r.failure));
}

/** The estimated bytes a request adds to the backend; 0 for requests that add none. */
export function quotaCost(req: QuotaRequest): number {
  switch (req.$case) {
    case 'put':
      return costPut(req.value);
    case 'txn':
      return costTxn(req.value);
    case 'leaseGrant':
      return quotaLimits.leaseOverheadBytes;
  }
}

/**
 * The configured quota in bytes: etcd's --quota-backend-bytes, where 0 means the default and a negative
 * value disables the quota (Infinity here).
 */
export function effectiveQuotaBytes(configured: number): number {
  if (configured < 0) return Infinity;
  return configured === 0 ? quotaLimits.defaultBytes : configured;
}

export class BackendQuota {
  readonly #quotaBytes: number;
  readonly #sizeBytes: () => number;

  constructor(opts: { quotaBytes: number; sizeBytes: () => number }) {
    this.#quotaBytes = opts.quotaBytes;
    this.#sizeBytes = opts.sizeBytes;
  }

  get quotaBytes(): number {
    return this.#quotaBytes;
  }

  /** Whether the request fits (a request of no cost always does). */
  available(req: QuotaRequest): boolean {
    const cost = quotaCost(req);
    return cost === 0 || this.#sizeBytes() + cost < this.#quotaBytes;
  }

  remainingBytes(): number {
    return this.#quotaBytes - this.#sizeBytes();
  }
}
