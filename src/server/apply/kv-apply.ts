/**
 * Executes etcd's KV requests against the MVCC store with etcd 3.4's semantics (etcdserver/apply.go),
 * producing the response messages. Response headers carry only the revision; the caller fills cluster id,
 * member id and raft term of the top-level header (etcd leaves the headers of responses nested in a txn as
 * they are here: revision only, and all zero for a nested txn).
 *
 * Writes return the change events of their write txn, for watchers.
 * Request checks that need no store (empty keys, duplicate keys, too many ops) are api/kv-validate.ts's;
 * those that do (lease exists, key exists for ignore_*, revisions of ranges in a txn) are made here.
 */
import { assert } from '../../base/assert.js';
import { EtcdError } from '../../base/errors.js';
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { type Event, type KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import { type KvStore, type RangeOptions, type RangeResult, WriteTxn } from '../../mvcc/kv-store.js';

/** Whether a lease exists, answered by the lessor. */
export interface LeaseChecker {
  exists(id: bigint): boolean;
}

/** The store operations of one etcd store txn (a request, or a phase of a Txn request). */
export interface MvccOpCounts {
  readonly ranges: number;
  readonly puts: number;
  readonly deletes: number;
}

/**
 * What the applier reports: each store txn's operations when it ends, as etcd's mvcc/metrics_txn.go counts
 * them for etcd_mvcc_{range,put,delete,txn}_total (a compare is a range; so is the read of a put with
 * prev_kv or ignore_*; a txn is a store txn of more than one operation).
 */
export interface MvccMetrics {
  /** Read the counts at once: the object is reused for the next store txn. */
  txnEnded(ops: MvccOpCounts): void;
}

const noMvccMetrics: MvccMetrics = { txnEnded: () => {} };

export interface KvApplyOptions {
  store: KvStore;
  leases: LeaseChecker;
  /** Default: nothing reported. */
  metrics?: MvccMetrics;
  /** Whether write events should carry prevKv (asked once per write; watchers with prev_kv want it). */
  prevKvInEvents?: () => boolean;
}

export interface WriteResult<R> {
  response: R;
  /** The changes of the write txn, in order (empty when nothing changed). */
  events: Event[];
}

/** What a txn reads from: the store before the txn, or the txn itself (seeing its own writes). */
interface KvView {
  range(key: Buffer, end: Buffer | undefined, opts?: RangeOptions): RangeResult;
}

/**
 * The one view every request goes through: the store, or the open write txn, counting each operation.
 * Apply is synchronous, so one instance per applier is re-aimed at each store txn.
 */
class CountingView implements KvView, MvccOpCounts {
  ranges = 0;
  puts = 0;
  deletes = 0;
  readonly #store: KvStore;
  #txn: WriteTxn | null = null;

  constructor(store: KvStore) {
    this.#store = store;
  }

  get writing(): boolean {
    return this.#txn !== null;
  }

  begin(txn: WriteTxn | null): this {
    this.ranges = 0;
    this.puts = 0;
    this.deletes = 0;
    this.#txn = txn;
    return this;
  }

  range(key: Buffer, end: Buffer | undefined, opts?: RangeOptions): RangeResult {
    this.ranges++;
    return (this.#txn ?? this.#store).range(key, end, opts);
  }

  get revision(): number {
    return this.#write().revision;
  }

  put(key: Buffer, value: Buffer, lease: bigint): void {
    this.puts++;
    this.#write().put(key, value, lease);
  }

  deleteRange(key: Buffer, end: Buffer | undefined): number {
    this.deletes++;
    return this.#write().deleteRange(key, end);
  }

  #write(): WriteTxn {
    assert(this.#txn !== null, 'a write op outside a write txn');
    return this.#txn;
  }
}

const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
const emptyBuffer = Buffer.alloc(0);

export function header(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision: BigInt(revision), raftTerm: 0n };
}

/** A request's int64 revision as a store revision; beyond 2^53 it is only ever compared, so ±Infinity. */
export function revisionOf(v: bigint): number {
  if (v > maxSafe) return Infinity;
  if (v < -maxSafe) return -Infinity;
  return Number(v);
}

/** etcd's mkGteRange: no range end is one key; "\0" is every key from key on (an empty end for the store). */
export function rangeEndOf(rangeEnd: Buffer): Buffer | undefined {
  if (rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return emptyBuffer;
  return rangeEnd;
}

function compareBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sorter(target: RangeRequest_SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case RangeRequest_SortTarget.KEY:
      return (a, b) => Buffer.compare(a.key, b.key);
    case RangeRequest_SortTarget.VERSION:
      return (a, b) => compareBig(a.version, b.version);
    case RangeRequest_SortTarget.CREATE:
      return (a, b) => compareBig(a.createRevision, b.createRevision);
    case RangeRequest_SortTarget.MOD:
      return (a, b) => compareBig(a.modRevision, b.modRevision);
    case RangeRequest_SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      throw new EtcdError('InvalidSortOption');
  }
}

/** etcd sorts what the store returns in key order; ties keep key order (Array.prototype.sort is stable). */
function sortKvs(kvs: KeyValue[], req: RangeRequest): void {
  let order = req.sortOrder;
  if (req.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE) order = RangeRequest_SortOrder.ASCEND;
  if (order === RangeRequest_SortOrder.NONE) return;
  const cmp = sorter(req.sortTarget);
  if (order === RangeRequest_SortOrder.ASCEND) kvs.sort(cmp);
  else if (order === RangeRequest_SortOrder.DESCEND) kvs.sort((a, b) => cmp(b, a));
  // etcd 3.4 leaves the keys in key order for an order it does not know.
}

function filterKvs(kvs: KeyValue[], req: RangeRequest): KeyValue[] {
  return kvs.filter(
    (kv) =>
      (req.maxModRevision === 0n || kv.modRevision <= req.maxModRevision) &&
      (req.minModRevision === 0n || kv.modRevision >= req.minModRevision) &&
      (req.maxCreateRevision === 0n || kv.createRevision <= req.maxCreateRevision) &&
      (req.minCreateRevision === 0n || kv.createRevision >= req.minCreateRevision),
  );
}

/** A request's limit as a number (0: none); beyond 2^31 it is as good as none. */
export function rangeLimitOf(req: RangeRequest): number {
  return req.limit > 0n ? Number(req.limit > 1n << 31n ? 1n << 31n : req.limit) : 0;
}

/** etcd's Range: fetch one more than the limit (or all, when sorting or filtering), then cut. */
export function applyRange(view: KvView, req: RangeRequest): RangeResponse {
  const limit = rangeLimitOf(req);
  const fetchAll =
    req.sortOrder !== RangeRequest_SortOrder.NONE ||
    req.minModRevision !== 0n ||
    req.maxModRevision !== 0n ||
    req.minCreateRevision !== 0n ||
    req.maxCreateRevision !== 0n;
  const rr = view.range(req.key, rangeEndOf(req.rangeEnd), {
    revision: revisionOf(req.revision),
    limit: fetchAll || limit === 0 ? 0 : limit + 1,
    countOnly: req.countOnly,
  });
  let kvs = filterKvs(rr.kvs, req);
  sortKvs(kvs, req);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: emptyBuffer }));
  return { header: header(rr.revision), kvs, more, count: BigInt(rr.count) };
}

/** etcd's Put inside a write txn (the lease was checked before). */
function putIn(txn: CountingView, req: PutRequest): PutResponse {
  let value = req.value;
  let lease = req.lease;
  let prevKv: KeyValue | undefined;
  if (req.ignoreValue || req.ignoreLease || req.prevKv) {
    const prev = txn.range(req.key, undefined).kvs[0];
    if ((req.ignoreValue || req.ignoreLease) && prev === undefined) throw new EtcdError('KeyNotFound');
    if (req.ignoreValue) value = prev!.value;
    if (req.ignoreLease) lease = prev!.lease;
    if (req.prevKv) prevKv = prev;
  }
  txn.put(req.key, value, lease);
  return { header: header(txn.revision), prevKv };
}

function deleteIn(txn: CountingView, req: DeleteRangeRequest): DeleteRangeResponse {
  const end = rangeEndOf(req.rangeEnd);
  const prevKvs = req.prevKv ? txn.range(req.key, end).kvs : [];
  const deleted = txn.deleteRange(req.key, end);
  return { header: header(txn.revision), deleted: BigInt(deleted), prevKvs };
}

function valueOf(kv: KeyValue, c: Compare): number {
  const u = c.targetUnion;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      return Buffer.compare(kv.value, u?.$case === 'value' ? u.value : emptyBuffer);
    case Compare_CompareTarget.CREATE:
      return compareBig(kv.createRevision, u?.$case === 'createRevision' ? u.value : 0n);
    case Compare_CompareTarget.MOD:
      return compareBig(kv.modRevision, u?.$case === 'modRevision' ? u.value : 0n);
    case Compare_CompareTarget.VERSION:
      return compareBig(kv.version, u?.$case === 'version' ? u.value : 0n);
    case Compare_CompareTarget.LEASE:
      return compareBig(kv.lease, u?.$case === 'lease' ? u.value : 0n);
    default:
      return 0; // etcd 3.4: an unknown target compares equal
  }
}

/** etcd's compareKV; an unknown result holds (as in etcd 3.4). */
function compareKv(kv: KeyValue, c: Compare): boolean {
  const r = valueOf(kv, c);
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return r === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return r !== 0;
    case Compare_CompareResult.GREATER:
      return r > 0;
    case Compare_CompareResult.LESS:
      return r < 0;
    default:
      return true;
  }
}

const absentKv: KeyValue = { key: emptyBuffer, createRevision: 0n, modRevision: 0n, version: 0n, value: emptyBuffer, lease: 0n };

/** A compare holds for every key in its range; no key at all compares as a zero KeyValue, except on VALUE. */
function applyCompare(view: KvView, c: Compare): boolean {
  const { kvs } = view.range(c.key, rangeEndOf(c.rangeEnd));
  if (kvs.length === 0) return c.target !== Compare_CompareTarget.VALUE && compareKv(absentKv, c);
  return kvs.every((kv) => compareKv(kv, c));
}

/**
 * The branch taken by the txn and by each nested txn on it, depth first, all decided against the state
 * before the txn (etcd's compareToPath: nested compares do not see the outer txn's writes).
 */
function txnPath(view: KvView, req: TxnRequest): boolean[] {
  const ok = req.compare.every((c) => applyCompare(view, c));
  const path = [ok];
  for (const op of ok ? req.success : req.failure) {
    if (op.request?.$case === 'requestTxn') path.push(...txnPath(view, op.request.value));
  }
  return path;
}

/** Visits the ops on the path (nested txns' ops included); returns how many path entries it consumed. */
function walkPath(req: TxnRequest, path: boolean[], at: number, fn: (op: RequestOp) => void): number {
  let next = at + 1;
  for (const op of path[at] ? req.success : req.failure) {
    if (op.request?.$case === 'requestTxn') next = walkPath(op.request.value, path, next, fn);
    else fn(op);
  }
  return next;
}

/** Whether a delete of [d.key, d.end) (store range end semantics) removes key. */
function covers(d: { key: Buffer; end: Buffer | undefined }, key: Buffer): boolean {
  if (d.end === undefined) return d.key.equals(key);
  return Buffer.compare(d.key, key) <= 0 && (d.end.length === 0 || Buffer.compare(key, d.end) < 0);
}

function isReadOnly(req: TxnRequest): boolean {
  return [...req.success, ...req.failure].every((op) => op.request?.$case === 'requestRange');
}

export class KvApplier {
  readonly #store: KvStore;
  readonly #leases: LeaseChecker;
  readonly #prevKvInEvents: () => boolean;
  readonly #metrics: MvccMetrics;
  readonly #view: CountingView;

  constructor(opts: KvApplyOptions) {
    this.#store = opts.store;
    this.#leases = opts.leases;
    this.#prevKvInEvents = opts.prevKvInEvents ?? (() => false);
    this.#metrics = opts.metrics ?? noMvccMetrics;
    this.#view = new CountingView(opts.store);
  }

  /** A read outside any txn (serializable or after a ReadIndex: the caller's concern). */
  range(req: RangeRequest): RangeResponse {
    try {
      return applyRange(this.#view.begin(null), req);
    } finally {
      this.#metrics.txnEnded(this.#view);
    }
  }

  put(req: PutRequest): WriteResult<PutResponse> {
    if (req.lease !== 0n && !this.#leases.exists(req.lease)) throw new EtcdError('LeaseNotFound');
    return this.#inWrite((txn) => putIn(txn, req));
  }

  deleteRange(req: DeleteRangeRequest): WriteResult<DeleteRangeResponse> {
    return this.#inWrite((txn) => deleteIn(txn, req));
  }

  /** Deletes these keys (latin1 strings of the key bytes) in one write txn: a lease's revocation. */
  deleteKeys(keys: readonly string[]): WriteResult<number> {
    return this.#inWrite((txn) => {
      let deleted = 0;
      for (const k of keys) deleted += txn.deleteRange(Buffer.from(k, 'latin1'), undefined);
      return deleted;
    });
  }

  #inWrite<R>(fn: (txn: CountingView) => R): WriteResult<R> {
    const txn = this.#store.write({ prevKv: this.#prevKvInEvents() });
    try {
      const response = fn(this.#view.begin(txn));
      return { response, events: txn.end().events };
    } catch (err) {
      // Every expected error is raised by a check made before the first write.
      assert(!txn.changed, () => `a request failed after writing: ${String(err)}`);
      txn.end();
      throw err;
    } finally {
      this.#metrics.txnEnded(this.#view);
      this.#view.begin(null);
    }
  }

  /** A txn: one revision for all its writes (none if nothing changed); failed checks change nothing. */
  txn(req: TxnRequest): WriteResult<TxnResponse> {
    // As etcd: compares and checks in a read txn, which also serves a read-only txn's ranges.
    const readOnly = isReadOnly(req);
    const view = this.#view.begin(null);
    let path: boolean[];
    try {
      path = txnPath(view, req);
      this.#checkOps(req, path);
      if (readOnly) {
        const response = this.#applyTxn(view, req, path, 0).response;
        response.header = header(this.#store.revision);
        return { response, events: [] };
      }
    } finally {
      this.#metrics.txnEnded(view);
    }
    return this.#inWrite((txn) => {
      const response = this.#applyTxn(txn, req, path, 0).response;
      response.header = header(txn.revision);
      return response;
    });
  }

  /**
   * etcd's checkRequests: puts first (key exists for ignore_*, lease exists), then range revisions.
   * One deliberate difference: a put with ignore_value/ignore_lease of a key that an earlier from-key
   * delete of the same txn removes passes etcd's check (made against the state before the txn) and then
   * makes etcd 3.4 panic in apply, on every replay of the entry. We follow the txn's own deletes while
   * checking, so such a txn fails with KeyNotFound before writing anything.
   */
  #checkOps(req: TxnRequest, path: boolean[]): void {
    const store = this.#store;
    if (!isReadOnly(req)) {
      const deleted: Array<{ key: Buffer; end: Buffer | undefined }> = [];
      walkPath(req, path, 0, (op) => {
        if (op.request?.$case === 'requestDeleteRange') deleted.push({ key: op.request.value.key, end: rangeEndOf(op.request.value.rangeEnd) });
        if (op.request?.$case !== 'requestPut') return;
        const p = op.request.value;
        if (p.ignoreValue || p.ignoreLease) {
          const gone = deleted.some((d) => covers(d, p.key));
          if (gone || this.#view.range(p.key, undefined).kvs.length === 0) throw new EtcdError('KeyNotFound');
        }
        if (p.lease !== 0n && !this.#leases.exists(p.lease)) throw new EtcdError('LeaseNotFound');
      });
    }
    walkPath(req, path, 0, (op) => {
      if (op.request?.$case !== 'requestRange' || op.request.value.revision === 0n) return;
      const rev = revisionOf(op.request.value.revision);
      if (rev > store.revision) throw new EtcdError('FutureRev');
      if (rev < store.compactRevision) throw new EtcdError('Compacted');
    });
  }

  #applyTxn(view: CountingView, req: TxnRequest, path: boolean[], at: number): { response: TxnResponse; next: number } {
    const succeeded = path[at]!;
    const responses: ResponseOp[] = [];
    let next = at + 1;
    for (const op of succeeded ? req.success : req.failure) {
      const r = op.request;
      if (r === undefined) {
        responses.push({ response: undefined });
      } else if (r.$case === 'requestRange') {
        responses.push({ response: { $case: 'responseRange', value: applyRange(view, r.value) } });
      } else if (r.$case === 'requestTxn') {
        const nested = this.#applyTxn(view, r.value, path, next);
        next = nested.next;
        responses.push({ response: { $case: 'responseTxn', value: nested.response } });
      } else {
        assert(view.writing, 'a write op in a read-only txn');
        const txn = view;
        if (r.$case === 'requestPut') responses.push({ response: { $case: 'responsePut', value: putIn(txn, r.value) } });
        else responses.push({ response: { $case: 'responseDeleteRange', value: deleteIn(txn, r.value) } });
      }
    }
    return { response: { header: header(0), succeeded, responses }, next };
  }

  /**
   * Compacts at the revision. Throws Compacted / FutureRev (etcd answers Compacted only after earlier
   * compactions finished when physical is asked: await store.compactionBarrier() first to do the same).
   * physicalDone resolves when the compacted history is removed from the backend.
   */
  compact(req: CompactionRequest): { response: CompactionResponse; physicalDone: Promise<void> } {
    const { done } = this.#store.compact(revisionOf(req.revision));
    return { response: { header: header(this.#store.revision) }, physicalDone: done };
  }
}
