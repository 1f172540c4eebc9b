/**
 * etcd's distributed lock (v3lock), run in the server. A contender owns the key <name>/<lease hex>, bound
 * to its lease; contenders are ordered by the create revision of their keys and the oldest holds the
 * lock. A waiter watches only its immediate predecessor, so one release wakes one waiter.
 */
import { assert } from '../base/assert.js';
import type { LockRequest, LockResponse, UnlockRequest, UnlockResponse } from '../gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import {
  createRevisionIs, detached, firstCreated, getOp, headerOf, ownKey, putOp, rangeKvs, sessionLease, waitDeletes,
  type ConcurrencyDeps,
} from './session.js';

export class LockRecipes {
  readonly #deps: ConcurrencyDeps;

  constructor(deps: ConcurrencyDeps) {
    this.#deps = deps;
  }

  /**
   * Resolves once the caller holds the lock, with its key and the header of the read that saw every
   * predecessor gone. If the wait fails (the client canceled, or its deadline passed) the key is deleted
   * so it blocks nobody, as etcd 3.4 does.
   */
  async lock(req: LockRequest, signal: AbortSignal): Promise<LockResponse> {
    signal.throwIfAborted();
    const kv = this.#deps.kv;
    const lease = await sessionLease(kv, req.lease);
    const prefix = Buffer.concat([req.name, Buffer.from('/')]);
    const key = ownKey(prefix, lease);
    const owner = { request: { $case: 'requestRange' as const, value: firstCreated(prefix) } };
    // The same key again (a retry under the same lease) keeps its place in the queue.
    const res = await kv.txn({
      compare: [createRevisionIs(key, 0n)],
      success: [putOp(key, Buffer.alloc(0), lease), owner],
      failure: [getOp(key), owner],
    });
    const header = headerOf(res);
    let myRev = header.revision;
    if (!res.succeeded) {
      const mine = rangeKvs(res, 0)[0];
      assert(mine !== undefined, 'the compare found the key, the read in the same txn did not');
      myRev = mine.createRevision;
    }
    const first = rangeKvs(res, 1)[0];
    if (first === undefined || first.createRevision === myRev) return { header, key };
    try {
      return { header: await waitDeletes(this.#deps, prefix, { maxCreateRev: myRev - 1n, signal }), key };
    } catch (err) {
      await detached(() => kv.deleteRange({ key, rangeEnd: Buffer.alloc(0), prevKv: false })).catch(() => {});
      throw err;
    }
  }

  /** Deletes the lock key (whoever's it is, as etcd). */
  async unlock(req: UnlockRequest): Promise<UnlockResponse> {
    const res = await this.#deps.kv.deleteRange({ key: req.key, rangeEnd: Buffer.alloc(0), prevKv: false });
    return { header: headerOf(res) };
  }
}
