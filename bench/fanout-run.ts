// The watch fan-out and lease keep-alive rows of `npm run bench` (workloads watch1k, watch10k, keepalive):
// each runs on a fresh server per target, with the server's RSS sampled and its CPU read around the timed
// phase, and lands in a table of its own (its numbers are events or answers per second, not requests).

import { runKeepAlive, runWatchFanout } from './fanout.js';
import type { Histogram } from './histogram.js';
import { readCpuUs, readMemory, RssSampler } from './proc-stats.js';
import { markdownTable, ratio, TARGETS, type Target } from './report.js';
import { msText } from './summary.js';
import type { ExtraWorkloadName, RunFlags } from './workloads.js';


export interface ExtraMeasure {
  /** Events delivered per second (watch) or keep-alive answers per second. */
  perSec: number;
  /** Events never delivered, or keep-alives answered "lease not found": 0 when all is well. */
  missing: number;
  p50Us: number;
  p99Us: number;
  peakRssBytes: number;
  /** RSS once every watcher exists (or every lease is granted), before the timed phase. */
  readyRssBytes: number;
  serverCpuUsPerOp: number;
  loadgenBusyPct: number;
  note: string;
}

export interface ExtraRow {
  workload: ExtraWorkloadName;
  title: string;
  results: Partial<Record<Target, ExtraMeasure>>;
}

export function extraTitle(name: ExtraWorkloadName, flags: RunFlags): string {
  if (name === 'keepalive' || name === 'keepalive-follower') {
    return `lease keep-alive${name === 'keepalive' ? '' : ' through a follower of 3'}: ${flags['keepalive-leases']} leases, ` +
      `${flags['keepalive-streams']} streams x ${flags['keepalive-window']} in flight`;
  }
  const watchers = name === 'watch1k' ? 1_000 : 10_000;
  return `watch fan-out: ${watchers} watchers/${flags['watch-streams']} streams/${flags['watch-conns']} conns, ${putsPerSec(watchers, flags)} puts/s`;
}

function putsPerSec(watchers: number, flags: RunFlags): number {
  return Math.max(0.1, flags['watch-events-per-sec'] / watchers);
}

/** Where a workload sends its load (`pid`: that server's, for RSS) and whose CPU counts (every member's). */
export interface ExtraTarget {
  endpoint: string;
  pid: number;
  cpuPids: readonly number[];
}

/** Runs one extra workload against a running server (or a cluster's member). */
export async function measureExtra(name: ExtraWorkloadName, server: ExtraTarget, flags: RunFlags): Promise<ExtraMeasure> {
  const sampler = new RssSampler(server.pid);
  sampler.start(flags['sample-ms']);
  let readyRss = 0;
  let cpuBefore = 0;
  let cpuAfter = 0;
  const cpu = (): number => server.cpuPids.reduce((sum, pid) => sum + readCpuUs(pid), 0);
  const hooks = {
    beforeTimed: () => {
      readyRss = readMemory(server.pid).rssBytes;
      cpuBefore = cpu();
    },
    afterTimed: () => void (cpuAfter = cpu()),
  };
  try {
    if (name === 'keepalive' || name === 'keepalive-follower') {
      const r = await runKeepAlive({
        endpoint: server.endpoint, leases: flags['keepalive-leases'], streams: flags['keepalive-streams'], conns: flags['keepalive-conns'],
        window: flags['keepalive-window'], seconds: flags['keepalive-seconds'], ttlSeconds: 3600, ...hooks,
      });
      return measureOf({ perSec: r.perSec, count: r.answered, missing: r.notFound, latency: r.latency, busy: r.client.busy,
        cpuUs: cpuAfter - cpuBefore, peak: sampler, readyRss, note: `granting took ${(r.grantMs / 1000).toFixed(1)} s` });
    }
    const watchers = name === 'watch1k' ? 1_000 : 10_000;
    const r = await runWatchFanout({
      endpoint: server.endpoint, watchers, streams: flags['watch-streams'], conns: flags['watch-conns'],
      putsPerSec: putsPerSec(watchers, flags), seconds: flags['watch-seconds'], valSize: 64, ...hooks,
    });
    return measureOf({ perSec: r.eventsPerSec, count: r.delivered, missing: r.expected - r.delivered, latency: r.latency, busy: r.client.busy,
      cpuUs: cpuAfter - cpuBefore, peak: sampler, readyRss, note: `creating the watchers took ${(r.createMs / 1000).toFixed(1)} s` });
  } finally {
    sampler.stop();
  }
}

function measureOf(m: { perSec: number; count: number; missing: number; latency: Histogram; busy: number; cpuUs: number;
  peak: RssSampler; readyRss: number; note: string }): ExtraMeasure {
  return {
    perSec: m.perSec, missing: m.missing, p50Us: m.latency.percentile(50), p99Us: m.latency.percentile(99),
    peakRssBytes: m.peak.peakBytes, readyRssBytes: m.readyRss, serverCpuUsPerOp: m.count > 0 ? m.cpuUs / m.count : NaN,
    loadgenBusyPct: m.busy * 100, note: m.note,
  };
}

export function progressText(target: Target, name: ExtraWorkloadName, m: ExtraMeasure): string {
  return `[${target}] ${name}: ${Math.round(m.perSec)}/s (${m.missing} missing), p50 ${msText(m.p50Us)} ms, p99 ${msText(m.p99Us)} ms, ` +
    `server ${m.serverCpuUsPerOp.toFixed(1)} us/op, RSS ready ${(m.readyRssBytes / 2 ** 20).toFixed(0)} MB peak ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MB, ` +
    `loadgen ${m.loadgenBusyPct.toFixed(0)}% busy; ${m.note}`;
}

const mb = (b: number | undefined): string => (b === undefined || !Number.isFinite(b) ? '-' : (b / 2 ** 20).toFixed(0));

export function extrasTable(rows: readonly ExtraRow[]): string {
  const header = ['workload', 'etcd /s', 'ours /s', 'ours/etcd', 'etcd p50 ms', 'ours p50 ms', 'etcd p99 ms', 'ours p99 ms',
    'etcd RSS MB (ready/peak)', 'ours RSS MB (ready/peak)', 'etcd CPU us/op', 'ours CPU us/op', 'loadgen busy %'];
  const body = rows.map((r) => {
    const e = r.results.etcd;
    const o = r.results.ours;
    const rate = (m: ExtraMeasure | undefined): string => (m === undefined ? '-' : `${Math.round(m.perSec).toLocaleString('en-US')}${m.missing > 0 ? ` (${m.missing} missing)` : ''}`);
    const rss = (m: ExtraMeasure | undefined): string => (m === undefined ? '-' : `${mb(m.readyRssBytes)}/${mb(m.peakRssBytes)}`);
    const cpu = (m: ExtraMeasure | undefined): string => (m === undefined ? '-' : m.serverCpuUsPerOp.toFixed(1));
    return [r.title, rate(e), rate(o), ratio(o?.perSec, e?.perSec), msText(e?.p50Us ?? NaN), msText(o?.p50Us ?? NaN),
      msText(e?.p99Us ?? NaN), msText(o?.p99Us ?? NaN), rss(e), rss(o), cpu(e), cpu(o),
      TARGETS.map((t) => r.results[t]?.loadgenBusyPct.toFixed(0) ?? '-').join(' / ')];
  });
  return markdownTable(header, body);
}
