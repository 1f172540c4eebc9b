// What one load-generator run does, its flags (named after etcd's benchmark tool so the same command lines
// carry over) and the limits that keep a mistyped number from exhausting the machine.

import { UsageError, type FlagSpecs, type FlagValues } from './options.js';

export const CLIENTS_MAX = 10_000;
export const CONNS_MAX = 1_000;
export const TOTAL_MAX = 1_000_000_000;
export const KEY_SIZE_MAX = 1_024;
/** etcd refuses requests over --max-request-bytes (1.5 MiB by default); stay well under it. */
export const VAL_SIZE_MAX = 1_000_000;
export const WORKERS_MAX = 16;
export const RANGE_SPAN_MAX = 1_000_000;
/** etcd's default --max-txn-ops. */
export const TXN_OPS_MAX = 128;

export type LoadOp = 'put' | 'range' | 'txn-put' | 'authenticate';
export const LOAD_OPS: readonly LoadOp[] = ['put', 'range', 'txn-put', 'authenticate'];

export interface LoadConfig {
  op: LoadOp;
  /** host:port of the server's client URL. */
  endpoint: string;
  conns: number;
  clients: number;
  total: number;
  /** Untimed requests issued first, so connection set-up and JIT warm-up stay out of the numbers. */
  warmup: number;
  keySize: number;
  valSize: number;
  keySpaceSize: number;
  sequentialKeys: boolean;
  consistency: 'l' | 's';
  /** Keys covered by one range request; 1 is a point read. */
  rangeSpan: number;
  /** txn-put: keys compared and put by one txn. */
  opsPerTxn: number;
  /** Load-generator threads; 0 runs the clients on the calling thread. */
  workers: number;
  timeoutSeconds: number;
  /** "name:password": every connection authenticates once and sends its token ('' for none); the user of `authenticate`. */
  user: string;
}

export const LOAD_FLAGS = {
  endpoint: { kind: 'string', default: '127.0.0.1:2379', help: 'gRPC endpoint host:port' },
  conns: { kind: 'int', default: 1, min: 1, max: CONNS_MAX, help: 'Total number of gRPC connections' },
  clients: { kind: 'int', default: 1, min: 1, max: CLIENTS_MAX, help: 'Total number of gRPC clients' },
  total: { kind: 'int', default: 10_000, min: 1, max: TOTAL_MAX, help: 'Total number of requests' },
  warmup: { kind: 'int', default: 0, min: 0, max: TOTAL_MAX, help: 'Untimed requests before the timed ones' },
  'key-size': { kind: 'int', default: 8, min: 1, max: KEY_SIZE_MAX, help: 'Key size of a request' },
  'val-size': { kind: 'int', default: 8, min: 0, max: VAL_SIZE_MAX, help: 'Value size of a put' },
  'key-space-size': { kind: 'int', default: 1, min: 1, max: TOTAL_MAX, help: 'Maximum possible keys' },
  'sequential-keys': { kind: 'bool', default: false, help: 'Use sequential keys (else uniform random)' },
  consistency: { kind: 'enum', default: 'l', values: ['l', 's'], help: 'Range: linearizable(l) or serializable(s)' },
  'range-span': { kind: 'int', default: 1, min: 1, max: RANGE_SPAN_MAX, help: 'Keys covered by one range' },
  'txn-ops': { kind: 'int', default: 1, min: 1, max: TXN_OPS_MAX, help: 'txn-put: keys compared and put per txn' },
  workers: { kind: 'int', default: 1, min: 0, max: WORKERS_MAX, help: 'Load-generator threads (0: main thread)' },
  'timeout-seconds': { kind: 'int', default: 600, min: 1, max: 86_400, help: 'Abort a run after this long' },
  user: { kind: 'string', default: '', help: 'name:password to authenticate as (etcdctl --user); authenticate: the login' },
} as const satisfies FlagSpecs;

/** The number of distinct keys keySize bytes can name with our big-endian index encoding. */
export function keyCapacity(keySize: number): number {
  return keySize >= 7 ? Number.MAX_SAFE_INTEGER : 256 ** keySize;
}

export function validateLoadConfig(cfg: LoadConfig): LoadConfig {
  if (cfg.conns > cfg.clients) {
    throw new UsageError(`--conns (${cfg.conns}) must not exceed --clients (${cfg.clients})`);
  }
  if (cfg.op === 'txn-put' && cfg.opsPerTxn > cfg.keySpaceSize) {
    throw new UsageError(`--txn-ops (${cfg.opsPerTxn}) must not exceed --key-space-size (${cfg.keySpaceSize})`);
  }
  const needed = cfg.keySpaceSize + (cfg.op === 'range' ? cfg.rangeSpan : 0);
  if (needed > keyCapacity(cfg.keySize)) {
    throw new UsageError(`--key-size ${cfg.keySize} cannot hold --key-space-size ${cfg.keySpaceSize} distinct keys`);
  }
  if ((cfg.op === 'authenticate' || cfg.user !== '') && !/^[^:]+:/.test(cfg.user)) {
    throw new UsageError(`--user: expected name:password, got "${cfg.user}"`);
  }
  if (!/^[^\s:/]+:\d{1,5}$/.test(cfg.endpoint)) {
    throw new UsageError(`--endpoint: expected host:port, got "${cfg.endpoint}"`);
  }
  return cfg;
}

export function loadConfigFromFlags(op: LoadOp, flags: FlagValues<typeof LOAD_FLAGS>): LoadConfig {
  return validateLoadConfig({
    op,
    endpoint: flags.endpoint,
    conns: flags.conns,
    clients: flags.clients,
    total: flags.total,
    warmup: flags.warmup,
    keySize: flags['key-size'],
    valSize: flags['val-size'],
    keySpaceSize: flags['key-space-size'],
    sequentialKeys: flags['sequential-keys'],
    consistency: flags.consistency === 's' ? 's' : 'l',
    rangeSpan: flags['range-span'],
    opsPerTxn: flags['txn-ops'],
    workers: flags.workers,
    timeoutSeconds: flags['timeout-seconds'],
    user: flags.user,
  });
}

/** Key number `index` as keySize bytes, big-endian in the low bytes: byte order equals index order. */
export function encodeKey(index: number, keySize: number): Buffer {
  const key = Buffer.alloc(keySize);
  let rest = index;
  for (let i = keySize - 1; i >= 0 && rest > 0; i--) {
    key[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  return key;
}
