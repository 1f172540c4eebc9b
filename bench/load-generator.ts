// The load generator: etcd benchmark-tool semantics (conns, clients, total, key and value sizes, key
// space, sequential or random keys, range consistency) on @grpc/grpc-js, optionally spread over worker
// threads so that one JavaScript thread's CPU is not what limits the measured throughput.

import { Worker } from 'node:worker_threads';
import { assert } from '../src/base/assert.js';
import { Histogram } from './histogram.js';
import type { LoadConfig } from './load-config.js';
import { openConns, runPhase, shareFor, waitConnected, type PhaseResult, type PhaseSpec } from './load-engine.js';
import type { FromWorker, ToWorker, WorkerInit } from './load-worker.js';

export interface LoadResult {
  cfg: LoadConfig;
  /** Latency of successful timed requests, in microseconds. */
  histogram: Histogram;
  errors: Record<string, number>;
  errorCount: number;
  elapsedMs: number;
  /** Successful timed requests per second of wall-clock time. */
  opsPerSec: number;
  /** CPU time of this whole process (every thread) during the timed phase, in microseconds. */
  cpuUs: number;
  threads: number;
  /** The busiest load-generator thread's event-loop utilization during the timed phase (0..1). */
  busiestThread: number;
}

interface PhaseRunner {
  run(phase: PhaseSpec): Promise<PhaseResult[]>;
  close(): Promise<void>;
}

const COUNTER_SLOTS = 2;
const WARMUP_SLOT = 0;
const TIMED_SLOT = 1;
/** Above TOTAL_MAX, and far enough below 2^31 that clients' last increments cannot wrap the counter. */
const TOTAL_SENTINEL = 2 ** 30;

async function inThreadRunner(cfg: LoadConfig, counter: Int32Array): Promise<PhaseRunner> {
  const share = shareFor(cfg, 1, 0);
  const conns = openConns(cfg.endpoint, share.connIds.length);
  await waitConnected(conns);
  return {
    run: async (phase) => [await runPhase(conns, { cfg, share, counter, phase })],
    close: async () => {
      for (const c of conns) c.close();
    },
  };
}

function nextMessage(worker: Worker): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: FromWorker): void => {
      cleanup();
      if (msg.type === 'failed') reject(new Error(`load worker failed: ${msg.message}`));
      else resolve(msg);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`load worker exited early with code ${code}`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}

async function workerRunner(cfg: LoadConfig, counters: SharedArrayBuffer, threads: number): Promise<PhaseRunner> {
  const workers: Worker[] = [];
  for (let t = 0; t < threads; t++) {
    const init: WorkerInit = { cfg, share: shareFor(cfg, threads, t), counters };
    workers.push(new Worker(new URL('./load-worker.js', import.meta.url), { workerData: init }));
  }
  try {
    await Promise.all(workers.map(nextMessage));
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw err;
  }
  return {
    run: async (phase) => {
      const done = workers.map(nextMessage);
      for (const w of workers) w.postMessage({ type: 'phase', phase } satisfies ToWorker);
      const msgs = await Promise.all(done);
      return msgs.map((m) => {
        assert(m.type === 'phase-done', `unexpected worker message ${m.type}`);
        return m.result;
      });
    },
    close: async () => {
      for (const w of workers) w.postMessage({ type: 'close' } satisfies ToWorker);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000}s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function combine(cfg: LoadConfig, results: PhaseResult[], cpuUs: number, threads: number): LoadResult {
  const histogram = new Histogram();
  const errors: Record<string, number> = {};
  let startMs = Infinity;
  let endMs = -Infinity;
  let busiestThread = 0;
  for (const r of results) {
    busiestThread = Math.max(busiestThread, r.busy);
    histogram.merge(r.histogram);
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    startMs = Math.min(startMs, r.startMs);
    endMs = Math.max(endMs, r.endMs);
  }
  const elapsedMs = Math.max(endMs - startMs, 1e-3);
  const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
  return { cfg, histogram, errors, errorCount, elapsedMs, opsPerSec: histogram.count / (elapsedMs / 1000), cpuUs, threads, busiestThread };
}

export interface LoadHooks {
  /** Called just before the timed phase starts (after warm-up), e.g. to read the server's CPU time. */
  beforeTimed?: () => void;
  afterTimed?: () => void;
}

/** Runs one workload to completion against cfg.endpoint and returns what it measured. */
export async function runLoad(cfg: LoadConfig, hooks: LoadHooks = {}): Promise<LoadResult> {
  const threads = Math.min(cfg.workers, cfg.conns);
  const counters = new SharedArrayBuffer(COUNTER_SLOTS * Int32Array.BYTES_PER_ELEMENT);
  const counter = new Int32Array(counters);
  const runner = threads === 0 ? await inThreadRunner(cfg, counter) : await workerRunner(cfg, counters, threads);
  const timeoutMs = cfg.timeoutSeconds * 1000;
  try {
    if (cfg.warmup > 0) {
      await withTimeout(runner.run({ total: cfg.warmup, counterSlot: WARMUP_SLOT, record: false }), timeoutMs, 'warm-up');
    }
    hooks.beforeTimed?.();
    const cpuBefore = process.cpuUsage();
    const results = await withTimeout(
      runner.run({ total: cfg.total, counterSlot: TIMED_SLOT, record: true }),
      timeoutMs,
      `${cfg.op} workload`,
    );
    const cpu = process.cpuUsage(cpuBefore);
    hooks.afterTimed?.();
    return combine(cfg, results, cpu.user + cpu.system, Math.max(threads, 1));
  } finally {
    // A timed-out phase must not keep issuing requests while the caller cleans up.
    Atomics.store(counter, WARMUP_SLOT, TOTAL_SENTINEL);
    Atomics.store(counter, TIMED_SLOT, TOTAL_SENTINEL);
    await runner.close();
  }
}
