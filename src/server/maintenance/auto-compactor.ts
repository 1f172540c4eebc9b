/**
 * Auto-compaction (etcd 3.4's v3compactor), run by every member but paused unless it leads; compactions
 * are ordinary Compact proposals through raft.
 *
 * periodic: keep `retention` of history. A revision is sampled every retry interval (a tenth of the
 * retention, capped at 6 minutes); once a whole retention has passed since the last success, the store is
 * compacted at the sample taken a retention ago; afterwards every min(retention, 1 hour). A failure retries
 * after one retry interval.
 * revision: every 5 minutes, compact at (current revision - retention) unless that is not positive or was
 * the last one compacted.
 */
import { isEtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { AutoCompactionConfig } from '../config.js';

/** etcd's fixed constants. */
export const autoCompactionLimits = {
  revisionCheckIntervalMs: 5 * 60_000,
  periodicCapMs: 3_600_000,
  retryDivisor: 10,
};

export interface CompactorClock {
  nowMs(): number;
  /** Calls fn once after ms; returns a cancel function. */
  after(ms: number, fn: () => void): () => void;
}

export const realClock: CompactorClock = {
  nowMs: () => Date.now(),
  after: (ms, fn) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return () => clearTimeout(t);
  },
};

export interface AutoCompactorOptions {
  readonly log: Logger;
  /** The current revision of the key space. */
  readonly rev: () => number;
  /** Proposes a compaction at rev; rejects with the store's error. */
  readonly compact: (rev: number) => Promise<void>;
  readonly clock?: CompactorClock;
  /** Overrides etcd's 5-minute check interval of revision mode (tests only). */
  readonly revisionCheckIntervalMs?: number;
}

export class AutoCompactor {
  readonly #cfg: AutoCompactionConfig;
  readonly #o: AutoCompactorOptions;
  readonly #clock: CompactorClock;
  #paused = true;
  #stopped = true;
  #cancel: () => void = () => {};
  // periodic state
  #revs: number[] = [];
  #lastSuccessMs = 0;
  #baseIntervalMs = 0;
  // revision state
  #prev = 0;

  constructor(cfg: AutoCompactionConfig, options: AutoCompactorOptions) {
    this.#cfg = cfg;
    this.#o = options;
    this.#clock = options.clock ?? realClock;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    if (this.#cfg.mode === 'periodic') {
      this.#lastSuccessMs = this.#clock.nowMs();
      this.#baseIntervalMs = this.#cfg.retentionMs;
      this.#periodicSample();
    } else {
      this.#schedule(this.#o.revisionCheckIntervalMs ?? autoCompactionLimits.revisionCheckIntervalMs, () => this.#revisionTick());
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel();
  }

  /** Only the leader compacts (etcd pauses the compactor on followers). */
  setLeader(isLeader: boolean): void {
    this.#paused = !isLeader;
  }

  #schedule(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    this.#cancel = this.#clock.after(ms, () => {
      if (!this.#stopped) fn();
    });
  }

  #periodicIntervals(): { compactMs: number; retryMs: number; retentions: number } {
    const period = this.#cfg.mode === 'periodic' ? this.#cfg.retentionMs : 0;
    const compactMs = Math.min(period, autoCompactionLimits.periodicCapMs);
    const retryMs = compactMs / autoCompactionLimits.retryDivisor;
    return { compactMs, retryMs, retentions: Math.floor(period / retryMs) + 1 };
  }

  #periodicSample(): void {
    const { retryMs, retentions } = this.#periodicIntervals();
    this.#revs.push(this.#o.rev());
    if (this.#revs.length > retentions) this.#revs.shift();
    this.#schedule(retryMs, () => void this.#periodicTick());
  }

  async #periodicTick(): Promise<void> {
    if (this.#cfg.mode !== 'periodic') return;
    const { compactMs } = this.#periodicIntervals();
    if (this.#paused || this.#clock.nowMs() - this.#lastSuccessMs < this.#baseIntervalMs) {
      this.#periodicSample();
      return;
    }
    if (this.#baseIntervalMs === this.#cfg.retentionMs) this.#baseIntervalMs = compactMs;
    const rev = this.#revs[0] ?? this.#o.rev();
    if (await this.#compact(rev, { 'compact-period': `${this.#cfg.retentionMs}ms` })) this.#lastSuccessMs = this.#clock.nowMs();
    this.#periodicSample();
  }

  async #revisionTick(): Promise<void> {
    if (this.#cfg.mode !== 'revision') return;
    const again = (): void => this.#schedule(this.#o.revisionCheckIntervalMs ?? autoCompactionLimits.revisionCheckIntervalMs, () => void this.#revisionTick());
    const rev = this.#o.rev() - this.#cfg.retentionRevisions;
    if (this.#paused || rev <= 0 || rev === this.#prev) {
      again();
      return;
    }
    if (await this.#compact(rev, { 'revision-compaction-retention': this.#cfg.retentionRevisions })) this.#prev = rev;
    again();
  }

  /** True when compacted (or already compacted past rev, which counts as done). */
  async #compact(rev: number, fields: Record<string, unknown>): Promise<boolean> {
    const kind = this.#cfg.mode === 'periodic' ? 'periodic' : 'revision';
    this.#o.log.info(`starting auto ${kind} compaction`, { revision: rev, ...fields });
    try {
      await this.#o.compact(rev);
    } catch (err) {
      if (!isEtcdError(err, 'Compacted')) {
        this.#o.log.warn(`failed auto ${kind} compaction`, { revision: rev, error: String(err), ...fields });
        return false;
      }
    }
    this.#o.log.info(`completed auto ${kind} compaction`, { revision: rev, ...fields });
    return true;
  }
}
