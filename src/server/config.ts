/**
 * Server configuration taken the way etcd takes it: command-line flags, ETCD_* environment variables, or
 * a YAML --config-file (which, as in etcd, replaces flags and environment entirely).
 *
 * Every flag of etcd 3.4 is known here. A flag that etcd-ts does not implement yet is refused when it is
 * given a value other than etcd's default, naming the flag, so that nothing is silently ignored.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { tlsConfigFrom, yamlSecurityFlags, type TlsConfig } from './tls-config.js';

type FlagKind = 'string' | 'uint' | 'int' | 'bool' | 'duration' | 'list';

interface FlagSpec {
  readonly kind: FlagKind;
  readonly def: string;
  /** False: etcd-ts refuses any value but the default. */
  readonly implemented: boolean;
}

const f = (kind: FlagKind, def: string, implemented = true): FlagSpec => ({ kind, def, implemented });

const flagSpecs: Readonly<Record<string, FlagSpec>> = {
  'config-file': f('string', ''),
  'data-dir': f('string', ''),
  'wal-dir': f('string', ''),
  'listen-peer-urls': f('list', 'http://localhost:2380'),
  'listen-client-urls': f('list', 'http://localhost:2379'),
  'listen-metrics-urls': f('list', ''),
  'max-snapshots': f('uint', '5'),
  'max-wals': f('uint', '5'),
  name: f('string', 'default'),
  'snapshot-count': f('uint', '100000'),
  'heartbeat-interval': f('uint', '100'),
  'election-timeout': f('uint', '1000'),
  'initial-election-tick-advance': f('bool', 'true'),
  'quota-backend-bytes': f('int', '0'),
  'backend-batch-interval': f('duration', '0s'),
  'backend-batch-limit': f('int', '0'),
  'max-txn-ops': f('uint', '128'),
  'max-request-bytes': f('uint', '1572864'),
  'grpc-keepalive-min-time': f('duration', '5s'),
  'grpc-keepalive-interval': f('duration', '2h0m0s'),
  'grpc-keepalive-timeout': f('duration', '20s'),
  'max-concurrent-streams': f('uint', '4294967295'),
  'initial-advertise-peer-urls': f('list', 'http://localhost:2380'),
  'advertise-client-urls': f('list', 'http://localhost:2379'),
  discovery: f('string', '', false),
  'discovery-fallback': f('string', 'proxy', false),
  'discovery-proxy': f('string', '', false),
  'discovery-srv': f('string', '', false),
  'discovery-srv-name': f('string', '', false),
  'initial-cluster': f('string', ''),
  'initial-cluster-token': f('string', 'etcd-cluster'),
  'initial-cluster-state': f('string', 'new'),
  'strict-reconfig-check': f('bool', 'true'),
  'enable-v2': f('bool', 'false', false),
  'pre-vote': f('bool', 'false'),
  proxy: f('string', 'off', false),
  'proxy-failure-wait': f('uint', '5000', false),
  'proxy-refresh-interval': f('uint', '30000', false),
  'proxy-dial-timeout': f('uint', '1000', false),
  'proxy-write-timeout': f('uint', '5000', false),
  'proxy-read-timeout': f('uint', '0', false),
  'cert-file': f('string', ''),
  'key-file': f('string', ''),
  'client-cert-auth': f('bool', 'false'),
  'client-crl-file': f('string', ''),
  'client-cert-allowed-hostname': f('string', ''),
  'trusted-ca-file': f('string', ''),
  'auto-tls': f('bool', 'false'),
  'peer-cert-file': f('string', ''),
  'peer-key-file': f('string', ''),
  'peer-client-cert-auth': f('bool', 'false'),
  'peer-trusted-ca-file': f('string', ''),
  'peer-auto-tls': f('bool', 'false'),
  'peer-crl-file': f('string', ''),
  'peer-cert-allowed-cn': f('string', ''),
  'peer-cert-allowed-hostname': f('string', ''),
  'cipher-suites': f('list', ''),
  'experimental-peer-skip-client-san-verification': f('bool', 'false'),
  // From etcd 3.5: the TLS versions offered on client and peer ports ("TLS1.2", "TLS1.3"; empty: 1.2 and up).
  'tls-min-version': f('string', ''),
  'tls-max-version': f('string', ''),
  'cors': f('list', '*', false),
  'host-whitelist': f('list', '*', false),
  logger: f('string', 'zap'),
  'log-output': f('list', 'default', false),
  'log-outputs': f('list', 'default'),
  debug: f('bool', 'false'),
  'log-level': f('string', 'info'),
  'log-package-levels': f('string', '', false),
  version: f('bool', 'false'),
  'auto-compaction-retention': f('string', '0'),
  'auto-compaction-mode': f('string', 'periodic'),
  'enable-pprof': f('bool', 'false', false),
  metrics: f('string', 'basic', false),
  'auth-token': f('string', 'simple'),
  'bcrypt-cost': f('uint', '10'),
  'auth-token-ttl': f('uint', '300'),
  'enable-grpc-gateway': f('bool', 'true'),
  'experimental-initial-corrupt-check': f('bool', 'false'),
  'experimental-corrupt-check-time': f('duration', '0s'),
  'experimental-enable-v2v3': f('string', '', false),
  'experimental-backend-bbolt-freelist-type': f('string', 'map', false),
  'experimental-enable-lease-checkpoint': f('bool', 'false', false),
  'experimental-enable-lease-checkpoint-persist': f('bool', 'false', false),
  'experimental-compaction-batch-limit': f('int', '1000'),
  'experimental-watch-progress-notify-interval': f('duration', '10m0s'),
  'experimental-warning-apply-duration': f('duration', '100ms'),
  'unsafe-no-fsync': f('bool', 'false'),
  // From etcd 3.5: entries a leader keeps below a snapshot for slow followers.
  'experimental-snapshot-catchup-entries': f('uint', '5000'),
  'force-new-cluster': f('bool', 'false', false),
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Member0 {
  readonly name: string;
  readonly peerUrls: readonly string[];
}

export interface ServerConfig {
  readonly name: string;
  readonly dataDir: string;
  readonly walDir: string;
  readonly listenClientUrls: readonly URL[];
  /** Extra listeners serving only /metrics and the health endpoints (empty: none). */
  readonly listenMetricsUrls: readonly URL[];
  readonly advertiseClientUrls: readonly string[];
  readonly listenPeerUrls: readonly URL[];
  readonly initialAdvertisePeerUrls: readonly string[];
  readonly initialCluster: readonly Member0[];
  readonly initialClusterToken: string;
  readonly initialClusterState: 'new' | 'existing';
  readonly snapshotCount: number;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  readonly initialElectionTickAdvance: boolean;
  readonly maxTxnOps: number;
  readonly requestBytesMax: number;
  readonly maxSnapshots: number;
  readonly maxWals: number;
  readonly strictReconfigCheck: boolean;
  readonly preVote: boolean;
  readonly backendBatchIntervalMs: number;
  readonly backendBatchLimit: number;
  readonly compactionBatchLimit: number;
  /** --quota-backend-bytes as given: 0 means etcd's default (2 GiB), negative disables the quota. */
  readonly quotaBackendBytes: number;
  /** Auto-compaction (none when retention is 0): periodic keeps `retention` of history, revision keeps N revisions. */
  readonly autoCompaction: AutoCompactionConfig | null;
  /** Compare this member's HashKV with its peers' before serving (--experimental-initial-corrupt-check). */
  readonly initialCorruptCheck: boolean;
  /** Period of the leader's corruption check; 0: none (--experimental-corrupt-check-time). */
  readonly corruptCheckTimeMs: number;
  readonly grpcKeepaliveMinTimeMs: number;
  readonly grpcKeepaliveIntervalMs: number;
  readonly grpcKeepaliveTimeoutMs: number;
  readonly maxConcurrentStreams: number;
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error' | 'panic' | 'fatal';
  readonly logOutputs: readonly string[];
  readonly unsafeNoFsync: boolean;
  readonly snapshotCatchUpEntries: number;
  readonly warningApplyDurationMs: number;
  /** Period of watch progress notifications (etcd: 10 minutes when unset or 0, at least 100 ms). */
  readonly watchProgressNotifyIntervalMs: number;
  readonly printVersion: boolean;
  /** Client and peer TLS flags (see tls-config.ts; resolved at start-up). */
  readonly tls: TlsConfig;
  /** --auth-token as given: "simple" or "jwt,<options>" (the key files are read at start). */
  readonly authToken: string;
  readonly bcryptCost: number;
  /** Simple tokens live this long after their last use. */
  readonly authTokenTtlSeconds: number;
  /** Which flags were set explicitly, and from where; for the start-up log. */
  readonly sources: ReadonlyMap<string, 'flag' | 'env' | 'config-file'>;
}

type RawValues = Map<string, string>;

/** Parses Go-style durations ("100ms", "1h30m", "2h0m0s") into milliseconds. */
export function parseDurationMs(text: string): number {
  if (/^0+$/.test(text)) return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (units[m[2] ?? ''] ?? Number.NaN);
    pos = re.lastIndex;
  }
  if (pos !== text.length || text.length === 0 || !Number.isFinite(total)) {
    throw new ConfigError(`time: invalid duration "${text}"`);
  }
  return total;
}

function parseArgv(argv: readonly string[]): RawValues {
  const out: RawValues = new Map();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      throw new ConfigError(`'${arg}' is not a valid flag`);
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = flagSpecs[name];
    if (!spec) throw new ConfigError(`flag provided but not defined: -${name}`);
    if (out.has(name)) throw new ConfigError(`flag "${name}" given more than once`);
    if (eq >= 0) out.set(name, body.slice(eq + 1));
    else if (spec.kind === 'bool') out.set(name, 'true');
    else {
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`flag needs an argument: -${name}`);
      out.set(name, next);
    }
  }
  return out;
}

function envName(flag: string): string {
  return 'ETCD_' + flag.toUpperCase().replace(/-/g, '_');
}

function readEnv(env: NodeJS.ProcessEnv, fromFlags: RawValues): RawValues {
  const out: RawValues = new Map();
  const known = new Set(Object.keys(flagSpecs).map(envName));
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith('ETCD_') || value === undefined) continue;
    // etcdctl's variables share the prefix; they are not ours to judge.
    if (key.startsWith('ETCDCTL_')) continue;
    if (!known.has(key)) {
      if (key === 'ETCD_UNSUPPORTED_ARCH') continue;
      throw new ConfigError(`unrecognized environment variable ${key}=${value}`);
    }
    const flag = key.slice(5).toLowerCase().replace(/_/g, '-');
    if (!fromFlags.has(flag)) out.set(flag, value);
  }
  return out;
}

function readConfigFile(path: string): RawValues {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot load config file ${path}: ${(err as Error).message}`);
  }
  const out: RawValues = new Map();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config file ${path}: not a YAML mapping`);
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    let security: Array<[string, string]> | null;
    try {
      security = yamlSecurityFlags(key, value);
    } catch (err) {
      throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
    }
    if (security !== null) {
      for (const [flag, text] of security) out.set(flag, text);
      continue;
    }
    const name = yamlKeyToFlag(key);
    if (!flagSpecs[name]) throw new ConfigError(`config file ${path}: unknown key "${key}"`);
    if (value === null || value === undefined) continue;
    if (name === 'cipher-suites' && Array.isArray(value)) {
      out.set(name, value.map(String).join(','));
      continue;
    }
    if (typeof value === 'object') {
      throw new ConfigError(`config file ${path}: key "${key}" needs a plain value; "${name}" is not implemented in etcd-ts yet`);
    }
    out.set(name, String(value));
  }
  return out;
}

/** etcd's YAML keys equal its flag names, with a few historical exceptions. */
function yamlKeyToFlag(key: string): string {
  const aliases: Record<string, string> = {
    'initial-cluster-state': 'initial-cluster-state',
    'log-outputs': 'log-outputs',
    'enable-pprof': 'enable-pprof',
  };
  return aliases[key] ?? key;
}

function normaliseValue(name: string, spec: FlagSpec, raw: string): string {
  switch (spec.kind) {
    case 'bool':
      if (!/^(true|false|1|0|t|f|TRUE|FALSE|True|False)$/.test(raw)) {
        throw new ConfigError(`invalid boolean value "${raw}" for -${name}`);
      }
      return /^(true|1|t|TRUE|True)$/.test(raw) ? 'true' : 'false';
    case 'uint':
    case 'int':
      if (!(spec.kind === 'int' ? /^-?\d+$/ : /^\d+$/).test(raw)) {
        throw new ConfigError(`invalid value "${raw}" for flag -${name}: parse error`);
      }
      return String(Number(raw));
    case 'duration':
      return String(parseDurationMs(raw));
    default:
      return raw;
  }
}

function resolveValues(argv: readonly string[], env: NodeJS.ProcessEnv): { values: RawValues; sources: Map<string, 'flag' | 'env' | 'config-file'> } {
  const flags = parseArgv(argv);
  const sources = new Map<string, 'flag' | 'env' | 'config-file'>();
  let given: RawValues;
  const configFile = flags.get('config-file') ?? env['ETCD_CONFIG_FILE'];
  if (configFile) {
    given = readConfigFile(configFile);
    for (const k of given.keys()) sources.set(k, 'config-file');
  } else {
    const fromEnv = readEnv(env, flags);
    given = new Map([...fromEnv, ...flags]);
    for (const k of fromEnv.keys()) sources.set(k, 'env');
    for (const k of flags.keys()) sources.set(k, 'flag');
  }
  const values: RawValues = new Map();
  for (const [name, spec] of Object.entries(flagSpecs)) {
    const raw = given.get(name);
    const value = normaliseValue(name, spec, raw ?? spec.def);
    if (raw !== undefined && !spec.implemented && value !== normaliseValue(name, spec, spec.def)) {
      throw new ConfigError(`flag --${name} is not implemented in etcd-ts yet (given "${raw}"); refusing to start rather than ignore it`);
    }
    values.set(name, value);
  }
  return { values, sources };
}

function parseUrls(name: string, text: string): URL[] {
  const urls = text.split(',').filter((s) => s.length > 0).map((s) => {
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(`invalid value "${text}" for flag -${name}: URL address does not have the form "host:port": ${s}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:' && u.protocol !== 'unix:' && u.protocol !== 'unixs:') {
      throw new ConfigError(`invalid value "${text}" for flag -${name}: URL scheme must be http, https, unix, or unixs: ${s}`);
    }
    if (u.protocol === 'unixs:') {
      throw new ConfigError(`--${name}: unixs URLs (TLS over unix sockets) are not implemented in etcd-ts yet: ${s}`);
    }
    return u;
  });
  return urls;
}

/** etcd serves metrics over http or https only; https needs TLS, which parseUrls already refuses. */
function parseMetricsUrls(text: string): URL[] {
  const urls = parseUrls('listen-metrics-urls', text);
  for (const u of urls) {
    if (u.protocol !== 'http:') throw new ConfigError(`--listen-metrics-urls: metrics are served over http only: ${u.href}`);
  }
  return urls;
}

function parseInitialCluster(text: string): Member0[] {
  const byName = new Map<string, string[]>();
  for (const part of text.split(',').filter((s) => s.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--initial-cluster: invalid entry "${part}" (want name=url)`);
    const name = part.slice(0, eq);
    parseUrls('initial-cluster', part.slice(eq + 1));
    byName.set(name, [...(byName.get(name) ?? []), part.slice(eq + 1)]);
  }
  return [...byName].map(([name, peerUrls]) => ({ name, peerUrls }));
}

function num(values: RawValues, name: string): number {
  return Number(values.get(name));
}

function bool(values: RawValues, name: string): boolean {
  return values.get(name) === 'true';
}

function str(values: RawValues, name: string): string {
  return values.get(name) ?? '';
}

/** Builds the server's configuration from argv and the environment, applying etcd's rules. */
export function loadConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { values, sources } = resolveValues(argv, env);
  const name = str(values, 'name');
  const peerAdvertise = str(values, 'initial-advertise-peer-urls');
  const initialClusterText = str(values, 'initial-cluster') || `${name}=${peerAdvertise}`;
  const state = str(values, 'initial-cluster-state');
  if (state !== 'new' && state !== 'existing') {
    throw new ConfigError(`invalid value "${state}" for flag -initial-cluster-state: valid values are "new", "existing"`);
  }
  if (sources.has('listen-client-urls') && !sources.has('advertise-client-urls')) {
    throw new ConfigError('--advertise-client-urls is required when --listen-client-urls is set explicitly');
  }
  const logLevel = bool(values, 'debug') ? 'debug' : str(values, 'log-level');
  if (!['debug', 'info', 'warn', 'error', 'panic', 'fatal'].includes(logLevel)) {
    throw new ConfigError(`invalid log level "${logLevel}"`);
  }
  const heartbeatMs = num(values, 'heartbeat-interval');
  const electionMs = num(values, 'election-timeout');
  validateTimeouts(heartbeatMs, electionMs);
  const snapshotCount = num(values, 'snapshot-count');
  return {
    name,
    dataDir: str(values, 'data-dir') || `${name}.etcd`,
    walDir: str(values, 'wal-dir'),
    listenClientUrls: parseUrls('listen-client-urls', str(values, 'listen-client-urls')),
    listenMetricsUrls: parseMetricsUrls(str(values, 'listen-metrics-urls')),
    advertiseClientUrls: parseUrls('advertise-client-urls', str(values, 'advertise-client-urls')).map((u) => u.toString().replace(/\/$/, '')),
    listenPeerUrls: parseUrls('listen-peer-urls', str(values, 'listen-peer-urls')),
    initialAdvertisePeerUrls: parseUrls('initial-advertise-peer-urls', peerAdvertise).map((u) => u.toString().replace(/\/$/, '')),
    initialCluster: parseInitialCluster(initialClusterText),
    initialClusterToken: str(values, 'initial-cluster-token'),
    initialClusterState: state,
    snapshotCount: snapshotCount === 0 ? 100_000 : snapshotCount,
    heartbeatMs,
    electionMs,
    initialElectionTickAdvance: bool(values, 'initial-election-tick-advance'),
    maxTxnOps: num(values, 'max-txn-ops'),
    requestBytesMax: num(values, 'max-request-bytes'),
    maxSnapshots: num(values, 'max-snapshots'),
    maxWals: num(values, 'max-wals'),
    strictReconfigCheck: bool(values, 'strict-reconfig-check'),
    preVote: bool(values, 'pre-vote'),
    backendBatchIntervalMs: num(values, 'backend-batch-interval') || 100,
    backendBatchLimit: num(values, 'backend-batch-limit') || 10_000,
    compactionBatchLimit: num(values, 'experimental-compaction-batch-limit'),
    quotaBackendBytes: num(values, 'quota-backend-bytes'),
    autoCompaction: parseAutoCompaction(str(values, 'auto-compaction-mode'), str(values, 'auto-compaction-retention')),
    initialCorruptCheck: bool(values, 'experimental-initial-corrupt-check'),
    corruptCheckTimeMs: num(values, 'experimental-corrupt-check-time'),
    grpcKeepaliveMinTimeMs: num(values, 'grpc-keepalive-min-time'),
    grpcKeepaliveIntervalMs: num(values, 'grpc-keepalive-interval'),
    grpcKeepaliveTimeoutMs: num(values, 'grpc-keepalive-timeout'),
    maxConcurrentStreams: num(values, 'max-concurrent-streams'),
    logLevel: logLevel as ServerConfig['logLevel'],
    logOutputs: str(values, 'log-outputs').split(','),
    unsafeNoFsync: bool(values, 'unsafe-no-fsync'),
    snapshotCatchUpEntries: num(values, 'experimental-snapshot-catchup-entries'),
    warningApplyDurationMs: num(values, 'experimental-warning-apply-duration'),
    watchProgressNotifyIntervalMs: num(values, 'experimental-watch-progress-notify-interval'),
    printVersion: bool(values, 'version'),
    tls: tlsFromValues(values),
    ...authConfig(values),
    sources,
  };
}

function tlsFromValues(values: RawValues): TlsConfig {
  try {
    return tlsConfigFrom((name) => str(values, name));
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export type AutoCompactionConfig =
  | { readonly mode: 'periodic'; readonly retentionMs: number }
  | { readonly mode: 'revision'; readonly retentionRevisions: number };

/**
 * etcd's parsing of --auto-compaction-retention: a non-negative integer is hours (periodic) or revisions
 * (revision); anything else must be a Go duration (and then means a duration in either mode, which in
 * revision mode etcd reads as nanoseconds). Zero disables auto-compaction.
 */
export function parseAutoCompaction(mode: string, retention: string): AutoCompactionConfig | null {
  if (mode !== 'periodic' && mode !== 'revision') {
    throw new ConfigError(`unknown auto-compaction-mode ${JSON.stringify(mode)}`);
  }
  let amount: number;
  if (/^\+?\d+$/.test(retention)) {
    const n = Number(retention);
    amount = mode === 'periodic' ? n * 3_600_000 : n;
  } else {
    let ms: number;
    try {
      ms = parseDurationMs(retention);
    } catch {
      throw new ConfigError(`error parsing CompactionRetention: time: invalid duration ${JSON.stringify(retention)}`);
    }
    amount = mode === 'periodic' ? ms : Math.round(ms * 1e6);
  }
  if (!Number.isSafeInteger(Math.round(amount)) || amount <= 0) return null;
  return mode === 'periodic' ? { mode, retentionMs: amount } : { mode, retentionRevisions: amount };
}

function authConfig(values: RawValues): Pick<ServerConfig, 'authToken' | 'bcryptCost' | 'authTokenTtlSeconds'> {
  const authToken = str(values, 'auth-token');
  const kind = authToken.split(',')[0];
  if (kind !== 'simple' && kind !== 'jwt') throw new ConfigError(`unknown token type: ${authToken}`);
  const bcryptCost = num(values, 'bcrypt-cost');
  // Go's bcrypt accepts costs 4 to 31.
  if (bcryptCost < 4 || bcryptCost > 31) throw new ConfigError(`invalid bcrypt-cost ${bcryptCost}: must be between 4 and 31`);
  return { authToken, bcryptCost, authTokenTtlSeconds: num(values, 'auth-token-ttl') };
}

function validateTimeouts(heartbeatMs: number, electionMs: number): void {
  if (heartbeatMs <= 0) throw new ConfigError('--heartbeat-interval must be > 0');
  if (5 * heartbeatMs > electionMs) {
    throw new ConfigError(`--election-timeout[${electionMs}ms] should be at least as 5 times as --heartbeat-interval[${heartbeatMs}ms]`);
  }
  if (electionMs > 50_000) {
    throw new ConfigError(`--election-timeout[${electionMs}ms] is too long, and should be set less than 50000ms`);
  }
}

export const knownFlags: readonly string[] = Object.keys(flagSpecs);
