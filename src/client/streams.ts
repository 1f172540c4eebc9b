/**
 * The streaming and long-waiting calls: Watch and LeaseKeepAlive (bidirectional streams), and the Lock and
 * Election services, whose calls block until a lock or leadership is won and so carry no default deadline.
 *
 * Streams open on the client's current endpoint and do not fail over: a caller that needs to resume does so
 * from what it last saw (a watch from its last revision + 1).
 */
import type { ClientDuplexStream, ClientReadableStream, Metadata, ServiceError } from '@grpc/grpc-js';
import { GrpcCode } from '../base/errors.js';
import {
  LeaseKeepAliveRequest,
  WatchCreateRequest,
  type LeaseKeepAliveResponse,
  type WatchRequest,
  type WatchResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import {
  CampaignRequest,
  LeaderRequest,
  ProclaimRequest,
  ResignRequest,
  type CampaignResponse,
  type LeaderKey,
  type LeaderResponse,
  type ProclaimResponse,
  type ResignResponse,
} from '../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import type { LockResponse, UnlockResponse } from '../gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import { ClientError } from './errors.js';
import type { Invoker, UnaryPlan } from './invoker.js';

/** What a stream may be given: a signal that ends it (the stream then simply stops yielding). */
export interface StreamOptions {
  readonly signal?: AbortSignal;
  /** Asks the server to refuse (and end) the stream while it has no leader, as clientv3's WithRequireLeader. */
  readonly requireLeader?: boolean;
}

/** Server-side lock waits are bounded by this unless the caller gives a deadline (a day: "forever" for a CLI). */
const waitTimeoutMsDefault = 24 * 60 * 60 * 1000;
/** clientv3 checks whether a keep-alive is due this often. */
const keepAliveTickMs = 500;

export const leaseNotFoundDetails = 'etcdserver: requested lease not found';

function streamError(err: unknown): unknown {
  const e = err as Partial<ServiceError>;
  if (typeof e.code === 'number' && typeof e.details === 'string') return new ClientError(e.code, e.details, {});
  return err;
}

function withLeader(md: Metadata, options: StreamOptions): Metadata {
  if (options.requireLeader === true) md.set('hasleader', 'true');
  return md;
}

/** Reads a stream until it ends, the server fails it, or the signal aborts it (which ends it quietly). */
async function* messages<T>(call: ClientReadableStream<T> | ClientDuplexStream<unknown, T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  const onAbort = (): void => call.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted === true) return;
    for await (const message of call) yield message as T;
  } catch (err) {
    if (signal?.aborted === true) return;
    throw streamError(err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    call.cancel();
  }
}

export class Watcher {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  /** One watch on its own stream: yields every response after the "created" one, until canceled or aborted. */
  async *watch(input: Partial<WatchCreateRequest>, options: StreamOptions = {}): AsyncGenerator<WatchResponse> {
    const create: WatchCreateRequest = { ...WatchCreateRequest.create(), ...input };
    const call = await this.#invoker.openStream((c, md, o) => c.watch.watch(withLeader(md, options), o));
    const request: WatchRequest = { requestUnion: { $case: 'createRequest', value: create } };
    call.write(request);
    for await (const resp of messages<WatchResponse>(call, options.signal)) {
      // clientv3 keeps the creation acknowledgement to itself unless it cancels the watch.
      if (resp.created && !resp.canceled && resp.events.length === 0) continue;
      yield resp;
      if (resp.canceled) return;
    }
  }
}

export class KeepAlives {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  /** Renews the lease once; a lease the server no longer has fails with "requested lease not found". */
  async once(id: bigint, options: StreamOptions = {}): Promise<LeaseKeepAliveResponse> {
    for await (const resp of this.#stream(id, { ...options, once: true })) return resp;
    throw new ClientError(GrpcCode.Canceled, 'context canceled', {});
  }

  /**
   * Renews the lease a third of its TTL after each renewal, yielding every response, until the lease is
   * gone (a response with TTL <= 0, not yielded), the stream ends, or the signal aborts.
   */
  keepAlive(id: bigint, options: StreamOptions = {}): AsyncGenerator<LeaseKeepAliveResponse> {
    return this.#stream(id, { ...options, once: false });
  }

  async *#stream(id: bigint, options: StreamOptions & { once: boolean }): AsyncGenerator<LeaseKeepAliveResponse> {
    const call = await this.#invoker.openStream((c, md, o) => c.lease.leaseKeepAlive(withLeader(md, options), o));
    const request: LeaseKeepAliveRequest = { ...LeaseKeepAliveRequest.create(), ID: id };
    call.write(request);
    let timer: NodeJS.Timeout | undefined;
    try {
      for await (const resp of messages<LeaseKeepAliveResponse>(call, options.signal)) {
        if (resp.TTL <= 0n) {
          if (options.once) throw new ClientError(GrpcCode.NotFound, leaseNotFoundDetails, {});
          return;
        }
        yield resp;
        if (options.once) return;
        const dueMs = Date.now() + Number(resp.TTL) * 1000 / 3;
        clearInterval(timer);
        timer = setInterval(() => {
          if (Date.now() < dueMs) return;
          clearInterval(timer);
          call.write(request);
        }, keepAliveTickMs);
      }
    } finally {
      clearInterval(timer);
    }
  }
}

/** The Lock service (v3lockpb): the lock is held by the caller's lease and released by Unlock or its expiry. */
export class Locks {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  lock(input: { name: Buffer; lease: bigint }, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LockResponse> {
    const plan: UnaryPlan<LockResponse> = { mutable: true, send: (c, md, o, cb) => c.lock.lock(input, md, o, cb) };
    return this.#invoker.call(plan, { timeoutMs: options.timeoutMs ?? waitTimeoutMsDefault, ...(options.signal ? { signal: options.signal } : {}) });
  }

  unlock(key: Buffer, options: { timeoutMs?: number } = {}): Promise<UnlockResponse> {
    const plan: UnaryPlan<UnlockResponse> = { mutable: true, send: (c, md, o, cb) => c.lock.unlock({ key }, md, o, cb) };
    return this.#invoker.call(plan, options);
  }
}

/** The Election service (v3electionpb). */
export class Elections {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  campaign(input: Partial<CampaignRequest>, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CampaignResponse> {
    const req: CampaignRequest = { ...CampaignRequest.create(), ...input };
    const plan: UnaryPlan<CampaignResponse> = { mutable: true, send: (c, md, o, cb) => c.election.campaign(req, md, o, cb) };
    return this.#invoker.call(plan, { timeoutMs: options.timeoutMs ?? waitTimeoutMsDefault, ...(options.signal ? { signal: options.signal } : {}) });
  }

  proclaim(input: Partial<ProclaimRequest>, options: { timeoutMs?: number } = {}): Promise<ProclaimResponse> {
    const req: ProclaimRequest = { ...ProclaimRequest.create(), ...input };
    const plan: UnaryPlan<ProclaimResponse> = { mutable: true, send: (c, md, o, cb) => c.election.proclaim(req, md, o, cb) };
    return this.#invoker.call(plan, options);
  }

  leader(name: Buffer, options: { timeoutMs?: number } = {}): Promise<LeaderResponse> {
    const req: LeaderRequest = { ...LeaderRequest.create(), name };
    const plan: UnaryPlan<LeaderResponse> = { mutable: false, send: (c, md, o, cb) => c.election.leader(req, md, o, cb) };
    return this.#invoker.call(plan, options);
  }

  resign(leader: LeaderKey, options: { timeoutMs?: number } = {}): Promise<ResignResponse> {
    const req: ResignRequest = { ...ResignRequest.create(), leader };
    const plan: UnaryPlan<ResignResponse> = { mutable: true, send: (c, md, o, cb) => c.election.resign(req, md, o, cb) };
    return this.#invoker.call(plan, options);
  }

  /** Every leader change of the election, starting with the current leader. */
  async *observe(name: Buffer, options: StreamOptions = {}): AsyncGenerator<LeaderResponse> {
    const req: LeaderRequest = { ...LeaderRequest.create(), name };
    const call = await this.#invoker.openStream((c, md, o) => c.election.observe(req, withLeader(md, options), o));
    yield* messages<LeaderResponse>(call, options.signal);
  }
}
