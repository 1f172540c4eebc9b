/**
 * The Lease service (etcd's v3rpc/lease.go): grant and revoke go through raft; keep-alive, time-to-live
 * and the lease list are answered from the lessor. The server-side contract is declared here.
 *
 * Each LeaseKeepAlive stream answers its requests in order, as etcd does, but unlike etcd renews up to
 * keepAliveRenewalsInFlightMax of them at once (on a follower each one is a round trip to the leader). The
 * response header is taken before the renewal starts, so its revision is never newer than the renewal (a
 * lease revoked at revision r is never reported kept alive at a revision after r). Only the standard call API is used
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

/** Renewals of one stream in progress at once (each may be a round trip to the leader). */
export const keepAliveRenewalsInFlightMax = 128;

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

/** One renewal of a stream: answered in request order, whatever order the renewals finish in. */
interface Renewal {
  readonly response: LeaseKeepAliveResponse;
  done: boolean;
  error: unknown;
}

class KeepAliveStream {
  readonly #call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;
  readonly #api: LeaseApi;
  readonly #log: Logger;
  #queue: bigint[] = [];
  #head = 0;
  /** Started, not yet answered, in request order. */
  #started: Renewal[] = [];
  #inFlight = 0;
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
      this.#finishIfDone();
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
    this.#pump();
  }

  /**
   * Starts queued renewals, up to keepAliveRenewalsInFlightMax at once: a follower forwards each renewal
   * to the leader, and one at a time a stream carrying many leases could not renew them all in time.
   */
  #pump(): void {
    while (!this.#closed && this.#inFlight < keepAliveRenewalsInFlightMax && this.#head < this.#queue.length) {
      const id = this.#queue[this.#head++]!;
      if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      // The header is taken before the renewal starts, so its revision is never newer than the renewal.
      const renewal: Renewal = { response: { header: this.#api.header(), ID: id, TTL: 0n }, done: false, error: undefined };
      this.#started.push(renewal);
      this.#inFlight++;
      this.#renew(id).then(
        (ttl) => {
          renewal.response.TTL = ttl;
        },
        (err: unknown) => {
          renewal.error = err ?? new Error('renewal failed');
        },
      ).finally(() => {
        renewal.done = true;
        this.#inFlight--;
        this.#answer();
        this.#pump();
        this.#finishIfDone();
      });
    }
  }

  /** Writes every finished renewal at the head of the line; the first failure fails the stream. */
  #answer(): void {
    let n = 0;
    while (!this.#closed && n < this.#started.length && this.#started[n]!.done) {
      const r = this.#started[n++]!;
      if (r.error !== undefined) {
        this.#fail(r.error);
        break;
      }
      this.#call.write(r.response);
    }
    this.#started = n === 0 ? this.#started : this.#started.slice(n);
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

  #finishIfDone(): void {
    if (this.#inputEnded && this.#inFlight === 0 && this.#head >= this.#queue.length) this.#finish();
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
    this.#started = [];
  }
}
