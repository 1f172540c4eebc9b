/**
 * etcd's leader election (v3election), run in the server. Candidates put <name>/<lease hex> bound to
 * their lease; the oldest key (by create revision) is the leader and its value the proclamation. A
 * leader is named by its LeaderKey (name, key, create revision, lease): Proclaim and Resign act only
 * while that exact key (same create revision) still exists.
 */
import { assert } from '../base/assert.js';
import { EtcdError, isEtcdError } from '../base/errors.js';
import type {
  CampaignRequest, CampaignResponse, LeaderKey, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse,
  ResignRequest, ResignResponse,
} from '../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import type { ResponseHeader } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { KeyWatch } from './key-watch.js';
import {
  createRevisionIs, deleteOp, detached, firstCreated, getOp, headerOf, ownKey, putOp, rangeKvs, sessionLease,
  waitDeletes, type ConcurrencyDeps,
} from './session.js';

export class ElectionRecipes {
  readonly #deps: ConcurrencyDeps;

  constructor(deps: ConcurrencyDeps) {
    this.#deps = deps;
  }

  /**
   * Resolves once the candidate leads. A candidate already in the race under this lease keeps its place
   * and proclaims the new value. A canceled campaign withdraws its key, as etcd 3.4 does.
   */
  async campaign(req: CampaignRequest, signal: AbortSignal): Promise<CampaignResponse> {
    signal.throwIfAborted();
    const kv = this.#deps.kv;
    const lease = await sessionLease(kv, req.lease);
    const prefix = Buffer.concat([req.name, Buffer.from('/')]);
    const key = ownKey(prefix, lease);
    const res = await kv.txn({
      compare: [createRevisionIs(key, 0n)],
      success: [putOp(key, req.value, lease)],
      failure: [getOp(key)],
    });
    const leader: LeaderKey = { name: req.name, key, rev: headerOf(res).revision, lease };
    if (!res.succeeded) {
      const mine = rangeKvs(res, 0)[0];
      assert(mine !== undefined, 'the compare found the key, the read in the same txn did not');
      leader.rev = mine.createRevision;
      if (!mine.value.equals(req.value)) await this.#proclaimOrWithdraw(leader, req.value);
    }
    try {
      await waitDeletes(this.#deps, prefix, { maxCreateRev: leader.rev - 1n, signal });
    } catch (err) {
      if (signal.aborted) await detached(() => this.#resign(leader)).catch(() => {});
      throw err;
    }
    return { header: headerOf(res), leader };
  }

  async proclaim(req: ProclaimRequest): Promise<ProclaimResponse> {
    const leader = requireLeader(req.leader);
    const lease = await sessionLease(this.#deps.kv, leader.lease);
    return { header: await this.#proclaim({ ...leader, lease }, req.value) };
  }

  async resign(req: ResignRequest): Promise<ResignResponse> {
    const leader = requireLeader(req.leader);
    const lease = await sessionLease(this.#deps.kv, leader.lease);
    return { header: await this.#resign({ ...leader, lease }) };
  }

  async leader(req: LeaderRequest): Promise<LeaderResponse> {
    const prefix = Buffer.concat([req.name, Buffer.from('/')]);
    const res = await this.#deps.kv.range(firstCreated(prefix));
    const kv = res.kvs[0];
    if (kv === undefined) throw new EtcdError('ElectionNoLeader');
    return { header: headerOf(res), kv };
  }

  /**
   * The current leader, then each new proclamation and each next leader, in order. With no leader yet,
   * the first key put under the prefix. Ends (without error) if its start revision was compacted away.
   */
  async *observe(req: LeaderRequest, signal: AbortSignal): AsyncGenerator<LeaderResponse> {
    const prefix = Buffer.concat([req.name, Buffer.from('/')]);
    try {
      for (;;) {
        signal.throwIfAborted();
        const current = await this.#currentOrFirst(prefix, signal);
        yield current;
        yield* this.#follow(current, signal);
      }
    } catch (err) {
      if (!isEtcdError(err, 'Compacted')) throw err;
    }
  }

  /** The leader now, or (with none) the first put under the prefix after the read. */
  async #currentOrFirst(prefix: Buffer, signal: AbortSignal): Promise<LeaderResponse & { kv: KeyValue; header: ResponseHeader }> {
    const res = await this.#deps.kv.range(firstCreated(prefix));
    const header = headerOf(res);
    const kv = res.kvs[0];
    if (kv !== undefined) return { header, kv };
    const watch = new KeyWatch(this.#deps.watches, { key: prefix, prefix: true, startRev: Number(header.revision) });
    try {
      for (;;) {
        const changes = await watch.next(signal);
        const put = changes.events.find((e) => e.type === Event_EventType.PUT);
        // etcd reports the put's own revision, not the end of the batch it came in.
        if (put?.kv !== undefined) return { header: this.#deps.header(Number(put.kv.modRevision)), kv: put.kv };
      }
    } finally {
      watch.close();
    }
  }

  /** Every later put of the leader's key, until it is deleted. */
  async *#follow(from: { header: ResponseHeader; kv: KeyValue }, signal: AbortSignal): AsyncGenerator<LeaderResponse> {
    const watch = new KeyWatch(this.#deps.watches, { key: from.kv.key, startRev: Number(from.header.revision) + 1 });
    try {
      for (;;) {
        const changes = await watch.next(signal);
        for (const e of changes.events) {
          if (e.type === Event_EventType.DELETE) return;
          yield { header: this.#deps.header(changes.headerRev), kv: e.kv };
        }
      }
    } finally {
      watch.close();
    }
  }

  async #proclaimOrWithdraw(leader: LeaderKey, value: Buffer): Promise<void> {
    try {
      await this.#proclaim(leader, value);
    } catch (err) {
      await this.#resign(leader).catch(() => {});
      throw err;
    }
  }

  /** Replaces the leader's value while its key is the one it created. */
  async #proclaim(leader: LeaderKey, value: Buffer): Promise<ResponseHeader> {
    const res = await this.#deps.kv.txn({
      compare: [createRevisionIs(leader.key, leader.rev)],
      success: [putOp(leader.key, value, leader.lease)],
      failure: [],
    });
    if (!res.succeeded) throw new EtcdError('ElectionNotLeader');
    return headerOf(res);
  }

  /** Deletes the leader's key if it is still the one it created; a stale LeaderKey is no error (as etcd). */
  async #resign(leader: LeaderKey): Promise<ResponseHeader> {
    const res = await this.#deps.kv.txn({ compare: [createRevisionIs(leader.key, leader.rev)], success: [deleteOp(leader.key)], failure: [] });
    return headerOf(res);
  }
}

function requireLeader(leader: LeaderKey | undefined): LeaderKey {
  if (leader === undefined) throw new EtcdError('ElectionMissingLeaderKey');
  return leader;
}
