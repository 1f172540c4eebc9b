// `npm run bench`: starts real etcd and etcd-ts one at a time with the same flags, runs the same workloads
// against each with our load generator, samples each server's RSS and CPU, and prints one comparison.
// Both servers and the load generator share this machine's cores, so only ratios within a run count.

import { accessSync, constants, readFileSync, realpathSync, writeFileSync, existsSync } from 'node:fs';
import { credentials } from '@grpc/grpc-js';
import { KVClient, RangeRequest, type RangeResponse } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { runLoad, type LoadResult } from './load-generator.js';
import type { LoadConfig } from './load-config.js';
import { parseFlags, usage, UsageError } from './options.js';
import { readCpuUs, readMemory, RssSampler, type MemoryStatus } from './proc-stats.js';
import { cpuTable, machineFacts, mainTable, memoryTable, replaceResults, TARGETS, type Measure, type Row, type Target } from './report.js';
import { startServer, type RunningServer } from './server-process.js';
import { enableBenchAuth } from './auth-setup.js';
import { defragTable, measureDefrag, replaceDefragResults, type DefragMeasure } from './defrag-bench.js';
import { startCluster } from './cluster-process.js';
import { extrasTable, extraTitle, measureExtra, progressText, type ExtraMeasure, type ExtraRow } from './fanout-run.js';
import {
  commandLine, EXTRA_WORKLOAD_NAMES, preloadConfig, REPO_ROOT, RUN_FLAGS, WORKLOAD_NAMES, workloadFor,
  type ExtraWorkloadName, type RunFlags, type WorkloadName,
} from './workloads.js';
import { bigRangeTable, runBigRange, type BigRangeMeasure } from './big-range.js';

const SETTLE_POLL_MS = 500;
const SETTLE_WINDOW_SAMPLES = 6;
const SETTLE_TOLERANCE = 0.01;
/** Past this event-loop utilization a load-generator thread, not the server, may be what limits a run. */
const LOADGEN_BUSY_SHARE = 0.9;
/** A busy thread that got less CPU than this share of a core was waiting for a core, not working. */
const STARVED_SHARE = 0.75;

/** Warning text -> the runs it applies to ("etcd put100"), so a busy machine yields one line, not twenty. */
const warnings = new Map<string, string[]>();
function warn(text: string, where: string): void {
  warnings.set(text, [...(warnings.get(text) ?? []), where]);
}
const log = (line: string): void => void process.stderr.write(`${line}\n`);

function measureOf(result: LoadResult, server: { where: string; cpuUs: number; peakRssBytes: number }): Measure {
  const where = server.where;
  const ok = result.histogram.count;
  const loadgenCpuPct = (result.cpuUs / 1000 / result.elapsedMs) * 100;
  if (result.busiestThread > LOADGEN_BUSY_SHARE) {
    const starved = loadgenCpuPct / result.threads < 100 * STARVED_SHARE;
    warn(starved
      ? `the machine is oversubscribed: a load-generator thread was over ${LOADGEN_BUSY_SHARE * 100}% busy but got under ${STARVED_SHARE * 100}% of a core`
      : `a load-generator thread was over ${LOADGEN_BUSY_SHARE * 100}% busy on a full core: it may be what limits throughput (try --workers)`, where);
  }
  for (const [what, n] of Object.entries(result.errors)) warn(`failed requests: ${what}`, `${where} (${n})`);
  return {
    opsPerSec: result.opsPerSec,
    okCount: ok,
    errorCount: result.errorCount,
    p50Us: result.histogram.percentile(50),
    p99Us: result.histogram.percentile(99),
    maxUs: result.histogram.max,
    peakRssBytes: server.peakRssBytes,
    serverCpuUsPerOp: ok > 0 ? server.cpuUs / ok : NaN,
    loadgenCpuUsPerOp: ok > 0 ? result.cpuUs / ok : NaN,
    loadgenCpuPct,
    loadgenBusyPct: result.busiestThread * 100,
  };
}

async function measure(server: RunningServer, cfg: LoadConfig, opts: { sampleMs: number; where: string }): Promise<Measure> {
  const sampler = new RssSampler(server.pid);
  sampler.start(opts.sampleMs);
  let cpuBefore = 0;
  let cpuAfter = 0;
  let result: LoadResult;
  try {
    result = await runLoad(cfg, {
      beforeTimed: () => void (cpuBefore = readCpuUs(server.pid)),
      afterTimed: () => void (cpuAfter = readCpuUs(server.pid)),
    });
  } finally {
    sampler.stop();
  }
  return measureOf(result, { where: opts.where, cpuUs: cpuAfter - cpuBefore, peakRssBytes: sampler.peakBytes });
}

function progress(target: Target, name: string, m: Measure): void {
  log(`[${target}] ${name}: ${Math.round(m.opsPerSec)} ops/s, p50 ${(m.p50Us / 1000).toFixed(2)} ms, ` +
    `p99 ${(m.p99Us / 1000).toFixed(2)} ms, server ${m.serverCpuUsPerOp.toFixed(0)} us/op, ` +
    `loadgen ${m.loadgenCpuUsPerOp.toFixed(0)} us/op (${m.loadgenCpuPct.toFixed(0)}% of a core, thread ${m.loadgenBusyPct.toFixed(0)}% busy), peak RSS ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MB`);
}

async function preload(flags: RunFlags, server: RunningServer, keys: number): Promise<void> {
  const result = await runLoad(preloadConfig(flags, server.endpoint, keys));
  if (result.errorCount > 0) throw new Error(`preloading ${keys} keys failed: ${JSON.stringify(result.errors)}`);
}

async function runThroughput(target: Target, flags: RunFlags, names: WorkloadName[]): Promise<Map<WorkloadName, Measure>> {
  const out = new Map<WorkloadName, Measure>();
  const server = await start(target, flags, '');
  try {
    let preloaded = 0;
    let authOn = false;
    // Workloads that enable auth run last: the others must not pay for it.
    const ordered = [...names].sort((x, y) => Number(workloadFor(x, flags).needsAuth ?? false) - Number(workloadFor(y, flags).needsAuth ?? false));
    for (const name of ordered) {
      const w = workloadFor(name, flags);
      if (w.needsAuth && !authOn) {
        await enableBenchAuth(server.endpoint);
        authOn = true;
      }
      if (w.preloadKeys > preloaded) {
        await preload(flags, server, w.preloadKeys);
        preloaded = w.preloadKeys;
      }
      const m = await measure(server, w.load(server.endpoint), { sampleMs: flags['sample-ms'], where: `${target} ${name}` });
      progress(target, name, m);
      out.set(name, m);
    }
  } finally {
    await server.stop();
  }
  return out;
}

function unary<Req, Res>(call: (req: Req, cb: (err: Error | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => void call(req, (err, res) => (err ? reject(err) : resolve(res))));
}

/** Compacts at the head revision, then waits (up to a deadline) until RSS stops moving. */
async function settle(server: RunningServer, seconds: number): Promise<{ status: MemoryStatus; seconds: number }> {
  const kv = new KVClient(server.endpoint, credentials.createInsecure());
  try {
    const head: RangeResponse = await unary(kv.range.bind(kv), RangeRequest.fromPartial({ key: Buffer.from('k') }));
    await unary(kv.compact.bind(kv), { revision: head.header?.revision ?? 1n, physical: true });
  } finally {
    kv.close();
  }
  const started = Date.now();
  const deadline = started + seconds * 1000;
  const window: number[] = [];
  let status = readMemory(server.pid);
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    status = readMemory(server.pid);
    window.push(status.rssBytes);
    if (window.length > SETTLE_WINDOW_SAMPLES) window.shift();
    if (window.length === SETTLE_WINDOW_SAMPLES && Math.max(...window) - Math.min(...window) <= SETTLE_TOLERANCE * Math.max(...window)) break;
  }
  return { status, seconds: (Date.now() - started) / 1000 };
}

async function runMemory(target: Target, flags: RunFlags): Promise<Measure> {
  const server = await start(target, flags, ' (memory workload)');
  try {
    const m = await measure(server, workloadFor('mem', flags).load(server.endpoint), { sampleMs: flags['sample-ms'], where: `${target} mem` });
    const afterLoad = readMemory(server.pid);
    const settled = await settle(server, flags['settle-seconds']);
    m.memory = { afterLoad, settled: settled.status, settledAfterSeconds: settled.seconds };
    progress(target, 'mem', m);
    log(`[${target}] mem: RSS after load ${(afterLoad.rssBytes / 2 ** 20).toFixed(0)} MB, settled ${(settled.status.rssBytes / 2 ** 20).toFixed(0)} MB after ${settled.seconds.toFixed(0)} s`);
    return m;
  } finally {
    await server.stop();
  }
}

/** The defrag workload (bench/defrag-bench.ts): one fresh server per target. */
async function runDefrag(flags: RunFlags, targets: Target[], facts: string[], argv: string[]): Promise<string> {
  const results: Partial<Record<Target, DefragMeasure>> = {};
  for (const t of targets) {
    const server = await start(t, flags, ' (defrag workload)');
    try {
      const m = await measureDefrag(server, { mb: flags['defrag-mb'], log: (line) => log(`[${t}] defrag: ${line}`) });
      log(`[${t}] defrag: ${m.defragMs.toFixed(0)} ms, ${m.putsDuring} puts during, p99 during ${(m.p99DuringUs / 1000).toFixed(1)} ms`);
      results[t] = m;
    } finally {
      await server.stop();
    }
  }
  return [
    ...facts.map((f) => `- ${f}`),
    `- command: \`npm run bench -- ${argv.join(' ')}\``,
    '',
    defragTable(results, flags['defrag-mb']),
  ].join('\n');
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'env']);

async function start(target: Target, flags: RunFlags, what: string): Promise<RunningServer> {
  const server = await startServer({ label: target, binary: binaryOf(target, flags), readyTimeoutMs: flags['ready-seconds'] * 1000 });
  log(`[${target}] started ${server.comm} pid ${server.pid} on ${server.endpoint}${what}`);
  if (SHELLS.has(server.comm)) {
    warn(`the PID is a ${server.comm} wrapper, so RSS and CPU measure the wrapper; the launcher must exec the server`, target);
  }
  return server;
}

function binaryOf(target: Target, flags: RunFlags): string {
  return target === 'etcd' ? flags['etcd-bin'] : flags['ours-bin'];
}

/** The watch fan-out and keep-alive workloads: a fresh server (or cluster) for each, so none inherits another's state. */
async function runExtras(target: Target, flags: RunFlags, names: readonly ExtraWorkloadName[]): Promise<Map<ExtraWorkloadName, ExtraMeasure>> {
  const out = new Map<ExtraWorkloadName, ExtraMeasure>();
  for (const name of names) {
    const m = name === 'keepalive-follower' ? await viaFollower(target, flags, name) : await onSingle(target, flags, name);
    log(progressText(target, name, m));
    if (m.missing > 0) warn('events not delivered or keep-alives answered "not found"', `${target} ${name} (${m.missing})`);
    out.set(name, m);
  }
  return out;
}

async function onSingle(target: Target, flags: RunFlags, name: ExtraWorkloadName): Promise<ExtraMeasure> {
  const server = await start(target, flags, ` (${name})`);
  try {
    return await measureExtra(name, { endpoint: server.endpoint, pid: server.pid, cpuPids: [server.pid] }, flags);
  } finally {
    await server.stop();
  }
}

/** Through a follower of a 3-member cluster: RSS is the follower's, CPU all three members'. */
async function viaFollower(target: Target, flags: RunFlags, name: ExtraWorkloadName): Promise<ExtraMeasure> {
  const cluster = await startCluster({ label: target, binary: binaryOf(target, flags), readyTimeoutMs: flags['ready-seconds'] * 1000 });
  try {
    const follower = cluster.followers[0]!;
    log(`[${target}] started a 3-member cluster; load goes to follower pid ${follower.pid} (leader pid ${cluster.leader.pid})`);
    const pids = [cluster.leader.pid, ...cluster.followers.map((f) => f.pid)];
    return await measureExtra(name, { endpoint: follower.endpoint, pid: follower.pid, cpuPids: pids }, flags);
  } finally {
    await cluster.stop();
  }
}

async function collectExtras(flags: RunFlags, names: readonly ExtraWorkloadName[], targets: Target[]): Promise<ExtraRow[]> {
  const all = new Map<string, ExtraMeasure[]>();
  for (let round = 0; round < flags.rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      for (const [n, m] of await runExtras(t, flags, names)) all.set(`${t}/${n}`, [...(all.get(`${t}/${n}`) ?? []), m]);
    }
  }
  return names.map((n) => {
    const results: Partial<Record<Target, ExtraMeasure>> = {};
    for (const t of TARGETS) {
      const ms = [...(all.get(`${t}/${n}`) ?? [])].sort((a, b) => a.perSec - b.perSec);
      const m = ms[Math.floor(ms.length / 2)];
      if (m !== undefined) results[t] = m;
    }
    return { workload: n, title: extraTitle(n, flags), results };
  });
}

/**
 * The round whose throughput is the median (the faster of the middle two for an even count: other work on
 * the machine only ever slows a run down), so that a row's numbers all come from one run.
 */
function median(ms: readonly Measure[]): Measure | undefined {
  const sorted = [...ms].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor(sorted.length / 2)];
}

async function collect(flags: RunFlags, names: WorkloadName[], targets: Target[]): Promise<Row[]> {
  const all = new Map<string, Measure[]>();
  const keep = (t: Target, n: WorkloadName, m: Measure): void => void all.set(`${t}/${n}`, [...(all.get(`${t}/${n}`) ?? []), m]);
  for (let round = 0; round < flags.rounds; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const throughput = names.filter((n) => n !== 'mem');
      if (throughput.length > 0) for (const [n, m] of await runThroughput(t, flags, throughput)) keep(t, n, m);
      if (names.includes('mem')) keep(t, 'mem', await runMemory(t, flags));
    }
  }
  return names.map((n) => {
    const results: Partial<Record<Target, Measure>> = {};
    for (const t of TARGETS) {
      const m = median(all.get(`${t}/${n}`) ?? []);
      if (m !== undefined) results[t] = m;
    }
    return { workload: n, title: workloadFor(n, flags).title, results };
  });
}

/** "etcd put100 (x2), ours txn": repeats across rounds folded into a count. */
function counted(items: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return [...counts].map(([item, n]) => (n > 1 ? `${item} (x${n})` : item)).join(', ');
}

function renderReport(flags: RunFlags, tables: { rows: Row[]; extras: ExtraRow[] }, facts: string[], argv: string[]): string {
  const { rows, extras } = tables;
  const endpoint = '127.0.0.1:2379';
  const commands = rows.map((r) => `- ${r.workload}: \`${commandLine(workloadFor(r.workload as WorkloadName, flags).load(endpoint))}\``);
  const mem = memoryTable(rows);
  return [
    ...facts.map((f) => `- ${f}`),
    `- command: \`npm run bench --${argv.length > 0 ? ` ${argv.join(' ')}` : ''}\` (${flags.rounds} round(s), medians; load generator: ${flags.workers} worker thread(s))`,
    ...(rows.length === 0 ? [] : [
      '',
      mainTable(rows),
      '',
      'CPU per request (server CPU from /proc/<pid>/stat during the timed phase; loadgen = this process, etcd run / ours run):',
      '',
      cpuTable(rows),
    ]),
    ...(extras.length === 0 ? [] : [
      '',
      `Watch fan-out (events delivered/s; latency from put sent to event received; ${flags['watch-seconds']} s each) and lease keep-alive ` +
        `(answers/s; latency from request sent to its answer, queueing in the window included; ${flags['keepalive-seconds']} s). ` +
        'CPU is the server\'s per event or answer; RSS when ready (watchers created, leases granted) and peak:',
      '',
      extrasTable(extras),
    ]),
    ...(mem === undefined ? [] : ['', 'Memory workload (RSS from /proc/<pid>/status; settled = after a compaction at head and RSS steady for 3 s):', '', mem]),
    '',
    'Each row alone, against a running server:',
    '',
    ...commands,
    ...(warnings.size > 0 ? ['', 'Warnings:', '', ...[...warnings].map(([text, where]) => `- ${text}: ${counted(where)}`)] : []),
  ].join('\n');
}

/** bigrange: each server fresh, loaded, then one Range over every key (bench/big-range.ts). */
async function collectBigRange(flags: RunFlags, targets: Target[]): Promise<string> {
  const cfg = {
    keys: flags['bigrange-keys'], valSize: flags['bigrange-val-size'], batch: flags['bigrange-batch'],
    inflight: flags['bigrange-inflight'], sampleMs: Math.min(flags['sample-ms'], 50),
  };
  const results: Array<[string, BigRangeMeasure]> = [];
  for (const t of targets) {
    const server = await start(t, flags, ' (bigrange)');
    try {
      const m = await runBigRange(server, cfg, (line) => log(`[${t}] bigrange: ${line}`));
      log(`[${t}] bigrange: ${(m.responseBytes / 2 ** 20).toFixed(0)} MiB in ${m.rangeSeconds.toFixed(1)} s, RSS ${(m.before.rssBytes / 2 ** 20).toFixed(0)} -> peak ${(m.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
      results.push([t, m]);
    } finally {
      await server.stop();
    }
  }
  return [
    `Big range: ${cfg.keys} keys of ${cfg.valSize} B loaded (${cfg.batch} puts per txn, ${cfg.inflight} in flight), then one Range over all of them, ` +
      `read by a client that drops the data as it arrives; RSS from /proc/<pid>/status sampled every ${cfg.sampleMs} ms during the Range ` +
      '(RSS includes the mapped database pages the read touches; anon RSS is the process\'s own memory):',
    '',
    bigRangeTable(results),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, RUN_FLAGS);
  if (parsed.help || parsed.positional.length > 0) {
    process.stdout.write(`usage: npm run bench -- [flags]\n${usage(RUN_FLAGS)}\n`);
    return parsed.help ? 0 : 2;
  }
  const flags = parsed.flags;
  const names = WORKLOAD_NAMES.filter((n) => flags.only.includes(n));
  const targets: Target[] = flags['target-only'] === 'both' ? ['etcd', 'ours'] : [flags['target-only'] === 'etcd' ? 'etcd' : 'ours'];
  for (const t of targets) {
    try {
      accessSync(binaryOf(t, flags), constants.X_OK);
    } catch {
      throw new UsageError(`${t} server ${binaryOf(t, flags)} is missing or not executable (see --${t}-bin, --target-only)`);
    }
  }
  const facts = machineFacts({ etcdBin: flags['etcd-bin'], oursBin: flags['ours-bin'], repoRoot: REPO_ROOT });
  if (targets.length === 2 && realpathSync(flags['etcd-bin']) === realpathSync(flags['ours-bin'])) {
    facts.push('calibration run: both columns are the same etcd binary, so the spread of the ratios around 1.00 is this machine\'s noise');
  }
  const rows = names.length === 0 ? [] : await collect(flags, names, targets);
  const extras = await collectExtras(flags, EXTRA_WORKLOAD_NAMES.filter((n) => flags.only.includes(n)), targets);
  const main = rows.length + extras.length > 0 ? renderReport(flags, { rows, extras }, facts, argv) : facts.map((f) => `- ${f}`).join('\n');
  const defrag = flags.only.includes('defrag') ? await runDefrag(flags, targets, facts, argv) : undefined;
  const bigRange = flags.only.includes('bigrange') ? await collectBigRange(flags, targets) : undefined;
  const report = [main, defrag, bigRange].filter((x) => x !== undefined).join('\n\n');
  process.stdout.write(`${report}\n`);
  if (flags['write-readme']) {
    const path = flags.readme;
    const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
    let text = main === undefined ? before : replaceResults(before, main);
    if (defrag !== undefined) text = replaceDefragResults(text, defrag);
    writeFileSync(path, text);
    log(`wrote ${path}`);
  }
  return 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    log(`bench: ${err instanceof UsageError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
