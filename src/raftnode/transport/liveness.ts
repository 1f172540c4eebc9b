/**
 * HTTP/2 PINGs on one connection, on both sides of every link: the answer time is the round-trip time
 * (what etcd's prober measures for etcd_network_peer_round_trip_time_seconds), and a PING left unanswered
 * past the timeout means the other end is gone even though TCP has not noticed (SIGSTOP, cut cable).
 */
import type { Http2Session } from 'node:http2';
import { performance } from 'node:perf_hooks';

export interface LivenessOptions {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly onRtt: (rttMs: number) => void;
  readonly onDead: (reason: string) => void;
}

export class Liveness {
  readonly #session: Http2Session;
  readonly #o: LivenessOptions;
  #timer: NodeJS.Timeout | null = null;
  /** When the unanswered PING was sent; null when none is outstanding. */
  #pendingSinceMs: number | null = null;
  #stopped = false;

  constructor(session: Http2Session, options: LivenessOptions) {
    this.#session = session;
    this.#o = options;
  }

  /** Pings at once (so the first round-trip time is known early), then every interval. */
  start(): void {
    if (this.#stopped || this.#timer !== null) return;
    this.#timer = setInterval(() => this.#tick(), this.#o.intervalMs);
    this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    if (this.#stopped) return;
    const now = performance.now();
    if (this.#pendingSinceMs !== null) {
      if (now - this.#pendingSinceMs < this.#o.timeoutMs) return;
      this.stop();
      this.#o.onDead(`no answer to PING within ${this.#o.timeoutMs} ms`);
      return;
    }
    if (this.#session.destroyed || this.#session.closed) return;
    this.#pendingSinceMs = now;
    try {
      this.#session.ping((err, durationMs) => {
        this.#pendingSinceMs = null;
        if (err === null && !this.#stopped) this.#o.onRtt(durationMs);
      });
    } catch {
      // The session is going away between the check above and the call; its 'close' handles the rest.
      this.#pendingSinceMs = null;
    }
  }
}
