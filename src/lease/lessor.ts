/**
 * The lessor: every lease's TTL, attached keys and expiry, with etcd 3.4's semantics (go.etcd.io/etcd/lease).
 *
 * Two kinds of state. Replicated state (which leases exist, their TTLs, checkpointed remaining TTLs and the
 * keys attached to them) changes only while committed raft entries are applied, identically on every
 * member, and is written to the backend's lease bucket in the same batch as the consistent index. Local
 * state is the expiry time of each lease. Only the primary (the raft leader, once it has applied an entry
 * of its own term) keeps expiry times: it renews leases, finds expired ones and proposes their revocation
 * through raft, and proposes checkpoints of remaining TTLs so that a new leader neither renews a lease nor
 * cuts it short. Every other member treats every lease as never expiring until it is promoted; a new
 * primary extends every lease by the election timeout so that no lease expires because of the election.
 *
 * Time comes from an injected monotonic clock (ms); the periodic work is poll(), which start() runs every
 * 500 ms as etcd does and tests call directly.
 */
import { assert } from '../base/assert.js';
import { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import type { LeaseCheckpoint } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { LeaseRecord } from '../gen/etcdts/internal.js';
import { LeaseQueue } from './lease-queue.js';

/** Limits and rates, named in one place (etcd's values). */
export const leaseLimits = {
  /** etcd's MaxLeaseTTL. */
  maxTtlSeconds: 9_000_000_000,
  /** Expired leases proposed for revocation per second, at most. */
  revokesPerSecond: 1000,
  /** Revocations proposed and not yet applied, at most (etcd's maxPendingRevokes). */
  revokesInFlightMax: 16,
  /** Expired leases waiting for a revocation slot, at most; the rest wait in the expiry queue. */
  revokeBacklogMax: 1000,
  /** Checkpoints per proposal, and proposals per poll. */
  checkpointsPerProposal: 1000,
  checkpointProposalsPerPoll: 500,
  pollIntervalMs: 500,
  /** etcd's default --experimental-lease-checkpoint-interval. */
  checkpointIntervalMs: 5 * 60_000,
  /** An expired lease whose revocation did not get through is offered again after this long. */
  expiredRetryMs: 3000,
} as const;

/** The lease bucket of the backend; writes land in the current apply batch. */
export interface LeaseRecords {
  forEach(fn: (key: Buffer, value: Buffer) => void): void;
  put(key: Buffer, value: Buffer): void;
  delete(key: Buffer): void;
}

/** How the primary gets its decisions through raft; each resolves once the proposal is applied. */
export interface LeaseProposer {
  revoke(id: bigint): Promise<void>;
  checkpoint(checkpoints: LeaseCheckpoint[]): Promise<void>;
}

export interface LessorOptions {
  /** Shorter TTLs are raised to this (etcd: ceil(1.5 election timeouts) in seconds). */
  readonly minTtlSeconds: number;
  /** Monotonic milliseconds. */
  readonly clock: () => number;
  readonly proposer: LeaseProposer;
  readonly log: Logger;
  readonly checkpointIntervalMs?: number;
  readonly expiredRetryMs?: number;
  /** Overrides leaseLimits.revokesPerSecond (tests). */
  readonly revokesPerSecond?: number;
}

/** Renew and time-to-live are answered only by the primary; the caller must ask the leader. */
export class NotPrimaryError extends Error {
  constructor() {
    super('not a primary lessor');
    this.name = 'NotPrimaryError';
  }
}

/** A lease as callers see it. */
export interface LeaseSummary {
  readonly id: bigint;
  readonly ttlSeconds: number;
  /** Until expiry; Infinity when this member is not the primary. Negative once expired, before revocation. */
  readonly remainingMs: number;
}

export interface LeaseView extends LeaseSummary {
  /** Attached keys (latin1 strings of the key bytes), sorted. */
  readonly keys: readonly string[];
}

interface Lease {
  readonly id: bigint;
  readonly ttlSeconds: number;
  /** The last checkpointed remaining TTL; 0: none. */
  remainingTtlSeconds: number;
  /** Infinity: not expiring (this member is not the primary). */
  expiryMs: number;
  readonly keys: Set<string>;
}

function recordKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, id));
  return b;
}

/** etcd's RemainingTTL(): the checkpointed remaining TTL if any, else the full TTL. */
function ttlToRun(l: Lease): number {
  return l.remainingTtlSeconds > 0 ? l.remainingTtlSeconds : l.ttlSeconds;
}

export class Lessor {
  readonly #o: LessorOptions;
  readonly #leases = new Map<bigint, Lease>();
  readonly #keyLease = new Map<string, bigint>();
  readonly #expiries = new LeaseQueue();
  readonly #checkpoints = new LeaseQueue();
  readonly #checkpointIntervalMs: number;
  readonly #expiredRetryMs: number;
  readonly #revokesPerSecond: number;
  #records: LeaseRecords | null = null;
  #primary = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  /** Called on every promote, demote, revoke and stop; each removes itself once it has what it waits for. */
  readonly #changeWaiters = new Set<() => void>();
  #revokeBacklog: bigint[] = [];
  #revokesInFlight = 0;
  #checkpointing = false;

  constructor(options: LessorOptions) {
    assert(Number.isSafeInteger(options.minTtlSeconds) && options.minTtlSeconds >= 0, 'minTtlSeconds must be a non-negative integer');
    this.#o = options;
    this.#checkpointIntervalMs = options.checkpointIntervalMs ?? leaseLimits.checkpointIntervalMs;
    this.#expiredRetryMs = options.expiredRetryMs ?? leaseLimits.expiredRetryMs;
    this.#revokesPerSecond = options.revokesPerSecond ?? leaseLimits.revokesPerSecond;
    assert(this.#expiredRetryMs > 0 && this.#checkpointIntervalMs > 0, 'lessor intervals must be positive');
  }

  get isPrimary(): boolean {
    return this.#primary;
  }

  get size(): number {
    return this.#leases.size;
  }

  get minTtlSeconds(): number {
    return this.#o.minTtlSeconds;
  }

  /**
   * Loads the leases stored in the backend, not expiring until promoted. Must run before the MVCC store is
   * restored, which attaches every live key back to its lease.
   */
  recover(records: LeaseRecords): void {
    // A second recovery follows a backend replaced by a leader's snapshot: start over from its records.
    if (this.#records !== null) this.#forgetAll();
    this.#records = records;
    records.forEach((key, value) => {
      const rec = LeaseRecord.decode(value);
      assert(recordKey(rec.ID).equals(key), () => `lease record ${key.toString('hex')} holds lease ${rec.ID}`);
      this.#leases.set(rec.ID, {
        id: rec.ID,
        ttlSeconds: Math.max(Number(rec.TTL), this.#o.minTtlSeconds),
        remainingTtlSeconds: Math.max(0, Number(rec.RemainingTTL)),
        expiryMs: Infinity,
        keys: new Set(),
      });
    });
  }

  #forgetAll(): void {
    this.#expiries.clear();
    this.#checkpoints.clear();
    this.#leases.clear();
    this.#keyLease.clear();
    this.#revokeBacklog = [];
  }

  // ---- replicated state: called while applying committed entries ----

  /** Grants a lease; TTLs below the minimum are raised to it. Returns the granted TTL. */
  grant(id: bigint, ttlSeconds: bigint): { id: bigint; ttlSeconds: number } {
    if (id === 0n) throw new EtcdError('LeaseNotFound');
    if (ttlSeconds > BigInt(leaseLimits.maxTtlSeconds)) throw new EtcdError('LeaseTTLTooLarge');
    if (this.#leases.has(id)) throw new EtcdError('LeaseExist');
    const ttl = ttlSeconds < BigInt(this.#o.minTtlSeconds) ? this.#o.minTtlSeconds : Number(ttlSeconds);
    const l: Lease = { id, ttlSeconds: ttl, remainingTtlSeconds: 0, expiryMs: Infinity, keys: new Set() };
    this.#leases.set(id, l);
    this.#persist(l);
    if (this.#primary) {
      this.#refresh(l, 0);
      this.#scheduleCheckpoint(l);
    }
    return { id, ttlSeconds: ttl };
  }

  /**
   * Revokes a lease: `deleteKeys` deletes its keys (sorted, so every member writes the same history) in
   * one write txn, then the lease and its record go, all in the current apply batch.
   */
  revoke(id: bigint, deleteKeys: (keys: readonly string[]) => void): void {
    const l = this.#leases.get(id);
    if (l === undefined) throw new EtcdError('LeaseNotFound');
    const keys = [...l.keys].sort();
    if (keys.length > 0) deleteKeys(keys);
    for (const k of l.keys) if (this.#keyLease.get(k) === id) this.#keyLease.delete(k);
    this.#leases.delete(id);
    this.#expiries.delete(id);
    this.#checkpoints.delete(id);
    this.#recordsOrFail().delete(recordKey(id));
    this.#wakeWaiters();
  }

  /** Records a lease's remaining TTL as the primary measured it; unknown leases are ignored (as in etcd). */
  checkpoint(id: bigint, remainingTtlSeconds: bigint): void {
    const l = this.#leases.get(id);
    if (l === undefined) return;
    const clamped = remainingTtlSeconds < 0n ? 0n : remainingTtlSeconds > BigInt(leaseLimits.maxTtlSeconds) ? BigInt(leaseLimits.maxTtlSeconds) : remainingTtlSeconds;
    l.remainingTtlSeconds = Number(clamped);
    this.#persist(l);
    if (this.#primary) this.#scheduleCheckpoint(l);
  }

  exists(id: bigint): boolean {
    return this.#leases.has(id);
  }

  leaseOf(key: string): bigint {
    return this.#keyLease.get(key) ?? 0n;
  }

  attach(id: bigint, key: string): void {
    const l = this.#leases.get(id);
    if (l === undefined) {
      // Puts check the lease first; only a restore over an inconsistent backend gets here (etcd logs it too).
      this.#o.log.error('failed to attach a key to a lease that does not exist', { 'lease-id': id.toString(16) });
      return;
    }
    const previous = this.#keyLease.get(key);
    if (previous !== undefined && previous !== id) this.#leases.get(previous)?.keys.delete(key);
    l.keys.add(key);
    this.#keyLease.set(key, id);
  }

  detach(id: bigint, key: string): void {
    this.#leases.get(id)?.keys.delete(key);
    if (this.#keyLease.get(key) === id) this.#keyLease.delete(key);
  }

  // ---- primary: local decisions ----

  /** Becomes the primary: every lease expires `extendMs` after its (checkpointed) remaining TTL. */
  promote(extendMs: number): void {
    this.#primary = true;
    for (const l of this.#leases.values()) {
      this.#refresh(l, extendMs);
      this.#scheduleCheckpoint(l);
    }
    if (this.#leases.size >= this.#revokesPerSecond) this.#spreadExpiries(extendMs);
    this.#wakeWaiters();
  }

  /**
   * etcd's pile-up avoidance: after a promotion many leases may expire in the same second; push the
   * excess back so that at most 3/4 of the revoke rate expires per second, leaving room for new expiries.
   */
  #spreadExpiries(extendMs: number): void {
    const now = this.#o.clock();
    const leases = [...this.#leases.values()].sort((a, b) => a.expiryMs - b.expiryMs);
    const target = Math.floor((3 * this.#revokesPerSecond) / 4);
    let baseWindow = leases[0]!.expiryMs - now;
    let nextWindow = baseWindow + 1000;
    let expires = 0;
    for (const l of leases) {
      const remaining = l.expiryMs - now;
      if (remaining > nextWindow) {
        baseWindow = remaining;
        nextWindow = baseWindow + 1000;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= target) continue;
      const delayMs = (1000 * expires) / target - (remaining - baseWindow);
      nextWindow = baseWindow + delayMs;
      this.#refresh(l, delayMs + extendMs);
      this.#scheduleCheckpoint(l);
    }
  }

  /** Stops being the primary: no lease expires here any more; waiting renewals learn to ask the leader. */
  demote(): void {
    this.#primary = false;
    for (const l of this.#leases.values()) l.expiryMs = Infinity;
    this.#expiries.clear();
    this.#checkpoints.clear();
    this.#revokeBacklog = [];
    this.#wakeWaiters();
  }

  /**
   * Renews a lease (a keep-alive) and returns its TTL. Throws NotPrimaryError on a non-primary and
   * LeaseNotFound for an unknown lease. An expired lease is not renewed: the call waits until it is revoked
   * (LeaseNotFound) or this member is demoted (NotPrimaryError).
   */
  async renew(id: bigint): Promise<number> {
    let l = this.#primaryLease(id);
    if (l.expiryMs <= this.#o.clock()) await this.#waitGone(id);
    if (l.remainingTtlSeconds > 0) {
      // A renewed lease runs its full TTL again: clear the checkpoint first, through raft, so that a new
      // leader does not cut the renewed lease short. At most one such entry per lease per checkpoint.
      await this.#o.proposer.checkpoint([{ ID: id, remainingTTL: 0n }]);
      l = this.#primaryLease(id);
    }
    this.#refresh(l, 0);
    return l.ttlSeconds;
  }

  lookup(id: bigint): LeaseView | undefined {
    const l = this.#leases.get(id);
    return l === undefined ? undefined : { ...this.#summary(l), keys: [...l.keys].sort() };
  }

  /** All leases, soonest expiry first (etcd's order). */
  leases(): LeaseSummary[] {
    return [...this.#leases.values()]
      .sort((a, b) => (a.expiryMs === b.expiryMs ? 0 : a.expiryMs < b.expiryMs ? -1 : 1))
      .map((l) => this.#summary(l));
  }

  /** Resolves once this member is the primary; rejects with Timeout after `timeoutMs` (real time). */
  waitPrimary(timeoutMs: number): Promise<void> {
    if (this.#primary) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const finish = (err?: EtcdError): void => {
        clearTimeout(timer);
        this.#changeWaiters.delete(check);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (this.#primary) finish();
        else if (this.#stopped) finish(new EtcdError('Stopped'));
      };
      const timer = setTimeout(() => finish(new EtcdError('Timeout')), timeoutMs);
      this.#changeWaiters.add(check);
    });
  }

  // ---- the primary's periodic work ----

  /** Runs poll() every 500 ms until stop(). */
  start(): void {
    assert(this.#timer === null, 'lessor started twice');
    this.#timer = setInterval(() => this.poll(), leaseLimits.pollIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#revokeBacklog = [];
    this.#wakeWaiters();
  }

  /** One round of the primary's work: propose revoking expired leases (rate-limited) and due checkpoints. */
  poll(): void {
    if (!this.#primary || this.#stopped) return;
    const perPoll = Math.max(1, Math.floor((this.#revokesPerSecond * leaseLimits.pollIntervalMs) / 1000));
    const room = Math.min(perPoll, leaseLimits.revokeBacklogMax - this.#revokeBacklog.length);
    if (room > 0) this.#revokeBacklog.push(...this.#takeExpired(room));
    this.#pumpRevokes();
    if (!this.#checkpointing) void this.#proposeCheckpoints();
  }

  /** Expired leases, at most `limit`; each is offered again after the retry interval if still there. */
  #takeExpired(limit: number): bigint[] {
    const now = this.#o.clock();
    const out: bigint[] = [];
    while (out.length < limit) {
      const top = this.#expiries.peek();
      if (top === undefined || top.timeMs > now) break;
      const l = this.#leases.get(top.id);
      if (l === undefined) {
        this.#expiries.delete(top.id);
        continue;
      }
      this.#expiries.set(top.id, now + this.#expiredRetryMs);
      if (l.expiryMs <= now) out.push(l.id);
    }
    return out;
  }

  #pumpRevokes(): void {
    while (this.#primary && !this.#stopped && this.#revokesInFlight < leaseLimits.revokesInFlightMax) {
      const id = this.#revokeBacklog.shift();
      if (id === undefined) return;
      if (!this.#leases.has(id)) continue;
      this.#revokesInFlight++;
      this.#o.proposer.revoke(id).then(
        () => {},
        (err: unknown) => this.#o.log.warn('failed to revoke lease', { 'lease-id': id.toString(16), error: String(err) }),
      ).finally(() => {
        this.#revokesInFlight--;
        this.#pumpRevokes();
      });
    }
  }

  async #proposeCheckpoints(): Promise<void> {
    this.#checkpointing = true;
    try {
      for (let i = 0; i < leaseLimits.checkpointProposalsPerPoll && this.#primary && !this.#stopped; i++) {
        const due = this.#dueCheckpoints(leaseLimits.checkpointsPerProposal);
        if (due.length > 0) await this.#o.proposer.checkpoint(due);
        if (due.length < leaseLimits.checkpointsPerProposal) break;
      }
    } catch (err) {
      this.#o.log.warn('failed to checkpoint leases', { error: String(err) });
    } finally {
      this.#checkpointing = false;
    }
  }

  /** Checkpoints due now: leases still running, with less than their TTL left (the rest gains nothing). */
  #dueCheckpoints(limit: number): LeaseCheckpoint[] {
    const now = this.#o.clock();
    const out: LeaseCheckpoint[] = [];
    while (out.length < limit) {
      const top = this.#checkpoints.peek();
      if (top === undefined || top.timeMs > now) break;
      this.#checkpoints.pop();
      const l = this.#leases.get(top.id);
      if (l === undefined || now >= l.expiryMs) continue;
      const remaining = Math.ceil((l.expiryMs - now) / 1000);
      if (remaining >= l.ttlSeconds) continue;
      out.push({ ID: l.id, remainingTTL: BigInt(remaining) });
    }
    return out;
  }

  // ---- helpers ----

  #primaryLease(id: bigint): Lease {
    if (!this.#primary || this.#stopped) throw new NotPrimaryError();
    const l = this.#leases.get(id);
    if (l === undefined) throw new EtcdError('LeaseNotFound');
    return l;
  }

  /** Waits until lease `id` is revoked (throws LeaseNotFound) or this member stops being primary. */
  async #waitGone(id: bigint): Promise<never> {
    while (this.#primary && !this.#stopped && this.#leases.has(id)) await this.#nextChange();
    if (!this.#primary || this.#stopped) throw new NotPrimaryError();
    throw new EtcdError('LeaseNotFound');
  }

  /** Resolves on the next promote, demote, revoke or stop. */
  #nextChange(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#changeWaiters.delete(wake);
        resolve();
      };
      this.#changeWaiters.add(wake);
    });
  }

  #wakeWaiters(): void {
    for (const w of [...this.#changeWaiters]) w();
  }

  #refresh(l: Lease, extendMs: number): void {
    l.expiryMs = this.#o.clock() + extendMs + 1000 * ttlToRun(l);
    this.#expiries.set(l.id, l.expiryMs);
  }

  #scheduleCheckpoint(l: Lease): void {
    if (ttlToRun(l) * 1000 > this.#checkpointIntervalMs) {
      this.#checkpoints.set(l.id, this.#o.clock() + this.#checkpointIntervalMs);
    }
  }

  #persist(l: Lease): void {
    const value = LeaseRecord.encode({ ID: l.id, TTL: BigInt(l.ttlSeconds), RemainingTTL: BigInt(l.remainingTtlSeconds) }).finish();
    this.#recordsOrFail().put(recordKey(l.id), Buffer.from(value));
  }

  #recordsOrFail(): LeaseRecords {
    assert(this.#records !== null, 'lessor used before recover()');
    return this.#records;
  }

  #summary(l: Lease): LeaseSummary {
    return { id: l.id, ttlSeconds: l.ttlSeconds, remainingMs: l.expiryMs - this.#o.clock() };
  }
}
