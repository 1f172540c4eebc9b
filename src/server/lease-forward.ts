/**
 * Lease keep-alive and time-to-live on any member. Only the primary lessor (the leader's) knows when leases
 * expire, so a member that is not the primary forwards both to the leader over the peer port, as etcd's
 * leasehttp does: POST /leases (a LeaseKeepAliveRequest, answered with a LeaseKeepAliveResponse) and POST
 * /leases/internal (a leasepb.LeaseInternalRequest, answered with a LeaseInternalResponse), protobuf
 * bodies, 404 for an unknown lease and 408 when the leader is not ready to answer.
 *
 * The leader also serves POST /leases/batch (etcd-ts only, proto/etcdts/lease-forward.proto): many renewals
 * in one request, which is what an etcd-ts follower sends. (etcd's peer port speaks HTTP/1.1 and ours
 * HTTP/2, so members of the two never forward to each other anyway.)
 *
 * Like etcd, a forwarded request is retried until its deadline (the client's, capped by the request
 * timeout): while there is no leader it waits for one, and when the leader refuses (it lost leadership) or
 * cannot be reached it tries again once the leader changes or after a short delay. An unknown lease ends
 * the retries at once. At the deadline the answer is etcd's: "no leader" if none was known, "request timed
 * out" otherwise.
 */
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import http2, { type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { EtcdError, isEtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import {
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { LeaseInternalRequest, LeaseInternalResponse } from '../gen/etcd/lease/leasepb/lease.js';
import { LeaseRenewBatchRequest, LeaseRenewBatchResponse } from '../gen/etcdts/lease-forward.js';
import { NotPrimaryError, type Lessor, type LeaseView } from '../lease/lessor.js';
import { checkPeerUrl, type ConnectionSettings } from '../raftnode/transport/connection.js';

export const leasePath = '/leases';
export const leaseInternalPath = '/leases/internal';
/** etcd-ts only: many renewals in one request (see proto/etcdts/lease-forward.proto). */
export const leaseBatchPath = '/leases/batch';

/** Per-id answers of a batch besides a TTL. */
const batchNotFound = -1n;
const batchRetry = -2n;

export const leaseForwardLimits = {
  /** etcd's applyTimeout: how long the leader waits to become the primary lessor before answering 408. */
  leaderReadyWaitMs: 1000,
  /** Request bodies: a few bytes per id (keys listed in a time-to-live answer may be many). */
  requestBodyBytesMax: 64 * 1024,
  /** Renewals gathered into one forwarded request, at most. */
  renewBatchMax: 2048,
  responseBodyBytesMax: 64 * 1024 * 1024,
  /** Forwarded requests waiting for the leader's answer, at most; past it: "too many requests". */
  inFlightMax: 50_000,
  /** Pause before asking again after a refusal or a failed connection, unless the leader changes first. */
  retryDelayMs: 50,
  /** A connection to a member idle this long is closed (it is usually a former leader). */
  sessionIdleMs: 30_000,
} as const;

/** etcd's "forever": the largest Go duration, in seconds, for a lease that does not expire here. */
const foreverSeconds = 9_223_372_036;

const sessionSettings: ConnectionSettings = {
  streamWindowBytes: 1024 * 1024,
  connectionWindowBytes: 4 * 1024 * 1024,
  incomingConnectionsMax: 0,
  sessionMemoryMb: 32,
};

/** A time-to-live answer without its header (the member that answers the client fills it in). */
export type TimeToLive = Omit<LeaseTimeToLiveResponse, 'header'>;

/** etcd truncates the remaining duration to whole seconds (negative once expired, before revocation). */
export function timeToLiveOf(l: LeaseView, options: { id: bigint; keys: boolean }): TimeToLive {
  const ttl = Number.isFinite(l.remainingMs) ? Math.trunc(l.remainingMs / 1000) : foreverSeconds;
  return {
    ID: options.id,
    TTL: BigInt(ttl),
    grantedTTL: BigInt(l.ttlSeconds),
    keys: options.keys ? l.keys.map((k) => Buffer.from(k, 'latin1')) : [],
  };
}

type LessorView = Pick<Lessor, 'isPrimary' | 'renew' | 'lookup' | 'waitPrimary'>;

// ------------------------------------------------------------------------------------------ leader side

type PeerRequestHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** One peer-port hook out of several: the first handler that takes the request serves it. */
export function peerRequests(handlers: readonly PeerRequestHandler[]): PeerRequestHandler {
  return (stream, headers) => handlers.some((h) => h(stream, headers));
}

export interface LeaseHandlerOptions {
  readonly lessor: LessorView;
  readonly isLeader: () => boolean;
  readonly log: Logger;
}

/** Serves POST /leases and /leases/internal on the peer port; returns false for any other path. */
export function leaseHandler(options: LeaseHandlerOptions): PeerRequestHandler {
  return (stream, headers) => {
    const path = String(headers[':path'] ?? '');
    if (path !== leasePath && path !== leaseInternalPath && path !== leaseBatchPath) return false;
    if (headers[':method'] !== 'POST') {
      answerText(stream, { status: 405, text: 'Method Not Allowed' });
      return true;
    }
    readBody(stream, leaseForwardLimits.requestBodyBytesMax).then(
      (body) => serveLease(options, { path, body }),
      () => ({ status: 400, text: 'error reading body' }),
    ).then(
      (answer) => answerLease(stream, answer),
      (err: unknown) => answerLease(stream, { status: 500, text: String(err) }),
    );
    return true;
  };
}

type Answer = { status: 200; body: Uint8Array } | { status: number; text: string };

async function serveLease(o: LeaseHandlerOptions, req: { path: string; body: Buffer }): Promise<Answer> {
  if (req.path === leaseBatchPath) return serveBatch(o, req.body);
  let id: bigint;
  let keys = false;
  try {
    if (req.path === leasePath) {
      id = LeaseKeepAliveRequest.decode(req.body).ID;
    } else {
      const ttlReq = LeaseInternalRequest.decode(req.body).LeaseTimeToLiveRequest;
      id = ttlReq?.ID ?? 0n;
      keys = ttlReq?.keys ?? false;
    }
  } catch {
    return { status: 400, text: 'error unmarshalling request' };
  }
  const refused = await refusedAsNotPrimary(o);
  if (refused !== undefined) return refused;
  try {
    if (req.path === leasePath) {
      const ttl = await o.lessor.renew(id);
      return { status: 200, body: LeaseKeepAliveResponse.encode({ header: undefined, ID: id, TTL: BigInt(ttl) }).finish() };
    }
    const l = o.lessor.lookup(id);
    if (l === undefined) throw new EtcdError('LeaseNotFound');
    const res = { header: { clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n }, ...timeToLiveOf(l, { id, keys }) };
    return { status: 200, body: LeaseInternalResponse.encode({ LeaseTimeToLiveResponse: res }).finish() };
  } catch (err) {
    if (isEtcdError(err, 'LeaseNotFound')) return { status: 404, text: err.message };
    if (err instanceof NotPrimaryError) return { status: 400, text: err.message };
    o.log.warn('failed to serve a forwarded lease request', { path: req.path, error: String(err) });
    return { status: 500, text: String(err) };
  }
}

/**
 * A leader that has not yet applied the entries of its own term is not the primary yet: wait a little, as
 * etcd waits for its applied index; a member that is not the leader refuses and is asked again.
 */
async function refusedAsNotPrimary(o: LeaseHandlerOptions): Promise<Answer | undefined> {
  if (!o.lessor.isPrimary && o.isLeader()) {
    try {
      await o.lessor.waitPrimary(leaseForwardLimits.leaderReadyWaitMs);
    } catch {
      return { status: 408, text: 'waiting for node to catch up its applied index has timed out' };
    }
  }
  return o.lessor.isPrimary ? undefined : { status: 400, text: new NotPrimaryError().message };
}

async function serveBatch(o: LeaseHandlerOptions, body: Buffer): Promise<Answer> {
  let ids: bigint[];
  try {
    ids = LeaseRenewBatchRequest.decode(body).IDs;
  } catch {
    return { status: 400, text: 'error unmarshalling request' };
  }
  if (ids.length > leaseForwardLimits.renewBatchMax) return { status: 400, text: `more than ${leaseForwardLimits.renewBatchMax} renewals` };
  const refused = await refusedAsNotPrimary(o);
  if (refused !== undefined) return refused;
  const TTLs = await Promise.all(ids.map((id) => o.lessor.renew(id).then(
    (ttl) => BigInt(ttl),
    (err: unknown) => {
      if (isEtcdError(err, 'LeaseNotFound')) return batchNotFound;
      if (!(err instanceof NotPrimaryError)) o.log.warn('failed to renew a forwarded lease', { 'lease-id': id.toString(16), error: String(err) });
      return batchRetry;
    },
  )));
  return { status: 200, body: LeaseRenewBatchResponse.encode({ TTLs }).finish() };
}

function answerLease(stream: ServerHttp2Stream, answer: Answer): void {
  if ('body' in answer) {
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/protobuf' });
    stream.end(answer.body);
  } else {
    answerText(stream, answer);
  }
}

function answerText(stream: ServerHttp2Stream, answer: { status: number; text: string }): void {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': answer.status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(answer.text);
}

function readBody(stream: http2.Http2Stream, bytesMax: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      reject(new Error(why));
    };
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > bytesMax) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        fail(`body larger than ${bytesMax} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      settled = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    stream.on('error', (err) => fail(err.message));
    // Closed without an end (reset by the peer, or cancelled at the deadline).
    stream.on('close', () => fail('stream closed before its end'));
  });
}

// -------------------------------------------------------------------------------------- follower side

export interface LeaseForwarderOptions {
  readonly localId: bigint;
  readonly lessor: LessorView;
  /** The raft leader as this member knows it; 0n: none. */
  readonly leader: () => bigint;
  /** A member's peer URLs; undefined for an unknown member. */
  readonly peerUrls: (id: bigint) => readonly string[] | undefined;
  /** How long a leader that is not the primary yet is waited for before asking again (an election). */
  readonly electionMs: number;
  readonly log: Logger;
  /** TLS for https:// peer URLs (our peer certificate, the trusted CA), read per connection. */
  readonly peerClientTls?: (() => ConnectionOptions) | undefined;
}

/** A forwarded request the leader did not answer usefully; the forwarder asks again. */
class RetryableError extends Error {}

interface RenewBatch {
  readonly items: Array<{ id: bigint; resolve: (ttl: bigint) => void; reject: (err: unknown) => void }>;
  deadlineMs: number;
}

/**
 * Renews and time-to-lives from this member's lessor when it is the primary, from the leader's otherwise.
 * One HTTP/2 connection per leader peer URL carries the forwarded requests, each on its own stream: a
 * time-to-live as etcd's POST /leases/internal, the renewals of one event-loop turn together as one
 * POST /leases/batch (a stream per renewal, as etcd does with HTTP/1.1 requests, costs far more CPU than
 * the renewal itself).
 */
export class LeaseForwarder {
  readonly #o: LeaseForwarderOptions;
  readonly #sessions = new Map<string, ClientHttp2Session>();
  readonly #leaderWaiters = new Set<() => void>();
  /** Renewals gathered this turn, per leader peer URL; sent at the end of the turn or when full. */
  readonly #batches = new Map<string, RenewBatch>();
  #inFlight = 0;
  #closed = false;

  constructor(options: LeaseForwarderOptions) {
    this.#o = options;
  }

  /** Renews lease `id` and returns its TTL in seconds; LeaseNotFound for an unknown or expired lease. */
  renew(id: bigint, options: { deadlineMs: number }): Promise<bigint> {
    return this.#untilDeadline({
      deadlineMs: options.deadlineMs,
      local: async () => BigInt(await this.#o.lessor.renew(id)),
      remote: (url, deadlineMs) => this.#renewBatched(url, { id, deadlineMs }),
    });
  }

  /** The lease's remaining and granted TTL as the primary lessor knows them; LeaseNotFound if unknown. */
  timeToLive(req: LeaseTimeToLiveRequest, options: { deadlineMs: number }): Promise<TimeToLive> {
    return this.#untilDeadline({
      deadlineMs: options.deadlineMs,
      local: async () => {
        const l = this.#o.lessor.lookup(req.ID);
        if (l === undefined) throw new EtcdError('LeaseNotFound');
        return timeToLiveOf(l, { id: req.ID, keys: req.keys });
      },
      remote: async (url, deadlineMs) => {
        const body = LeaseInternalRequest.encode({ LeaseTimeToLiveRequest: req }).finish();
        const res = LeaseInternalResponse.decode(await this.#post(url + leaseInternalPath, { body, deadlineMs })).LeaseTimeToLiveResponse;
        if (res === undefined || res.ID !== req.ID) throw new RetryableError('lease: time-to-live id mismatch');
        return { ID: res.ID, TTL: res.TTL, grantedTTL: res.grantedTTL, keys: res.keys };
      },
    });
  }

  /** Wakes requests waiting for a leader or for the next attempt. */
  onLeaderChange(): void {
    const waiters = [...this.#leaderWaiters];
    this.#leaderWaiters.clear();
    for (const w of waiters) w();
  }

  close(): void {
    this.#closed = true;
    this.onLeaderChange();
    for (const s of this.#sessions.values()) s.destroy();
    this.#sessions.clear();
  }

  async #untilDeadline<T>(how: {
    deadlineMs: number;
    local: () => Promise<T>;
    remote: (peerUrl: string, deadlineMs: number) => Promise<T>;
  }): Promise<T> {
    for (;;) {
      if (this.#closed) throw new EtcdError('Stopped');
      if (this.#o.lessor.isPrimary) {
        try {
          return await how.local();
        } catch (err) {
          // Demoted while renewing: ask whoever leads now.
          if (!(err instanceof NotPrimaryError)) throw err;
          continue;
        }
      }
      const lead = this.#o.leader();
      const leftMs = how.deadlineMs - Date.now();
      if (leftMs <= 0) throw new EtcdError(lead === 0n ? 'NoLeader' : 'Timeout');
      if (lead === 0n) {
        await this.#leaderChangeOr(leftMs);
      } else if (lead === this.#o.localId) {
        // Elected, not yet the primary (it has not applied its first entry): wait, a bounded slice at a time
        // since it may lose leadership meanwhile.
        await this.#o.lessor.waitPrimary(Math.min(leftMs, this.#o.electionMs)).catch(() => {});
      } else {
        const answer = await this.#askLeader(lead, how);
        if (answer.ok) return answer.value;
        await this.#leaderChangeOr(Math.min(leftMs, leaseForwardLimits.retryDelayMs));
      }
    }
  }

  /** One round over the leader's peer URLs; rethrows LeaseNotFound (final), swallows the rest (retried). */
  async #askLeader<T>(lead: bigint, how: { deadlineMs: number; remote: (peerUrl: string, deadlineMs: number) => Promise<T> }):
    Promise<{ ok: true; value: T } | { ok: false }> {
    for (const url of this.#o.peerUrls(lead) ?? []) {
      try {
        return { ok: true, value: await how.remote(url, how.deadlineMs) };
      } catch (err) {
        if (isEtcdError(err, 'LeaseNotFound') || isEtcdError(err, 'TooManyRequests')) throw err;
        this.#o.log.debug('forwarding a lease request to the leader failed', { leader: lead.toString(16), url, error: String(err) });
      }
    }
    return { ok: false };
  }

  #leaderChangeOr(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#leaderWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.#leaderWaiters.add(done);
    });
  }

  /** Joins this turn's batch of renewals for `url`; resolves with the lease's TTL. */
  #renewBatched(url: string, item: { id: bigint; deadlineMs: number }): Promise<bigint> {
    if (this.#inFlight >= leaseForwardLimits.inFlightMax) return Promise.reject(new EtcdError('TooManyRequests'));
    return new Promise((resolve, reject) => {
      let batch = this.#batches.get(url);
      if (batch === undefined) {
        const created: RenewBatch = { items: [], deadlineMs: 0 };
        this.#batches.set(url, created);
        setImmediate(() => this.#sendBatch(url, created));
        batch = created;
      }
      batch.items.push({ id: item.id, resolve, reject });
      // The batch waits as long as its most patient renewal; each one's own deadline is checked by the caller.
      batch.deadlineMs = Math.max(batch.deadlineMs, item.deadlineMs);
      this.#inFlight++;
      if (batch.items.length >= leaseForwardLimits.renewBatchMax) this.#sendBatch(url, batch);
    });
  }

  #sendBatch(url: string, batch: RenewBatch): void {
    if (this.#batches.get(url) !== batch) return;
    this.#batches.delete(url);
    const items = batch.items;
    const body = LeaseRenewBatchRequest.encode({ IDs: items.map((i) => i.id) }).finish();
    this.#exchange(new URL(url + leaseBatchPath), { body, deadlineMs: batch.deadlineMs }).then(({ status, body: answer }) => {
      if (status !== 200) throw new RetryableError(`lease: leader answered ${status}: ${answer.toString('utf8').slice(0, 200)}`);
      const TTLs = LeaseRenewBatchResponse.decode(answer).TTLs;
      if (TTLs.length !== items.length) throw new RetryableError('lease: renew batch answered with a different count');
      items.forEach((item, i) => {
        const ttl = TTLs[i]!;
        if (ttl >= 0n) item.resolve(ttl);
        else item.reject(ttl === batchNotFound ? new EtcdError('LeaseNotFound') : new RetryableError('lease: the leader could not renew now'));
      });
    }).catch((err: unknown) => {
      for (const item of items) item.reject(err);
    }).finally(() => {
      this.#inFlight -= items.length;
    });
  }

  /** POSTs `body` to `url`; resolves with a 200's body, rejects with LeaseNotFound (404) or retryably. */
  async #post(url: string, options: { body: Uint8Array; deadlineMs: number }): Promise<Buffer> {
    if (this.#inFlight >= leaseForwardLimits.inFlightMax) throw new EtcdError('TooManyRequests');
    this.#inFlight++;
    try {
      const { status, body } = await this.#exchange(new URL(url), options);
      if (status === 200) return body;
      if (status === 404) throw new EtcdError('LeaseNotFound');
      throw new RetryableError(`lease: leader answered ${status}: ${body.toString('utf8').slice(0, 200)}`);
    } finally {
      this.#inFlight--;
    }
  }

  #exchange(url: URL, options: { body: Uint8Array; deadlineMs: number }): Promise<{ status: number; body: Buffer }> {
    if (this.#closed) return Promise.reject(new EtcdError('Stopped'));
    return new Promise((resolve, reject) => {
      const session = this.#session(url);
      const req = session.request({ ':method': 'POST', ':path': url.pathname, 'content-type': 'application/protobuf' });
      const timer = setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        reject(new RetryableError('lease: no answer from the leader before the deadline'));
      }, Math.max(0, options.deadlineMs - Date.now()));
      let status = 0;
      req.on('response', (h) => {
        status = Number(h[':status']);
      });
      readBody(req, leaseForwardLimits.responseBodyBytesMax).then(
        (body) => resolve({ status, body }),
        (err: unknown) => reject(new RetryableError(String(err))),
      ).finally(() => clearTimeout(timer));
      req.end(options.body);
    });
  }

  #connect(url: URL): net.Socket {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (url.protocol !== 'https:') return net.connect({ host, port: Number(url.port || 80), noDelay: true });
    const options = this.#o.peerClientTls?.() ?? {};
    const socket = tls.connect({ ...options, host, port: Number(url.port || 443), ALPNProtocols: ['h2'], servername: net.isIP(host) === 0 ? host : undefined });
    socket.setNoDelay(true);
    return socket;
  }

  #session(url: URL): ClientHttp2Session {
    const existing = this.#sessions.get(url.origin);
    if (existing !== undefined && !existing.destroyed && !existing.closed) return existing;
    checkPeerUrl(url);
    const session = http2.connect(url.origin, {
      settings: { initialWindowSize: sessionSettings.streamWindowBytes, enablePush: false },
      maxSessionMemory: sessionSettings.sessionMemoryMb,
      // Requests are small and latency-bound: never hold one back waiting for the peer's ACK (Nagle).
      createConnection: () => this.#connect(url),
    });
    const forget = (): void => {
      if (this.#sessions.get(url.origin) === session) this.#sessions.delete(url.origin);
    };
    session.on('error', (err) => {
      this.#o.log.debug('lease forwarding connection failed', { url: url.origin, error: err.message });
      forget();
    });
    session.on('close', forget);
    session.setTimeout(leaseForwardLimits.sessionIdleMs, () => session.close());
    // Open connections must not keep a stopping process alive.
    session.unref();
    this.#sessions.set(url.origin, session);
    return session;
  }
}
