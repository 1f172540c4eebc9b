/**
 * For the recipes' unit tests: the real MVCC store (LMDB in a temp dir), the real watchable store fed by
 * its writes, and a small lease table, behind the same ConcurrencyKv the server provides. No raft: every
 * write applies at once, so tests decide exactly when each step happens.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdError } from '../base/errors.js';
import { silentLogger } from '../base/logger.js';
import {
  RangeRequest,
  type DeleteRangeRequest, type DeleteRangeResponse, type LeaseGrantRequest, type LeaseGrantResponse, type RangeResponse,
  type ResponseHeader, type TxnRequest, type TxnResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { KvStore } from '../server/kv-store.js';
import { openKvStore, type Leases } from '../server/kv-store-impl.js';
import { WatchableStore } from '../watch/watchable-store.js';
import type { ConcurrencyDeps, ConcurrencyKv } from './session.js';

class LeaseTable implements Leases {
  readonly keys = new Map<bigint, Set<string>>();
  readonly #owner = new Map<string, bigint>();

  exists(id: bigint): boolean {
    return this.keys.has(id);
  }
  leaseOf(key: string): bigint {
    return this.#owner.get(key) ?? 0n;
  }
  attach(lease: bigint, key: string): void {
    this.keys.get(lease)?.add(key);
    this.#owner.set(key, lease);
  }
  detach(lease: bigint, key: string): void {
    this.keys.get(lease)?.delete(key);
    this.#owner.delete(key);
  }
  recover(): void {}
}

export class RecipeKit implements ConcurrencyKv {
  readonly deps: ConcurrencyDeps;
  readonly watches: WatchableStore;
  readonly #store: KvStore;
  readonly #leases: LeaseTable;
  readonly #dir: string;
  #nextLeaseId = 0x700n;

  private constructor(o: { store: KvStore; leases: LeaseTable; watches: WatchableStore; dir: string }) {
    this.#store = o.store;
    this.#leases = o.leases;
    this.watches = o.watches;
    this.#dir = o.dir;
    this.deps = { kv: this, watches: o.watches, header: (revision) => this.#header(revision) };
  }

  static async open(): Promise<RecipeKit> {
    const dir = mkdtempSync(join(tmpdir(), 'recipes-'));
    const leases = new LeaseTable();
    let watches: WatchableStore | null = null;
    const store = await openKvStore(dir, {
      log: silentLogger, batchIntervalMs: 100, batchLimit: 10_000, compactionBatchLimit: 1000, leases,
      onEvents: (events, revision) => watches?.notify(events, revision),
    });
    watches = new WatchableStore({ history: store.watchHistory(), log: silentLogger });
    return new RecipeKit({ store, leases, watches, dir });
  }

  async close(): Promise<void> {
    this.watches.close();
    await this.#store.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    return this.#withHeader(this.#store.applyTxn(req));
  }
  async range(req: RangeRequest): Promise<RangeResponse> {
    return this.#withHeader(this.#store.range(req));
  }
  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    if (req.key.length === 0) throw new EtcdError('EmptyKey');
    return this.#withHeader(this.#store.applyDeleteRange(req));
  }
  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    const id = req.ID === 0n ? this.#nextLeaseId++ : req.ID;
    this.#leases.keys.set(id, new Set());
    return { header: this.#header(this.#store.rev()), ID: id, TTL: req.TTL, error: '' };
  }

  /** A lease expiring (or revoked): its keys go in one write, as the lessor's revoke does. */
  expire(id: bigint): void {
    const keys = this.#leases.keys.get(id);
    if (keys === undefined) throw new Error(`no lease ${id}`);
    this.#store.applyDeleteKeys([...keys]);
    this.#leases.keys.delete(id);
  }

  put(key: string, value: string): void {
    this.#store.applyPut({ key: Buffer.from(key), value: Buffer.from(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
  }

  compact(revision: number): void {
    this.#store.applyCompaction({ revision: BigInt(revision), physical: false });
  }

  get revision(): number {
    return this.#store.rev();
  }

  async keys(prefix: string): Promise<string[]> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const res = this.#store.range(RangeRequest.fromPartial({ key: Buffer.from(prefix), rangeEnd: end, keysOnly: true }));
    return res.kvs.map((kv) => kv.key.toString());
  }

  #header(revision: number): ResponseHeader {
    return { clusterId: 1n, memberId: 2n, revision: BigInt(revision), raftTerm: 3n };
  }

  #withHeader<T extends { header?: ResponseHeader | undefined }>(res: T): T {
    return { ...res, header: this.#header(Number(res.header?.revision ?? this.#store.rev())) };
  }
}

/** Whether a promise has settled, without waiting for it (after pending callbacks ran). */
export async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => { done = true; }, () => { done = true; });
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

/** Waits until `check` holds, turning the event loop meanwhile; fails at the deadline. */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
