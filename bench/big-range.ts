// The big-range workload (issue 7): load N keys with values of V bytes (batched txns, several in flight),
// then one Range over all of them read by a client that drops the data as it arrives (big-range-client.ts),
// while the server's RSS is sampled from /proc. Run for real etcd and ours by `npm run bench -- --only bigrange`.

import { credentials } from '@grpc/grpc-js';
import { KVClient, RangeRequest, TxnRequest, type TxnResponse } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { bigRange } from './big-range-client.js';
import { readMemory, type MemoryStatus } from './proc-stats.js';
import type { RunningServer } from './server-process.js';

export interface BigRangeConfig {
  keys: number;
  valSize: number;
  /** Puts per txn while loading (etcd refuses more than --max-txn-ops, 128 by default). */
  batch: number;
  /** Txns in flight while loading. */
  inflight: number;
  sampleMs: number;
}

export interface BigRangeMeasure {
  loadSeconds: number;
  rangeSeconds: number;
  /** The Range response's length (the gRPC message). */
  responseBytes: number;
  kvs: number;
  status: number;
  /** Before the range, and the highest seen while it was served. */
  before: MemoryStatus;
  peakRssBytes: number;
  peakAnonBytes: number;
  /** VmHWM at the end: the process's lifetime peak (loading included). */
  hwmBytes: number;
}

const prefix = 'bigrange/';
const prefixEnd = 'bigrange0';

function keyOf(i: number): Buffer {
  return Buffer.from(`${prefix}${String(i).padStart(10, '0')}`);
}

function txn(kv: KVClient, req: TxnRequest): Promise<TxnResponse> {
  return new Promise((resolve, reject) => void kv.txn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

async function load(endpoint: string, cfg: BigRangeConfig, progress: (line: string) => void): Promise<void> {
  const kv = new KVClient(endpoint, credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  const value = Buffer.alloc(cfg.valSize);
  for (let i = 0; i < value.length; i++) value[i] = (i * 131 + 7) & 0xff;
  let next = 0;
  let lastReport = Date.now();
  const worker = async (): Promise<void> => {
    while (next < cfg.keys) {
      const from = next;
      next = Math.min(cfg.keys, from + cfg.batch);
      const success = [];
      for (let i = from; i < next; i++) success.push({ request: { $case: 'requestPut' as const, value: { key: keyOf(i), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } });
      await txn(kv, TxnRequest.fromPartial({ success }));
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        progress(`loaded ${next} of ${cfg.keys} keys`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: cfg.inflight }, worker));
  } finally {
    kv.close();
  }
}

/** Loads, then serves one range over everything while sampling the server's memory. */
export async function runBigRange(server: RunningServer, cfg: BigRangeConfig, progress: (line: string) => void): Promise<BigRangeMeasure> {
  const loadStart = performance.now();
  await load(server.endpoint, cfg, progress);
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const before = readMemory(server.pid);
  let peakRssBytes = before.rssBytes;
  let peakAnonBytes = before.anonBytes;
  const sample = (): void => {
    try {
      const m = readMemory(server.pid);
      peakRssBytes = Math.max(peakRssBytes, m.rssBytes);
      peakAnonBytes = Math.max(peakAnonBytes, m.anonBytes);
    } catch {
      // The server is gone; the range call reports the failure.
    }
  };
  const timer = setInterval(sample, cfg.sampleMs);
  try {
    const req = RangeRequest.fromPartial({ key: Buffer.from(prefix), rangeEnd: Buffer.from(prefixEnd) });
    const res = await bigRange(server.endpoint, req);
    sample();
    if (res.status !== 0) throw new Error(`big range failed: status ${res.status} ${res.message}`);
    if (res.kvs !== cfg.keys || res.count !== BigInt(cfg.keys)) throw new Error(`big range returned ${res.kvs} kvs, count ${res.count}, expected ${cfg.keys}`);
    return {
      loadSeconds, rangeSeconds: res.elapsedMs / 1000, responseBytes: res.messageBytes, kvs: res.kvs, status: res.status,
      before, peakRssBytes, peakAnonBytes, hwmBytes: readMemory(server.pid).hwmBytes,
    };
  } finally {
    clearInterval(timer);
  }
}

const mib = (n: number): string => (n / 2 ** 20).toFixed(0);

/** One line per server: load time, range time, response size, RSS before and peak while serving. */
export function bigRangeTable(results: ReadonlyArray<[string, BigRangeMeasure]>): string {
  const lines = [
    '| server | load s | range s | response MiB | RSS before MiB | peak RSS in range MiB | anon RSS before / peak MiB | VmHWM MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [who, m] of results) {
    lines.push(`| ${who} | ${m.loadSeconds.toFixed(1)} | ${m.rangeSeconds.toFixed(1)} | ${mib(m.responseBytes)} | ${mib(m.before.rssBytes)} | ` +
      `${mib(m.peakRssBytes)} | ${mib(m.before.anonBytes)} / ${mib(m.peakAnonBytes)} | ${mib(m.hwmBytes)} |`);
  }
  return lines.join('\n');
}
