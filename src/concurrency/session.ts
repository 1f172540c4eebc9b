/**
 * What lock and election recipes share: the server calls they build on (declared here, by the consumer),
 * the session lease, the ownership key, and the wait for every earlier contender to go.
 *
 * The recipes are etcd's client-side concurrency recipes run inside the server, as etcd 3.4 runs them
 * over an in-process client: every step is an ordinary KV request (writes proposed through raft, reads
 * through ReadIndex), so any member serves them, and waits are watches on this member's store.
 */
import { assert } from '../base/assert.js';
import { requestContext } from '../base/request-context.js';
import {
  Compare_CompareResult, Compare_CompareTarget, RangeRequest, RangeRequest_SortOrder, RangeRequest_SortTarget,
  type Compare, type DeleteRangeRequest, type DeleteRangeResponse, type LeaseGrantRequest, type LeaseGrantResponse,
  type RequestOp, type ResponseHeader, type TxnRequest, type TxnResponse, type RangeResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import type { WatchableStore } from '../watch/watchable-store.js';
import { KeyWatch, prefixEnd } from './key-watch.js';
import { concurrencyLimits } from './limits.js';

/** The server's KV and lease calls, with their usual validation, proposal and read paths. */
export interface ConcurrencyKv {
  txn(request: TxnRequest): Promise<TxnResponse>;
  range(request: RangeRequest): Promise<RangeResponse>;
  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  leaseGrant(request: LeaseGrantRequest): Promise<LeaseGrantResponse>;
}

export interface ConcurrencyDeps {
  readonly kv: ConcurrencyKv;
  /** This member's watchable store: waits watch it as client watch streams do. */
  readonly watches: WatchableStore;
  /** A response header at a revision (for changes observed through a watch). */
  readonly header: (revision: number) => ResponseHeader;
}

/**
 * The lease a request's keys are bound to. As etcd's session: no lease (0) grants a new one with the
 * session TTL, left to expire; a given id is used as it is (a missing one fails at the put).
 */
export async function sessionLease(kv: ConcurrencyKv, lease: bigint): Promise<bigint> {
  if (lease !== 0n) return lease;
  const granted = await kv.leaseGrant({ TTL: BigInt(concurrencyLimits.sessionTtlSeconds), ID: 0n });
  return granted.ID;
}

/** A contender's key: the prefix and its lease id in lowercase hex (Go's %x, so -1 is "-1"). */
export function ownKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

/** Runs cleanup the client no longer waits for, past its deadline (etcd uses the server's context). */
export function detached<T>(fn: () => Promise<T>): Promise<T> {
  return requestContext.run({ deadlineMs: Infinity }, fn);
}

export function headerOf(res: { header?: ResponseHeader | undefined }): ResponseHeader {
  assert(res.header !== undefined, 'a server response without a header');
  return res.header;
}

// ---- request building blocks ----

export function createRevisionIs(key: Buffer, rev: bigint): Compare {
  return {
    result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.CREATE, key, rangeEnd: Buffer.alloc(0),
    targetUnion: { $case: 'createRevision', value: rev },
  };
}

export function putOp(key: Buffer, value: Buffer, lease: bigint): RequestOp {
  return { request: { $case: 'requestPut', value: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false } } };
}

export function getOp(key: Buffer): RequestOp {
  return { request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key }) } };
}

export function deleteOp(key: Buffer): RequestOp {
  return { request: { $case: 'requestDeleteRange', value: { key, rangeEnd: Buffer.alloc(0), prevKv: false } } };
}

/** The oldest key under the prefix (clientv3's WithFirstCreate): the owner, or the leader. */
export function firstCreated(prefix: Buffer): RangeRequest {
  return RangeRequest.fromPartial({
    key: prefix, rangeEnd: Buffer.from(prefixEnd(prefix.toString('latin1')), 'latin1'), limit: 1n,
    sortTarget: RangeRequest_SortTarget.CREATE, sortOrder: RangeRequest_SortOrder.ASCEND,
  });
}

/** The kvs of the i-th response of a txn, which must be a range. */
export function rangeKvs(res: TxnResponse, i: number): KeyValue[] {
  const op = res.responses[i]?.response;
  assert(op?.$case === 'responseRange', () => `txn response ${i} is not a range`);
  return op.value.kvs;
}

// ---- waiting for earlier contenders ----

/**
 * Waits until no key under the prefix was created at or below maxCreateRev: each time, the newest such
 * key (the immediate predecessor) is watched until it is deleted, then the question is asked again (a
 * predecessor may have been deleted and an older one still be there). Resolves with the last read's header.
 */
export async function waitDeletes(deps: ConcurrencyDeps, prefix: Buffer, o: { maxCreateRev: bigint; signal: AbortSignal }): Promise<ResponseHeader> {
  const newestBelow = RangeRequest.fromPartial({
    ...firstCreated(prefix), sortOrder: RangeRequest_SortOrder.DESCEND, maxCreateRevision: o.maxCreateRev,
  });
  for (;;) {
    o.signal.throwIfAborted();
    const res = await deps.kv.range(newestBelow);
    const predecessor = res.kvs[0];
    if (predecessor === undefined) return headerOf(res);
    await waitDelete(deps.watches, predecessor.key, { fromRev: Number(headerOf(res).revision), signal: o.signal });
  }
}

/** Waits for a delete of key at or after fromRev, watching this member's store. */
async function waitDelete(watches: WatchableStore, key: Buffer, o: { fromRev: number; signal: AbortSignal }): Promise<void> {
  const watch = new KeyWatch(watches, { key, startRev: o.fromRev });
  try {
    for (;;) {
      const changes = await watch.next(o.signal);
      if (changes.events.some((e) => e.type === Event_EventType.DELETE)) return;
    }
  } finally {
    watch.close();
  }
}
