/**
 * The Lease service (etcd's v3rpc/lease.go): grant and revoke go through raft; keep-alive, time-to-live
 * and the lease list are answered from the lessor. The server-side contract is declared here.
 *
 * Each LeaseKeepAlive stream handles its requests one at a time, in order, as etcd does: the response
 * header is taken before the renewal, so its revision is never newer than the renewal (a lease revoked at
 * revision r is never reported kept alive at a revision after r). Only the standard call API is used
 * (data/end/error/cancelled events, write, end), so any grpc-js-compatible server can host it.
 */
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { EtcdError, isEtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import {
  LeaseService,
  type LeaseGrantRequest, type LeaseGrantResponse,
  type LeaseKeepAliveRequest, type LeaseKeepAliveResponse,
  type LeaseLeasesRequest, type LeaseLeasesResponse,
  type LeaseRevokeRequest, type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest, type LeaseTimeToLiveResponse,
  type ResponseHeader,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { ServiceRegistration } from './services.js';
import { toServiceError, unary } from './unary.js';

export interface LeaseApi {
  leaseGrant(request: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  leaseRevoke(request: LeaseRevokeRequest): Promise<LeaseRevokeResponse>;
  /** Renews a lease and returns its TTL in seconds; LeaseNotFound for an unknown or expired lease. */
  leaseRenew(id: bigint): Promise<bigint>;
  /** LeaseNotFound for an unknown lease. */
  leaseTimeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(request: LeaseLeasesRequest): Promise<LeaseLeasesResponse>;
  /** A full response header at the current revision. */
  header(): ResponseHeader;
}

/** Keep-alive requests a stream may have waiting; a client past it is sending faster than it reads. */
export const keepAliveBacklogMax = 65_536;

export function leaseService(api: LeaseApi, log: Logger): ServiceRegistration {
  return {
    definition: LeaseService,
    implementation: {
      leaseGrant: unary('LeaseGrant', log, (r: LeaseGrantRequest) => api.leaseGrant(r)),
      leaseRevoke: unary('LeaseRevoke', log, (r: LeaseRevokeRequest) => api.leaseRevoke(r)),
      leaseTimeToLive: unary('LeaseTimeToLive', log, (r: LeaseTimeToLiveRequest) => timeToLive(api, r)),
      leaseLeases: unary('LeaseLeases', log, (r: LeaseLeasesRequest) => api.leaseLeases(r)),
      leaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
        new KeepAliveStream(call, { api, log }).start();
      },
    },
  };
}

/** etcd answers an unknown lease's time-to-live with TTL -1, not an error. */
async function timeToLive(api: LeaseApi, r: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
  try {
    return await api.leaseTimeToLive(r);
  } catch (err) {
    if (!isEtcdError(err, 'LeaseNotFound')) throw err;
    return { header: api.header(), ID: r.ID, TTL: -1n, grantedTTL: 0n, keys: [] };
  }
}

class KeepAliveStream {
  readonly #call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;
  readonly #api: LeaseApi;
  readonly #log: Logger;
  #queue: bigint[] = [];
  #head = 0;
  #running = false;
  #inputEnded = false;
  #closed = false;

  constructor(call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>, options: { api: LeaseApi; log: Logger }) {
    this.#call = call;
    this.#api = options.api;
    this.#log = options.log;
  }

  start(): void {
    const call = this.#call;
    call.on('data', (req: LeaseKeepAliveRequest) => this.#enqueue(req.ID));
    call.on('end', () => {
      this.#inputEnded = true;
      if (!this.#running) this.#finish();
    });
    // The client went away: drop what is queued; nothing more is written.
    call.on('cancelled', () => this.#close());
    call.on('error', () => this.#close());
  }

  #enqueue(id: bigint): void {
    if (this.#closed) return;
    if (this.#queue.length - this.#head >= keepAliveBacklogMax) {
      this.#fail(new EtcdError('TooManyRequests'));
      return;
    }
    this.#queue.push(id);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    while (!this.#closed && this.#head < this.#queue.length) {
      const id = this.#queue[this.#head++]!;
      if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      let response: LeaseKeepAliveResponse;
      try {
        response = { header: this.#api.header(), ID: id, TTL: 0n };
        response.TTL = await this.#renew(id);
      } catch (err) {
        this.#fail(err);
        break;
      }
      if (!this.#closed) this.#call.write(response);
    }
    this.#running = false;
    if (this.#inputEnded) this.#finish();
  }

  /** An unknown or revoked lease is answered with TTL 0, not an error. */
  async #renew(id: bigint): Promise<bigint> {
    try {
      return await this.#api.leaseRenew(id);
    } catch (err) {
      if (isEtcdError(err, 'LeaseNotFound')) return 0n;
      throw err;
    }
  }

  #finish(): void {
    if (this.#closed) return;
    this.#close();
    this.#call.end();
  }

  #fail(err: unknown): void {
    if (this.#closed) return;
    this.#close();
    this.#call.emit('error', toServiceError(err, this.#log, 'LeaseKeepAlive'));
  }

  #close(): void {
    this.#closed = true;
    this.#queue = [];
    this.#head = 0;
  }
}
