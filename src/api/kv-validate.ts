/**
 * The checks etcd's KV service makes before a request is proposed (etcd's v3rpc key.go), in etcd's order,
 * throwing the EtcdError a client sees. Checks that need the store (lease exists, key exists for
 * ignore_value, revisions) happen at apply time instead (server/apply/kv-apply.ts).
 */
import { EtcdError } from '../base/errors.js';
import {
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RequestOp,
  type TxnRequest,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';

/** etcd's --max-txn-ops default. */
export const defaultMaxTxnOps = 128;

const sortTargets = new Set<number>([
  RangeRequest_SortTarget.KEY,
  RangeRequest_SortTarget.VERSION,
  RangeRequest_SortTarget.CREATE,
  RangeRequest_SortTarget.MOD,
  RangeRequest_SortTarget.VALUE,
]);

/**
 * Empty key; an unknown sort target. etcd 3.4 (our oracle) sorts nothing for an unknown sort order, so we
 * do the same; it crashes on an unknown target, where we answer as later etcd does: "invalid sort option".
 */
export function validateRange(req: RangeRequest): void {
  if (req.key.length === 0) throw new EtcdError('EmptyKey');
  if (!sortTargets.has(req.sortTarget)) throw new EtcdError('InvalidSortOption');
}

export function validatePut(req: PutRequest): void {
  if (req.key.length === 0) throw new EtcdError('EmptyKey');
  if (req.ignoreValue && req.value.length !== 0) throw new EtcdError('ValueProvided');
  if (req.ignoreLease && req.lease !== 0n) throw new EtcdError('LeaseProvided');
}

export function validateDeleteRange(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw new EtcdError('EmptyKey');
}

/**
 * Too many operations (compares, success ops or failure ops above maxTxnOps; a nested txn gets what its
 * parent leaves), empty keys, the checks of each op, then duplicate keys in success and in failure.
 */
export function validateTxn(req: TxnRequest, opts: { maxTxnOps: number } = { maxTxnOps: defaultMaxTxnOps }): void {
  checkTxnOps(req, opts.maxTxnOps);
  checkIntervals(req.success);
  checkIntervals(req.failure);
}

function checkTxnOps(req: TxnRequest, maxTxnOps: number): void {
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > maxTxnOps) throw new EtcdError('TooManyOps');
  for (const c of req.compare) if (c.key.length === 0) throw new EtcdError('EmptyKey');
  for (const op of req.success) checkRequestOp(op, maxTxnOps - opc);
  for (const op of req.failure) checkRequestOp(op, maxTxnOps - opc);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  const r = op.request;
  if (r === undefined) throw new EtcdError('KeyNotFound'); // etcd's answer to an empty RequestOp
  if (r.$case === 'requestRange') validateRange(r.value);
  else if (r.$case === 'requestPut') validatePut(r.value);
  else if (r.$case === 'requestDeleteRange') validateDeleteRange(r.value);
  else checkTxnOps(r.value, maxTxnOps);
}

/** A deleted range [begin, end) of latin1 keys; a single key k is [k, k + "\0"). */
interface Interval {
  begin: string;
  end: string;
}

/**
 * etcd's overlap test. A from-key delete ("\0" range end) becomes [key, "\0"), which overlaps nothing,
 * and a reversed range overlaps nothing: etcd lets a put go with either in the same txn, and so do we.
 */
function deletes(dels: Interval[], key: string): boolean {
  const point = key + '\x00';
  return dels.some((d) => d.begin < point && key < d.end);
}

/**
 * etcd's checkIntervals: a key may be put once per txn and never inside a range the same txn deletes,
 * counting nested txns; the success and failure branches of one nested txn may put the same key, as only
 * one of them runs.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; dels: Interval[] } {
  const dels: Interval[] = [];
  for (const op of ops) {
    if (op.request?.$case !== 'requestDeleteRange') continue;
    const d = op.request.value;
    const begin = d.key.toString('latin1');
    dels.push({ begin, end: d.rangeEnd.length !== 0 ? d.rangeEnd.toString('latin1') : begin + '\x00' });
  }
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request?.$case !== 'requestTxn') continue;
    const then = checkIntervals(op.request.value.success);
    const otherwise = checkIntervals(op.request.value.failure);
    for (const k of then.puts) {
      if (puts.has(k) || deletes(dels, k)) throw new EtcdError('DuplicateKey');
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || deletes(dels, k)) throw new EtcdError('DuplicateKey');
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }
  for (const op of ops) {
    if (op.request?.$case !== 'requestPut') continue;
    const k = op.request.value.key.toString('latin1');
    if (puts.has(k) || deletes(dels, k)) throw new EtcdError('DuplicateKey');
    puts.add(k);
  }
  return { puts, dels };
}
