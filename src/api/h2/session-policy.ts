/**
 * Per-connection HTTP/2 policy, as Go's grpc server applies it: the server's own keepalive pings, and
 * the enforcement of the client's ping rate (GOAWAY ENHANCE_YOUR_CALM "too_many_pings" after three
 * strikes). etcd sets MinTime from --grpc-keepalive-min-time and PermitWithoutStream to false.
 */
import { constants, type ServerHttp2Session } from 'node:http2';
import type { CallObserver } from './grpc-call.js';

/** Go closes the connection on the ping after this many strikes. */
const maxPingStrikes = 2;
/** Without calls (and without PermitWithoutStream) a client should not ping more often than this (Go). */
const idlePingIntervalMs = 2 * 60 * 60 * 1000;
const tooManyPings = Buffer.from('too_many_pings');

export interface KeepaliveOptions {
  /** The server pings a connection this often; 0 turns server pings off. */
  readonly intervalMs: number;
  /** ...and closes it if the ack does not come within this; 0 turns server pings off. */
  readonly timeoutMs: number;
  /** A client pinging more often than this earns a strike. */
  readonly minTimeMs: number;
  /** Whether client pings are allowed while no call is open. */
  readonly permitWithoutStream: boolean;
}

/** Go's ping-strike rule, on an injected clock so tests can drive it. */
export class PingStrikes {
  readonly #minTimeMs: number;
  readonly #permitWithoutStream: boolean;
  #lastPingAt = -Infinity;
  #strikes = 0;
  #forgiven = false;

  constructor(options: Pick<KeepaliveOptions, 'minTimeMs' | 'permitWithoutStream'>) {
    this.#minTimeMs = options.minTimeMs;
    this.#permitWithoutStream = options.permitWithoutStream;
  }

  /** The server sent headers or data: the next ping is not held against the client. */
  forgive(): void {
    this.#forgiven = true;
  }

  /** Returns false when the client has pinged too often and the connection must go. */
  onPing(nowMs: number, activeCalls: number): boolean {
    const last = this.#lastPingAt;
    this.#lastPingAt = nowMs;
    if (this.#forgiven) {
      this.#forgiven = false;
      this.#strikes = 0;
      return true;
    }
    const spacingMs = activeCalls < 1 && !this.#permitWithoutStream ? idlePingIntervalMs : this.#minTimeMs;
    if (last + spacingMs > nowMs) this.#strikes++;
    return this.#strikes <= maxPingStrikes;
  }
}

/** The policy for one live session; the server tells it about calls and writes. */
export class SessionGuard implements CallObserver {
  readonly #session: ServerHttp2Session;
  readonly #options: KeepaliveOptions;
  readonly #strikes: PingStrikes;
  #activeCalls = 0;
  #keepalive: NodeJS.Timeout | null = null;
  #ackTimer: NodeJS.Timeout | null = null;

  constructor(session: ServerHttp2Session, options: KeepaliveOptions) {
    this.#session = session;
    this.#options = options;
    this.#strikes = new PingStrikes(options);
    session.on('ping', () => this.#onClientPing());
    session.once('close', () => this.#stopTimers());
    if (options.intervalMs > 0 && options.timeoutMs > 0) this.#scheduleKeepalive();
  }

  get activeCalls(): number {
    return this.#activeCalls;
  }

  noteWrite(): void {
    this.#strikes.forgive();
  }

  noteCallStarted(): void {
    this.#activeCalls++;
  }

  noteCallEnded(): void {
    this.#activeCalls--;
  }

  #onClientPing(): void {
    if (this.#strikes.onPing(Date.now(), this.#activeCalls)) return;
    const session = this.#session;
    if (session.destroyed || session.closed) return;
    // The GOAWAY is queued first; destroy() flushes pending frames before it closes the socket.
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM, session.state.lastProcStreamID ?? 0, tooManyPings);
    session.destroy();
  }

  #scheduleKeepalive(): void {
    this.#keepalive = setTimeout(() => this.#sendKeepalive(), this.#options.intervalMs);
    this.#keepalive.unref();
  }

  #sendKeepalive(): void {
    this.#keepalive = null;
    const session = this.#session;
    if (session.destroyed || session.closed) return;
    this.#ackTimer = setTimeout(() => session.destroy(), this.#options.timeoutMs);
    this.#ackTimer.unref();
    // If the ping cannot even be queued (too many unanswered), the ack timer closes the session.
    session.ping((err) => {
      if (this.#ackTimer !== null) clearTimeout(this.#ackTimer);
      this.#ackTimer = null;
      if (err === null && !session.destroyed) this.#scheduleKeepalive();
    });
  }

  #stopTimers(): void {
    if (this.#keepalive !== null) clearTimeout(this.#keepalive);
    if (this.#ackTimer !== null) clearTimeout(this.#ackTimer);
    this.#keepalive = null;
    this.#ackTimer = null;
  }
}
