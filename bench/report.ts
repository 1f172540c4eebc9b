// Turns measurements into the comparison tables (Markdown, which also reads fine in a terminal) and
// writes them into bench/README.md between markers, leaving the rest of that file to its other authors.

import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { msText } from './summary.js';
import type { MemoryStatus } from './proc-stats.js';

export type Target = 'etcd' | 'ours';
export const TARGETS: readonly Target[] = ['etcd', 'ours'];

/** One workload measured against one server. */
export interface Measure {
  opsPerSec: number;
  okCount: number;
  errorCount: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
  /** Highest RSS sampled while the workload ran. */
  peakRssBytes: number;
  /** Server CPU time per successful request during the timed phase. */
  serverCpuUsPerOp: number;
  /** Load-generator (whole process) CPU time per successful request. */
  loadgenCpuUsPerOp: number;
  /** Load-generator CPU as a share of one core over the timed phase, in percent. */
  loadgenCpuPct: number;
  /** Event-loop utilization of the busiest load-generator thread, in percent. */
  loadgenBusyPct: number;
  /** Only for the memory workload. */
  memory?: { afterLoad: MemoryStatus; settled: MemoryStatus; settledAfterSeconds: number };
}

export interface Row {
  workload: string;
  title: string;
  results: Partial<Record<Target, Measure>>;
}

const MB = 1024 * 1024;

function mb(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : (bytes / MB).toFixed(0);
}

function ops(m: Measure | undefined): string {
  if (m === undefined) return '-';
  const text = Math.round(m.opsPerSec).toLocaleString('en-US');
  return m.errorCount > 0 ? `${text} (${m.errorCount} err)` : text;
}

/** ours / etcd to two decimals, or '-' when either side is missing. */
export function ratio(ours: number | undefined, etcd: number | undefined): string {
  if (ours === undefined || etcd === undefined || !Number.isFinite(ours) || !Number.isFinite(etcd) || etcd === 0) return '-';
  return (ours / etcd).toFixed(2);
}

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The main table: throughput, latency and RSS of both servers, one row per workload. */
export function mainTable(rows: readonly Row[]): string {
  const header = ['workload', 'etcd ops/s', 'ours ops/s', 'ours/etcd', 'etcd p50 ms', 'ours p50 ms', 'etcd p99 ms', 'ours p99 ms', 'etcd RSS MB', 'ours RSS MB'];
  const body = rows.map((r) => {
    const e = r.results.etcd;
    const o = r.results.ours;
    // The memory row reports RSS once settled; the others the peak sampled during the run.
    const rss = (m: Measure | undefined): string => mb(m?.memory ? m.memory.settled.rssBytes : m?.peakRssBytes);
    return [r.title, ops(e), ops(o), ratio(o?.opsPerSec, e?.opsPerSec), msText(e?.p50Us ?? NaN), msText(o?.p50Us ?? NaN),
      msText(e?.p99Us ?? NaN), msText(o?.p99Us ?? NaN), rss(e), rss(o)];
  });
  return markdownTable(header, body);
}

/** CPU per request: the server's (the figure least disturbed by a shared machine) and the load generator's. */
export function cpuTable(rows: readonly Row[]): string {
  const header = ['workload', 'etcd CPU us/op', 'ours CPU us/op', 'ours/etcd', 'loadgen us/op', 'loadgen % of a core', 'loadgen thread busy %'];
  const body = rows.map((r) => {
    const e = r.results.etcd;
    const o = r.results.ours;
    const any = e ?? o;
    const lg = (f: (m: Measure) => number): string => TARGETS.map((t) => r.results[t]).map((m) => (m ? f(m).toFixed(0) : '-')).join(' / ');
    return [r.title, e ? e.serverCpuUsPerOp.toFixed(0) : '-', o ? o.serverCpuUsPerOp.toFixed(0) : '-',
      ratio(o?.serverCpuUsPerOp, e?.serverCpuUsPerOp), any ? lg((m) => m.loadgenCpuUsPerOp) : '-', any ? lg((m) => m.loadgenCpuPct) : '-',
      any ? lg((m) => m.loadgenBusyPct) : '-'];
  });
  return markdownTable(header, body);
}

export function memoryTable(rows: readonly Row[]): string | undefined {
  const body: string[][] = [];
  for (const r of rows) {
    for (const t of TARGETS) {
      const m = r.results[t]?.memory;
      if (m === undefined) continue;
      body.push([t, mb(m.afterLoad.rssBytes), mb(m.afterLoad.anonBytes), mb(m.afterLoad.fileBytes), mb(m.settled.rssBytes),
        mb(m.settled.anonBytes), mb(m.settled.fileBytes), mb(m.settled.hwmBytes), m.settledAfterSeconds.toFixed(0)]);
    }
  }
  if (body.length === 0) return undefined;
  const header = ['server', 'RSS after load MB', 'anon', 'file', 'RSS settled MB', 'anon', 'file', 'peak (VmHWM) MB', 'settled after s'];
  return markdownTable(header, body);
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]?.trim() ?? '?';
  } catch {
    return '?';
  }
}

export function machineFacts(opts: { etcdBin: string; oursBin: string; repoRoot: string }): string[] {
  const cpu = cpus();
  return [
    `date: ${new Date().toISOString()}`,
    `machine: ${cpu.length} x ${cpu[0]?.model ?? '?'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${release()}`,
    `node ${process.version}; etcd: ${firstLine(opts.etcdBin, ['--version'])} (${opts.etcdBin}); ours: ${opts.oursBin}`,
    `commit: ${firstLine('git', ['-C', opts.repoRoot, 'rev-parse', '--short', 'HEAD'])}`,
    `load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  ];
}

export const README_START = '<!-- bench:results:start (written by npm run bench -- --write-readme) -->';
export const README_END = '<!-- bench:results:end -->';

/** Replaces the text between the markers, or appends a marked section when the file has none. */
export function replaceResults(readme: string, section: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  const block = `${README_START}\n${section.trim()}\n${README_END}`;
  if (start === -1 || end === -1 || end < start) {
    return `${readme.trimEnd()}${readme.trim() === '' ? '' : '\n\n'}${block}\n`;
  }
  return readme.slice(0, start) + block + readme.slice(end + README_END.length);
}
