// The defrag workload (`npm run bench -- --only defrag --defrag-mb 1024`): put latency while the backend
// of a large database is defragmented. Per server: load --defrag-mb of 128 KiB values, delete every other
// key and compact (so half the file is free pages and half is live data to copy), then run small puts
// from several clients, measure a baseline, call Defragment, and keep the puts going until it returns.
// etcd's defrag blocks the member for its whole duration; etcd-ts copies in the background and holds
// commits only for a short final step.

import { credentials, Metadata } from '@grpc/grpc-js';
import {
  CompactionRequest, DefragmentRequest, DeleteRangeRequest, KVClient, MaintenanceClient, PutRequest, StatusRequest,
  type StatusResponse,
} from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Histogram } from './histogram.js';
import type { RunningServer } from './server-process.js';

export const defragBenchLimits = {
  valueBytes: 128 * 1024,
  /** Loading puts in flight at once. */
  loadInFlight: 8,
  /** Clients putting small values during the measurement. */
  putClients: 8,
  putValueBytes: 256,
  baselineMs: 2_000,
  /** After the defrag returns, puts continue this long so that the tail is seen. */
  trailingMs: 200,
  rpcDeadlineMs: 600_000,
};

export interface DefragMeasure {
  dbBytesBefore: number;
  dbBytesAfter: number;
  defragMs: number;
  baselineP99Us: number;
  /** Puts that completed while the defrag ran (etcd: usually only those already applied before it). */
  putsDuring: number;
  /** Puts overlapping the defrag that failed (timed out). */
  failedDuring: number;
  p50DuringUs: number;
  p99DuringUs: number;
  maxDuringUs: number;
}

class Clients {
  readonly kv: KVClient;
  readonly maintenance: MaintenanceClient;
  constructor(endpoint: string) {
    this.kv = new KVClient(endpoint, credentials.createInsecure());
    this.maintenance = new MaintenanceClient(endpoint, credentials.createInsecure(), { channelOverride: this.kv.getChannel() });
  }
  put(key: string, value: Buffer): Promise<unknown> {
    return new Promise((resolve, reject) => void this.kv.put(PutRequest.fromPartial({ key: Buffer.from(key), value }), (e, r) => (e ? reject(e) : resolve(r))));
  }
  deleteKey(key: string): Promise<unknown> {
    return new Promise((resolve, reject) => void this.kv.deleteRange(DeleteRangeRequest.fromPartial({ key: Buffer.from(key) }), (e, r) => (e ? reject(e) : resolve(r))));
  }
  compact(revision: bigint): Promise<unknown> {
    return new Promise((resolve, reject) => void this.kv.compact(CompactionRequest.fromPartial({ revision, physical: true }), (e, r) => (e ? reject(e) : resolve(r))));
  }
  status(): Promise<StatusResponse> {
    return new Promise((resolve, reject) => void this.maintenance.status(StatusRequest.fromPartial({}), (e, r) => (e ? reject(e) : resolve(r))));
  }
  defragment(): Promise<unknown> {
    return new Promise((resolve, reject) => void this.maintenance.defragment(DefragmentRequest.fromPartial({}), new Metadata(),
      { deadline: Date.now() + defragBenchLimits.rpcDeadlineMs }, (e, r) => (e ? reject(e) : resolve(r))));
  }
  close(): void {
    this.kv.close();
  }
}

/** Loads `mb` MiB of values, deletes every other key and compacts at the head, physically. */
async function prepare(c: Clients, mb: number, log: (line: string) => void): Promise<void> {
  const keys = Math.ceil((mb * 1024 * 1024) / defragBenchLimits.valueBytes);
  const value = Buffer.alloc(defragBenchLimits.valueBytes, 7);
  const name = (i: number): string => `defrag/${String(i).padStart(7, '0')}`;
  let next = 0;
  const loader = async (): Promise<void> => {
    for (let i = next++; i < keys; i = next++) await c.put(name(i), value);
  };
  await Promise.all(Array.from({ length: defragBenchLimits.loadInFlight }, loader));
  next = 0;
  const deleter = async (): Promise<void> => {
    for (let i = next++; i < keys; i = next++) if (i % 2 === 1) await c.deleteKey(name(i));
  };
  await Promise.all(Array.from({ length: defragBenchLimits.loadInFlight }, deleter));
  const head = (await c.status()).header?.revision ?? 1n;
  await c.compact(head);
  log(`loaded ${keys} keys of ${defragBenchLimits.valueBytes} B, deleted half, compacted at ${head}`);
}

interface PutSample {
  endMs: number;
  us: number;
  failed: boolean;
}

/**
 * Small puts, back to back from several clients, each latency kept with its completion time. A failed put
 * (etcd times a request out after 7 s while its defrag blocks apply) counts with the time it took.
 */
function putLoad(c: Clients): { stop(): Promise<PutSample[]> } {
  const done: PutSample[] = [];
  const value = Buffer.alloc(defragBenchLimits.putValueBytes, 1);
  let running = true;
  let seq = 0;
  const client = async (): Promise<void> => {
    while (running) {
      const start = performance.now();
      const failed = await c.put(`load/${seq++ % 10_000}`, value).then(() => false, () => true);
      const end = performance.now();
      done.push({ endMs: end, us: Math.max(1, Math.round((end - start) * 1000)), failed });
    }
  };
  const loops = Array.from({ length: defragBenchLimits.putClients }, client);
  return { stop: async () => { running = false; await Promise.all(loops); return done; } };
}

function histogramOf(samples: ReadonlyArray<{ us: number }>): Histogram {
  const h = new Histogram();
  for (const s of samples) h.record(s.us);
  return h;
}

export async function measureDefrag(server: RunningServer, opts: { mb: number; log: (line: string) => void }): Promise<DefragMeasure> {
  const c = new Clients(server.endpoint);
  try {
    await prepare(c, opts.mb, opts.log);
    const dbBytesBefore = Number((await c.status()).dbSize);
    const load = putLoad(c);
    const baselineFrom = performance.now();
    await new Promise((resolve) => setTimeout(resolve, defragBenchLimits.baselineMs));
    const from = performance.now();
    await c.defragment();
    const to = performance.now();
    await new Promise((resolve) => setTimeout(resolve, defragBenchLimits.trailingMs));
    const samples = await load.stop();
    const baseline = histogramOf(samples.filter((s) => s.endMs >= baselineFrom && s.endMs < from));
    // A put overlaps the defrag if it ended after it started and began before it ended.
    const overlapping = samples.filter((s) => s.endMs >= from && s.endMs - s.us / 1000 <= to);
    const during = histogramOf(overlapping);
    const dbBytesAfter = Number((await c.status()).dbSize);
    return {
      dbBytesBefore, dbBytesAfter, defragMs: to - from, baselineP99Us: baseline.percentile(99),
      putsDuring: samples.filter((s) => s.endMs >= from && s.endMs <= to && !s.failed).length,
      failedDuring: overlapping.filter((s) => s.failed).length,
      p50DuringUs: during.percentile(50), p99DuringUs: during.percentile(99), maxDuringUs: during.max,
    };
  } finally {
    c.close();
  }
}

const ms = (us: number): string => (us / 1000).toFixed(1);
const mib = (b: number): string => (b / 2 ** 20).toFixed(0);

/** The defrag table: one row per server and a ratio row (ours / etcd; below 1 is better for latency). */
export function defragTable(results: Partial<Record<'etcd' | 'ours', DefragMeasure>>, mb: number): string {
  const rows = ['| server | db MiB before -> after | defrag ms | puts completed during | failed | put p50 / p99 / max during (ms) | put p99 before (ms) |', '|---|---|---|---|---|---|---|'];
  for (const t of ['etcd', 'ours'] as const) {
    const m = results[t];
    if (m === undefined) continue;
    rows.push(`| ${t} | ${mib(m.dbBytesBefore)} -> ${mib(m.dbBytesAfter)} | ${m.defragMs.toFixed(0)} | ${m.putsDuring} | ${m.failedDuring} | ${ms(m.p50DuringUs)} / ${ms(m.p99DuringUs)} / ${ms(m.maxDuringUs)} | ${ms(m.baselineP99Us)} |`);
  }
  const e = results.etcd;
  const o = results.ours;
  if (e && o) {
    rows.push(`| ours/etcd | | ${(o.defragMs / e.defragMs).toFixed(2)} | ${e.putsDuring > 0 ? (o.putsDuring / e.putsDuring).toFixed(1) : `${o.putsDuring} vs 0`} | | ` +
      `${(o.p50DuringUs / e.p50DuringUs).toFixed(2)} / ${(o.p99DuringUs / e.p99DuringUs).toFixed(2)} / ${(o.maxDuringUs / e.maxDuringUs).toFixed(2)} | ${(o.baselineP99Us / e.baselineP99Us).toFixed(2)} |`);
  }
  return [`Defrag workload (${mb} MiB loaded, half deleted and compacted, ${defragBenchLimits.putClients} clients putting ${defragBenchLimits.putValueBytes} B values throughout):`, '', ...rows].join('\n');
}

const defragStart = '<!-- bench:defrag:start (written by npm run bench -- --only defrag --write-readme) -->';
const defragEnd = '<!-- bench:defrag:end -->';

/** Puts the defrag section between its own markers in the README (appended when they are missing). */
export function replaceDefragResults(readme: string, section: string): string {
  const start = readme.indexOf(defragStart);
  const end = readme.indexOf(defragEnd);
  const block = `${defragStart}\n${section.trim()}\n${defragEnd}`;
  if (start === -1 || end === -1 || end < start) return `${readme.trimEnd()}\n\n${block}\n`;
  return readme.slice(0, start) + block + readme.slice(end + defragEnd.length);
}
