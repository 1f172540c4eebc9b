/**
 * Linearizable reads: every read waits for a ReadIndex round confirmed by the leader, then for the local
 * applied index to reach it. Reads that arrive while a round is in flight share the next round, so a burst
 * of reads costs one round trip, not one each.
 */
import { EtcdError } from '../base/errors.js';

export interface ReadIndexHost {
  /** Starts a ReadIndex round tagged with `context`. Throws if the raft core refuses. */
  requestReadIndex(context: Uint8Array): void;
  appliedIndex(): number;
}

interface Confirmed {
  readonly index: number;
  readonly round: PendingRound;
}

interface PendingRound {
  readonly context: bigint;
  readonly waiters: Array<{ resolve(): void; reject(err: unknown): void }>;
  timer: NodeJS.Timeout | null;
  retry: NodeJS.Timeout | null;
}

export class ReadIndexCoordinator {
  readonly #host: ReadIndexHost;
  readonly #timeoutMs: number;
  #nextContext = 1n;
  /** Reads waiting for the next round to start. */
  #queued: PendingRound['waiters'] = [];
  /** Rounds sent to raft, by context. */
  readonly #inFlight = new Map<bigint, PendingRound>();
  /** Rounds confirmed, waiting for apply to reach their index. */
  #confirmed: Confirmed[] = [];

  readonly #retryMs: number;

  /**
   * retryMs: a round may be lost (dropped on the way to the leader, or by a leader that has not committed
   * in its term yet); it is asked again this often until answered or timed out.
   */
  constructor(host: ReadIndexHost, options: { timeoutMs: number; retryMs?: number }) {
    this.#host = host;
    this.#timeoutMs = options.timeoutMs;
    this.#retryMs = options.retryMs ?? 500;
  }

  /** Resolves once a read at the current applied state is linearizable. */
  waitLinearizable(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queued.push({ resolve, reject });
      if (this.#inFlight.size === 0) this.#startRound();
    });
  }

  #startRound(): void {
    if (this.#queued.length === 0) return;
    const round: PendingRound = { context: this.#nextContext++, waiters: this.#queued, timer: null, retry: null };
    this.#queued = [];
    const ctx = Buffer.alloc(8);
    ctx.writeBigUInt64BE(round.context);
    this.#inFlight.set(round.context, round);
    round.timer = setTimeout(() => this.#fail(round, new EtcdError('Timeout')), this.#timeoutMs);
    round.retry = setInterval(() => {
      try {
        this.#host.requestReadIndex(ctx);
      } catch {
        // No leader right now: the next retry or the timeout decides.
      }
    }, this.#retryMs);
    try {
      this.#host.requestReadIndex(ctx);
    } catch (err) {
      this.#fail(round, err instanceof EtcdError ? err : new EtcdError('NoLeader'));
    }
  }

  /** Raft answered some rounds: context -> index. */
  onReadStates(states: ReadonlyArray<{ index: number; context: Uint8Array }>): void {
    for (const s of states) {
      if (s.context.length !== 8) continue;
      const key = Buffer.from(s.context.buffer, s.context.byteOffset, 8).readBigUInt64BE(0);
      const round = this.#inFlight.get(key);
      if (!round) continue;
      this.#inFlight.delete(key);
      if (round.retry) clearInterval(round.retry);
      round.retry = null;
      this.#confirmed.push({ index: s.index, round });
    }
    this.onApplied(this.#host.appliedIndex());
    if (this.#inFlight.size === 0) this.#startRound();
  }

  onApplied(appliedIndex: number): void {
    if (this.#confirmed.length === 0) return;
    const still: Confirmed[] = [];
    for (const c of this.#confirmed) {
      if (c.index <= appliedIndex) this.#succeed(c.round);
      else still.push(c);
    }
    this.#confirmed = still;
  }

  /** Leadership changed: rounds in flight may never be answered; fail them so clients retry. */
  onLeaderChanged(): void {
    for (const round of [...this.#inFlight.values()]) this.#fail(round, new EtcdError('LeaderChanged'));
    this.#startRound();
  }

  failAll(err: unknown): void {
    for (const round of [...this.#inFlight.values()]) this.#fail(round, err);
    for (const c of this.#confirmed) this.#fail(c.round, err);
    this.#confirmed = [];
    const queued = this.#queued;
    this.#queued = [];
    for (const w of queued) w.reject(err);
  }

  #succeed(round: PendingRound): void {
    if (round.timer) clearTimeout(round.timer);
    for (const w of round.waiters) w.resolve();
  }

  #fail(round: PendingRound, err: unknown): void {
    if (round.timer) clearTimeout(round.timer);
    if (round.retry) clearInterval(round.retry);
    round.timer = null;
    round.retry = null;
    const wasInFlight = this.#inFlight.delete(round.context);
    this.#confirmed = this.#confirmed.filter((c) => c.round !== round);
    for (const w of round.waiters) w.reject(err);
    if (wasInFlight && this.#inFlight.size === 0) this.#startRound();
  }
}
