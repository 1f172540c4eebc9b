/**
 * Runs one unary RPC: picks an endpoint that accepts a connection, sends, and fails over to the next endpoint
 * when the answer is Unavailable. A request that may have reached a server is resent only if it cannot change
 * state (reads), as etcd's clientv3 does: resending a put or txn after an ambiguous failure could apply it twice.
 */
import { Metadata, status, type CallOptions as GrpcCallOptions, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { GrpcCode } from '../base/errors.js';
import type { Connection } from './connection.js';
import type { ConnectionPool } from './connection-pool.js';
import { ClientError, canceledDetails, closedDetails, deadlineDetails } from './errors.js';

/** Sends, per call, at most this many RPCs (first try plus failovers and retries). */
export const attemptsMax = 16;
const retryBackoffMinMs = 25;
const retryBackoffMaxMs = 500;

export type Callback<Res> = (error: ServiceError | null, response: Res) => void;

export interface UnaryPlan<Res> {
  /** True when the call changes state, so an ambiguous failure must not be resent. */
  readonly mutable: boolean;
  readonly send: (conn: Connection, md: Metadata, opts: GrpcCallOptions, cb: Callback<Res>) => ClientUnaryCall;
}

export interface CallOptions {
  /** Overrides the client's requestTimeoutMs for this call. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Sends to this endpoint only (no failover), as etcdctl's endpoint status does per endpoint. */
  endpoint?: string;
}

export interface AttemptFailure {
  /** Zero-based count of attempts that failed before this one. */
  readonly attempt: number;
  readonly endpoint: string;
  /** True when the call was pinned to its endpoint by CallOptions.endpoint. */
  readonly pinned: boolean;
  readonly error: ClientError;
}

export interface InvokerOptions {
  dialTimeoutMs: number;
  requestTimeoutMs: number;
  authenticate?: (conn: Connection, deadlineMs: number) => Promise<string | undefined>;
  onAttemptFailed?: (failure: AttemptFailure) => void;
}

interface CallState {
  readonly deadlineMs: number;
  readonly pinned: boolean;
  readonly signal: AbortSignal | undefined;
  attempt: number;
  rounds: number;
  lastError: ClientError | undefined;
  tokenRefreshed: boolean;
}

export class Invoker {
  #pool: ConnectionPool;
  #options: InvokerOptions;
  #token: Promise<string | undefined> | undefined;
  #closed = false;

  constructor(pool: ConnectionPool, options: InvokerOptions) {
    this.#pool = pool;
    this.#options = options;
  }

  close(): void {
    this.#closed = true;
  }

  async call<Res>(plan: UnaryPlan<Res>, options: CallOptions = {}): Promise<Res> {
    if (this.#closed) throw new ClientError(GrpcCode.Canceled, closedDetails, { sent: false });
    const timeoutMs = options.timeoutMs ?? this.#options.requestTimeoutMs;
    const state: CallState = {
      deadlineMs: Date.now() + timeoutMs,
      pinned: options.endpoint !== undefined,
      signal: options.signal,
      attempt: 0,
      rounds: 0,
      lastError: undefined,
      tokenRefreshed: false,
    };
    const pinned = options.endpoint === undefined ? undefined : this.#pool.pinned(options.endpoint);
    while (state.attempt < attemptsMax) {
      throwIfAborted(state);
      if (this.#closed) throw new ClientError(GrpcCode.Canceled, closedDetails, { sent: false });
      const conn = pinned ?? this.#pool.current();
      const ready = await conn.waitReady(Math.min(state.deadlineMs, Date.now() + this.#options.dialTimeoutMs));
      if (ready !== 'ready') {
        if (Date.now() >= state.deadlineMs) break;
        await this.#nextEndpoint(state, pinned === undefined);
        continue;
      }
      const outcome = await this.#attempt(plan, conn, state);
      if (outcome.ok) return outcome.value;
      if (!this.#shouldRetry(plan, outcome.error, state)) throw outcome.error;
      await this.#nextEndpoint(state, pinned === undefined);
    }
    throw this.#gaveUp(state, pinned ?? this.#pool.current());
  }

  /**
   * Opens a server stream on the current endpoint once it accepts connections, with the auth token when
   * the client has credentials. No failover and no retry: what a stream already delivered cannot be
   * resumed from another member (a snapshot is one member's state).
   */
  async openStream<T>(open: (conn: Connection, md: Metadata, opts: GrpcCallOptions) => T, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.#closed) throw new ClientError(GrpcCode.Canceled, closedDetails, { sent: false });
    const conn = this.#pool.current();
    const deadlineMs = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
    const ready = await conn.waitReady(Math.min(deadlineMs, Date.now() + this.#options.dialTimeoutMs));
    if (ready !== 'ready') throw new ClientError(GrpcCode.DeadlineExceeded, deadlineDetails, { endpoint: conn.endpoint.raw, sent: false });
    const md = await this.#metadata(conn, Math.min(deadlineMs, Date.now() + this.#options.requestTimeoutMs));
    return open(conn, md, Number.isFinite(deadlineMs) ? { deadline: new Date(deadlineMs) } : {});
  }

  async #attempt<Res>(
    plan: UnaryPlan<Res>,
    conn: Connection,
    state: CallState,
  ): Promise<{ ok: true; value: Res } | { ok: false; error: ClientError }> {
    try {
      const md = await this.#metadata(conn, state.deadlineMs);
      return { ok: true, value: await send(plan, conn, md, state) };
    } catch (err) {
      const error = toClientError(err, conn, state);
      this.#options.onAttemptFailed?.({ attempt: state.attempt, endpoint: conn.endpoint.raw, pinned: state.pinned, error });
      state.attempt++;
      state.lastError = error;
      return { ok: false, error };
    }
  }

  #shouldRetry(plan: UnaryPlan<unknown>, error: ClientError, state: CallState): boolean {
    if (error.kind === 'InvalidAuthToken' && this.#options.authenticate !== undefined && !state.tokenRefreshed) {
      state.tokenRefreshed = true;
      this.#token = undefined;
      return true;
    }
    if (error.code !== GrpcCode.Unavailable) return false;
    if (plan.mutable && error.sent) return false;
    return Date.now() < state.deadlineMs;
  }

  async #nextEndpoint(state: CallState, failover: boolean): Promise<void> {
    const wrapped = failover ? this.#pool.advance() : true;
    if (!wrapped) return;
    // Every endpoint failed this round: wait a little before the next round so a dead cluster is not spun on.
    const backoffMs = Math.min(retryBackoffMaxMs, retryBackoffMinMs * 2 ** state.rounds);
    state.rounds++;
    await sleep(Math.max(0, Math.min(backoffMs, state.deadlineMs - Date.now())), state.signal);
  }

  #gaveUp(state: CallState, conn: Connection): ClientError {
    if (state.lastError !== undefined && Date.now() < state.deadlineMs) return state.lastError;
    const error = new ClientError(GrpcCode.DeadlineExceeded, deadlineDetails, {
      endpoint: conn.endpoint.raw,
      sent: state.lastError?.sent ?? false,
    });
    if (state.lastError === undefined) {
      this.#options.onAttemptFailed?.({ attempt: state.attempt, endpoint: conn.endpoint.raw, pinned: state.pinned, error });
    }
    return error;
  }

  async #metadata(conn: Connection, deadlineMs: number): Promise<Metadata> {
    const md = new Metadata();
    const authenticate = this.#options.authenticate;
    if (authenticate === undefined) return md;
    if (this.#token === undefined) {
      this.#token = authenticate(conn, deadlineMs);
      // A failed authentication must not stick: the next call tries again.
      this.#token.catch(() => {
        this.#token = undefined;
      });
    }
    const token = await this.#token;
    if (token !== undefined) md.set('token', token);
    return md;
  }
}

function send<Res>(plan: UnaryPlan<Res>, conn: Connection, md: Metadata, state: CallState): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const call = plan.send(conn, md, { deadline: new Date(state.deadlineMs) }, (err, res) => {
      state.signal?.removeEventListener('abort', onAbort);
      if (err !== null) reject(err);
      else resolve(res);
    });
    const onAbort = (): void => call.cancel();
    state.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function toClientError(err: unknown, conn: Connection, state: CallState): ClientError {
  if (err instanceof ClientError) return err;
  const endpoint = conn.endpoint.raw;
  if (!isServiceError(err)) {
    return new ClientError(GrpcCode.Unknown, err instanceof Error ? err.message : String(err), { endpoint });
  }
  // As clientv3 does: a deadline or cancellation of the caller's own context is reported as that, not as gRPC's text.
  if (err.code === status.DEADLINE_EXCEEDED && Date.now() >= state.deadlineMs) {
    return new ClientError(GrpcCode.DeadlineExceeded, deadlineDetails, { endpoint });
  }
  if (err.code === status.CANCELLED && state.signal?.aborted === true) {
    return new ClientError(GrpcCode.Canceled, canceledDetails, { endpoint });
  }
  const sent = !(err.code === status.UNAVAILABLE && err.details.startsWith('No connection established'));
  return new ClientError(err.code, err.details, { endpoint, sent });
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}

function throwIfAborted(state: CallState): void {
  if (state.signal?.aborted === true) throw new ClientError(GrpcCode.Canceled, canceledDetails, { sent: false });
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted === true) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
