// Two workloads that the request/response load generator cannot express:
//  - watch fan-out: many watchers on one prefix, spread over several Watch streams and connections, and
//    puts under that prefix at a fixed rate; each value carries the time its put was sent, so every event
//    delivered gives one delivery latency (put send -> event received, commit included);
//  - lease keep-alive: many leases renewed over a few LeaseKeepAlive streams, each with a window of
//    requests in flight; the rate of answers is the throughput.
// Both run their streams on node:http2 directly (grpc-stream.ts) so the client stays cheap per message.

import { performance } from 'node:perf_hooks';
import type { ClientHttp2Session } from 'node:http2';
import { credentials, Metadata } from '@grpc/grpc-js';
import {
  KVClient, LeaseClient, LeaseKeepAliveRequest, LeaseKeepAliveResponse, PutRequest, WatchRequest, WatchResponse,
} from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { connect, GrpcStream } from './grpc-stream.js';
import { Histogram } from './histogram.js';

export const fanoutLimits = {
  watchersMax: 100_000,
  streamsMax: 10_000,
  leasesMax: 1_000_000,
  /** How long to wait for the last events (or answers) after the timed phase before counting the rest lost. */
  drainMs: 10_000,
  createTimeoutMs: 120_000,
  grantConcurrency: 64,
  callDeadlineMs: 30_000,
} as const;

/** What the load generator itself spent: if it is near a full core, it may be what limits the numbers. */
export interface ClientCost {
  cpuUs: number;
  elapsedMs: number;
  /** Event-loop utilization over the timed phase, 0..1. */
  busy: number;
}

function costMeter(): () => ClientCost {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const t0 = performance.now();
  return () => {
    const d = process.cpuUsage(cpu);
    return { cpuUs: d.user + d.system, elapsedMs: performance.now() - t0, busy: performance.eventLoopUtilization(elu).utilization };
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, options: { timeoutMs: number; what: () => string }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what()}`);
    await sleep(20);
  }
}

async function sessions(endpoint: string, count: number): Promise<ClientHttp2Session[]> {
  return Promise.all(Array.from({ length: count }, () => connect(endpoint)));
}

// ------------------------------------------------------------------------------------------ watch fan-out

export interface FanoutConfig {
  endpoint: string;
  watchers: number;
  streams: number;
  conns: number;
  putsPerSec: number;
  seconds: number;
  valSize: number;
  /** Called once every watcher is created, before the first timed put (e.g. to sample RSS). */
  beforeTimed?: () => void;
  afterTimed?: () => void;
}

export interface FanoutResult {
  puts: number;
  expected: number;
  delivered: number;
  /** put send -> event received, microseconds. */
  latency: Histogram;
  eventsPerSec: number;
  createMs: number;
  client: ClientCost;
}

const PREFIX = Buffer.from('fan/');
const PREFIX_END = Buffer.from('fan0');

export async function runWatchFanout(cfg: FanoutConfig): Promise<FanoutResult> {
  if (cfg.watchers > fanoutLimits.watchersMax || cfg.streams > fanoutLimits.streamsMax) throw new Error('fan-out beyond its limits');
  const conns = await sessions(cfg.endpoint, cfg.conns);
  const latency = new Histogram();
  let created = 0;
  let delivered = 0;
  let canceled = '';
  const onMessage = (r: WatchResponse): void => {
    if (r.created) created++;
    if (r.canceled) canceled ||= `a watcher was canceled: ${r.cancelReason}`;
    const now = performance.now();
    for (const e of r.events) {
      const sent = e.kv?.value.readDoubleLE(0) ?? now;
      latency.record(Math.max(0, (now - sent) * 1000));
      delivered++;
    }
  };
  const streams = conns.length === 0 ? [] : Array.from({ length: cfg.streams }, (_, i) => new GrpcStream(conns[i % conns.length]!, {
    path: '/etcdserverpb.Watch/Watch', encoder: WatchRequest, decoder: WatchResponse, onMessage,
  }));
  const kv = new KVClient(cfg.endpoint, credentials.createInsecure());
  try {
    const createStart = performance.now();
    for (let w = 0; w < cfg.watchers; w++) {
      streams[w % streams.length]!.write({ requestUnion: { $case: 'createRequest', value: {
        key: PREFIX, rangeEnd: PREFIX_END, startRevision: 0n, progressNotify: false, filters: [], prevKv: false, watchId: 0n, fragment: false,
      } } });
      if (w % 1000 === 999) await sleep(0);
    }
    await until(() => created >= cfg.watchers || streams.some((s) => s.error !== undefined), {
      timeoutMs: fanoutLimits.createTimeoutMs, what: () => `${cfg.watchers} watchers created (${created} so far)`,
    });
    const broken = streams.find((s) => s.error !== undefined);
    if (broken) throw broken.error;
    const createMs = performance.now() - createStart;
    cfg.beforeTimed?.();
    const meter = costMeter();
    const puts = await putAtRate(kv, cfg);
    if (canceled !== '') throw new Error(canceled);
    const expected = puts * cfg.watchers;
    await until(() => delivered >= expected, { timeoutMs: fanoutLimits.drainMs, what: () => 'the last events' }).catch(() => {});
    const client = meter();
    cfg.afterTimed?.();
    return { puts, expected, delivered, latency, eventsPerSec: delivered / (client.elapsedMs / 1000), createMs, client };
  } finally {
    for (const s of streams) s.close();
    for (const c of conns) c.destroy();
    kv.close();
  }
}

/** Puts at a fixed rate on a schedule (a slow answer does not delay the next put); returns how many. */
async function putAtRate(kv: KVClient, cfg: FanoutConfig): Promise<number> {
  const total = Math.max(1, Math.round(cfg.putsPerSec * cfg.seconds));
  const intervalMs = 1000 / cfg.putsPerSec;
  const start = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const value = Buffer.alloc(Math.max(8, cfg.valSize), 0x61);
    value.writeDoubleLE(performance.now(), 0);
    const req = PutRequest.fromPartial({ key: Buffer.from(`fan/${i % 100}`), value });
    inFlight.push(new Promise((resolve, reject) => {
      kv.put(req, new Metadata(), { deadline: Date.now() + fanoutLimits.callDeadlineMs }, (err) => (err ? reject(err) : resolve()));
    }));
  }
  await Promise.all(inFlight);
  return total;
}

// ----------------------------------------------------------------------------------------- lease keep-alive

export interface KeepAliveConfig {
  endpoint: string;
  leases: number;
  streams: number;
  conns: number;
  /** Requests in flight per stream. */
  window: number;
  seconds: number;
  ttlSeconds: number;
  beforeTimed?: () => void;
  afterTimed?: () => void;
}

export interface KeepAliveResult {
  answered: number;
  /** Answers with TTL 0 (lease not found): must be 0. */
  notFound: number;
  perSec: number;
  /** Request sent -> its answer received, microseconds (in-flight queueing included). */
  latency: Histogram;
  grantMs: number;
  client: ClientCost;
}

export async function runKeepAlive(cfg: KeepAliveConfig): Promise<KeepAliveResult> {
  if (cfg.leases > fanoutLimits.leasesMax || cfg.streams > fanoutLimits.streamsMax) throw new Error('keep-alive beyond its limits');
  const grantStart = performance.now();
  const ids = await grantLeases(cfg);
  const grantMs = performance.now() - grantStart;
  const conns = await sessions(cfg.endpoint, cfg.conns);
  const latency = new Histogram();
  let answered = 0;
  let notFound = 0;
  let timing = false;
  let stopping = false;
  const streams = Array.from({ length: cfg.streams }, (_, s) => {
    const mine = ids.filter((_id, i) => i % cfg.streams === s);
    const sentAt: number[] = [];
    let head = 0;
    let next = 0;
    const send = (): void => {
      sentAt.push(performance.now());
      stream.write({ ID: mine[next++ % mine.length]! });
    };
    const stream: GrpcStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> = new GrpcStream(conns[s % conns.length]!, {
      path: '/etcdserverpb.Lease/LeaseKeepAlive', encoder: LeaseKeepAliveRequest, decoder: LeaseKeepAliveResponse,
      onMessage: (r) => {
        const t0 = sentAt[head++] ?? performance.now();
        if (head > 4096) {
          sentAt.splice(0, head);
          head = 0;
        }
        if (timing) {
          answered++;
          if (r.TTL === 0n) notFound++;
          latency.record(Math.max(0, (performance.now() - t0) * 1000));
        }
        if (!stopping) send();
      },
    });
    return { stream, start: () => { for (let i = 0; i < cfg.window && mine.length > 0; i++) send(); } };
  });
  try {
    for (const s of streams) s.start();
    await sleep(500); // warm-up: connections, JIT
    cfg.beforeTimed?.();
    const meter = costMeter();
    timing = true;
    await sleep(cfg.seconds * 1000);
    timing = false;
    const client = meter();
    cfg.afterTimed?.();
    stopping = true;
    const broken = streams.find((s) => s.stream.error !== undefined);
    if (broken) throw broken.stream.error;
    return { answered, notFound, perSec: answered / (client.elapsedMs / 1000), latency, grantMs, client };
  } finally {
    for (const s of streams) s.stream.close();
    for (const c of conns) c.destroy();
  }
}

async function grantLeases(cfg: KeepAliveConfig): Promise<bigint[]> {
  const lease = new LeaseClient(cfg.endpoint, credentials.createInsecure());
  const ids: bigint[] = [];
  let next = 0;
  try {
    const worker = async (): Promise<void> => {
      while (next < cfg.leases) {
        next++;
        ids.push(await new Promise<bigint>((resolve, reject) => {
          lease.leaseGrant({ TTL: BigInt(cfg.ttlSeconds), ID: 0n }, new Metadata(), { deadline: Date.now() + fanoutLimits.callDeadlineMs },
            (err, res) => (err ? reject(err) : resolve(res.ID)));
        }));
      }
    };
    await Promise.all(Array.from({ length: fanoutLimits.grantConcurrency }, worker));
  } finally {
    lease.close();
  }
  return ids;
}
