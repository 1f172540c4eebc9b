// The comparison's workloads and the runner's flags. Every workload is one load-generator configuration,
// so a row of the table can be reproduced alone with bench/benchmark.ts and the flags printed beside it.

import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { CLIENTS_MAX, CONNS_MAX, KEY_SIZE_MAX, TOTAL_MAX, VAL_SIZE_MAX, WORKERS_MAX, validateLoadConfig, type LoadConfig } from './load-config.js';
import type { FlagSpecs, FlagValues } from './options.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export type WorkloadName = 'put1' | 'put100' | 'range-l' | 'range-s' | 'txn' | 'auth' | 'put100-auth' | 'mem';
/** The auth workloads come last among the throughput ones: they enable auth on the server. */
export const WORKLOAD_NAMES: readonly WorkloadName[] = ['put1', 'put100', 'range-l', 'range-s', 'txn', 'auth', 'put100-auth', 'mem'];
/** The user the auth workloads run as: not root, so every put goes through the permission check. */
export const BENCH_USER = { name: 'bench', password: 'bench-password' };
/** Workloads with their own driver (fanout-run.ts): watch fan-out and lease keep-alive. */
export type ExtraWorkloadName = 'watch1k' | 'watch10k' | 'keepalive' | 'keepalive-follower';
export const EXTRA_WORKLOAD_NAMES: readonly ExtraWorkloadName[] = ['watch1k', 'watch10k', 'keepalive', 'keepalive-follower'];
/** Puts per txn while loading the memory workload; etcd refuses more than 128 ops per txn by default. */
export const MEM_BATCH_MAX = 128;

/** Workloads outside the load generator's table, each with a table of its own (bench/big-range.ts). */
/** Long workloads that run only when named: bigrange loads 1 GiB by default. */
export const OTHER_WORKLOADS = ['bigrange'] as const;

export const RUN_FLAGS = {
  only: { kind: 'list', default: [...WORKLOAD_NAMES, ...EXTRA_WORKLOAD_NAMES], values: [...WORKLOAD_NAMES, ...EXTRA_WORKLOAD_NAMES, 'defrag', ...OTHER_WORKLOADS], help: 'Workloads to run, comma-separated (defrag and bigrange only when named)' },
  'defrag-mb': { kind: 'int', default: 1024, min: 1, max: 16_384, help: 'MiB loaded before the defrag workload (half is deleted, then defragmented)' },
  'target-only': { kind: 'enum', default: 'both', values: ['both', 'etcd', 'ours'], help: 'Run one server only' },
  'etcd-bin': { kind: 'string', default: '/usr/bin/etcd', help: 'Reference server binary' },
  'ours-bin': { kind: 'string', default: resolve(REPO_ROOT, 'bin', 'etcd-ts'), help: 'Our server binary (etcd here compares etcd with itself)' },
  total: { kind: 'int', default: 20_000, min: 10, max: TOTAL_MAX, help: 'Requests per many-client workload (put1 runs total/10)' },
  warmup: { kind: 'int', default: 1_000, min: 0, max: TOTAL_MAX, help: 'Untimed requests before each workload (put1: warmup/10)' },
  clients: { kind: 'int', default: 100, min: 1, max: CLIENTS_MAX, help: 'Clients of the many-client workloads' },
  conns: { kind: 'int', default: 10, min: 1, max: CONNS_MAX, help: 'Connections of the many-client workloads' },
  'key-size': { kind: 'int', default: 8, min: 4, max: KEY_SIZE_MAX, help: 'Key size in bytes' },
  'val-size': { kind: 'int', default: 256, min: 0, max: VAL_SIZE_MAX, help: 'Value size in bytes' },
  'key-space-size': { kind: 'int', default: 100_000, min: 1, max: TOTAL_MAX, help: 'Distinct keys of put and txn' },
  'range-keys': { kind: 'int', default: 10_000, min: 1, max: TOTAL_MAX, help: 'Keys loaded before the range workloads' },
  'mem-keys': { kind: 'int', default: 1_000_000, min: 1, max: TOTAL_MAX, help: 'Keys loaded by the memory workload' },
  'mem-batch': { kind: 'int', default: 1, min: 1, max: MEM_BATCH_MAX, help: 'Puts per request while loading mem (>1: txns)' },
  'bigrange-keys': { kind: 'int', default: 1_048_576, min: 1, max: TOTAL_MAX, help: 'Keys loaded by bigrange, then read by one Range' },
  'bigrange-val-size': { kind: 'int', default: 1024, min: 0, max: VAL_SIZE_MAX, help: 'Value size of bigrange (default: 1 GiB in all)' },
  'bigrange-batch': { kind: 'int', default: MEM_BATCH_MAX, min: 1, max: MEM_BATCH_MAX, help: 'Puts per txn while loading bigrange' },
  'bigrange-inflight': { kind: 'int', default: 8, min: 1, max: 256, help: 'Txns in flight while loading bigrange' },
  'settle-seconds': { kind: 'int', default: 30, min: 0, max: 3_600, help: 'Longest wait for RSS to settle after mem' },
  'watch-streams': { kind: 'int', default: 100, min: 1, max: 10_000, help: 'Watch streams the fan-out watchers are spread over' },
  'watch-conns': { kind: 'int', default: 10, min: 1, max: CONNS_MAX, help: 'Connections the watch streams are spread over' },
  'watch-events-per-sec': { kind: 'int', default: 10_000, min: 1, max: 1_000_000, help: 'Events per second to deliver (puts/s = this / watchers)' },
  'watch-seconds': { kind: 'int', default: 10, min: 1, max: 3_600, help: 'Timed phase of each fan-out workload' },
  'keepalive-leases': { kind: 'int', default: 10_000, min: 1, max: 1_000_000, help: 'Leases granted (untimed) and kept alive' },
  'keepalive-streams': { kind: 'int', default: 10, min: 1, max: 10_000, help: 'LeaseKeepAlive streams' },
  'keepalive-conns': { kind: 'int', default: 2, min: 1, max: CONNS_MAX, help: 'Connections the keep-alive streams are spread over' },
  'keepalive-window': { kind: 'int', default: 100, min: 1, max: 10_000, help: 'Keep-alive requests in flight per stream' },
  'keepalive-seconds': { kind: 'int', default: 10, min: 1, max: 3_600, help: 'Timed phase of the keep-alive workload' },
  workers: { kind: 'int', default: 1, min: 0, max: WORKERS_MAX, help: 'Load-generator threads (0: main thread)' },
  rounds: { kind: 'int', default: 1, min: 1, max: 20, help: 'Repeat the comparison, alternating order; report medians' },
  'ready-seconds': { kind: 'int', default: 30, min: 1, max: 600, help: 'Deadline for a server to start serving' },
  'sample-ms': { kind: 'int', default: 200, min: 10, max: 10_000, help: 'RSS sampling interval' },
  'timeout-seconds': { kind: 'int', default: 1_800, min: 1, max: 86_400, help: 'Abort a workload after this long' },
  'auth-total': { kind: 'int', default: 400, min: 1, max: TOTAL_MAX, help: 'Authenticate requests of the auth workload (bcrypt cost 10 each)' },
  'write-readme': { kind: 'bool', default: false, help: 'Write the tables into bench/README.md' },
  readme: { kind: 'string', default: resolve(REPO_ROOT, 'bench', 'README.md'), help: 'README to update' },
} as const satisfies FlagSpecs;

export type RunFlags = FlagValues<typeof RUN_FLAGS>;

export interface Workload {
  name: WorkloadName;
  title: string;
  /** Keys that must exist before the timed part (loaded untimed, sequentially), or 0. */
  preloadKeys: number;
  /** The server needs auth enabled with BENCH_USER first (done once, untimed). */
  needsAuth?: boolean;
  load(endpoint: string): LoadConfig;
}

function base(flags: RunFlags, endpoint: string): Omit<LoadConfig, 'op' | 'consistency'> {
  return {
    endpoint,
    conns: flags.conns,
    clients: flags.clients,
    total: flags.total,
    warmup: flags.warmup,
    keySize: flags['key-size'],
    valSize: flags['val-size'],
    keySpaceSize: flags['key-space-size'],
    sequentialKeys: false,
    rangeSpan: 1,
    opsPerTxn: 1,
    workers: flags.workers,
    timeoutSeconds: flags['timeout-seconds'],
    user: '',
  };
}

export function workloadFor(name: WorkloadName, flags: RunFlags): Workload {
  const many = `${flags.clients} clients/${flags.conns} conns`;
  switch (name) {
    case 'put1':
      return {
        name,
        title: 'put, 1 client',
        preloadKeys: 0,
        load: (ep) => validateLoadConfig({
          ...base(flags, ep), op: 'put', consistency: 'l', conns: 1, clients: 1, sequentialKeys: true,
          total: Math.max(1, Math.floor(flags.total / 10)), warmup: Math.floor(flags.warmup / 10),
        }),
      };
    case 'put100':
      return { name, title: `put, ${many}`, preloadKeys: 0, load: (ep) => validateLoadConfig({ ...base(flags, ep), op: 'put', consistency: 'l' }) };
    case 'range-l':
    case 'range-s': {
      const consistency = name === 'range-l' ? 'l' : 's';
      const title = `range ${consistency === 'l' ? 'linearizable' : 'serializable'}, ${many}`;
      const keySpaceSize = flags['range-keys'];
      return { name, title, preloadKeys: keySpaceSize, load: (ep) => validateLoadConfig({ ...base(flags, ep), op: 'range', consistency, keySpaceSize }) };
    }
    case 'txn':
      return { name, title: `txn compare+put, ${many}`, preloadKeys: 0, load: (ep) => validateLoadConfig({ ...base(flags, ep), op: 'txn-put', consistency: 'l' }) };
    case 'auth':
      return {
        name, title: `authenticate (bcrypt), ${many}`, preloadKeys: 0, needsAuth: true,
        load: (ep) => validateLoadConfig({
          ...base(flags, ep), op: 'authenticate', consistency: 'l', total: flags['auth-total'],
          warmup: Math.min(flags.clients, flags['auth-total']), user: `${BENCH_USER.name}:${BENCH_USER.password}`,
        }),
      };
    case 'put100-auth':
      return {
        name, title: `put with auth (token, non-root user), ${many}`, preloadKeys: 0, needsAuth: true,
        load: (ep) => validateLoadConfig({ ...base(flags, ep), op: 'put', consistency: 'l', user: `${BENCH_USER.name}:${BENCH_USER.password}` }),
      };
    case 'mem': {
      const keys = flags['mem-keys'];
      const batch = flags['mem-batch'];
      return {
        name,
        title: `mem: load ${keys} keys of ${flags['val-size']} B${batch > 1 ? `, ${batch} per txn` : ''}`,
        preloadKeys: 0,
        load: (ep) => validateLoadConfig({
          ...base(flags, ep), op: batch > 1 ? 'txn-put' : 'put', consistency: 'l', sequentialKeys: true,
          total: Math.ceil(keys / batch), warmup: 0, keySpaceSize: keys, opsPerTxn: batch,
        }),
      };
    }
  }
}

/** The untimed load that makes `keys` keys exist, with the same key encoding and value size. */
export function preloadConfig(flags: RunFlags, endpoint: string, keys: number): LoadConfig {
  return validateLoadConfig({
    ...base(flags, endpoint), op: 'put', consistency: 'l', sequentialKeys: true, total: keys, warmup: 0, keySpaceSize: keys,
  });
}

/** The load-generator command line that reproduces a workload against a running server. */
export function commandLine(cfg: LoadConfig): string {
  const parts = [
    `node dist/bench/benchmark.js ${cfg.op}`, `--endpoint ${cfg.endpoint}`, `--conns ${cfg.conns}`, `--clients ${cfg.clients}`, `--total ${cfg.total}`,
    `--key-size ${cfg.keySize}`, `--val-size ${cfg.valSize}`, `--key-space-size ${cfg.keySpaceSize}`,
  ];
  if (cfg.sequentialKeys) parts.push('--sequential-keys');
  if (cfg.op === 'range') parts.push(`--consistency ${cfg.consistency}`);
  if (cfg.op === 'txn-put' && cfg.opsPerTxn > 1) parts.push(`--txn-ops ${cfg.opsPerTxn}`);
  if (cfg.user !== '') parts.push(`--user ${cfg.user}`);
  return parts.join(' ');
}
