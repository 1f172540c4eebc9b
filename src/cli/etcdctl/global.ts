/**
 * etcdctl's global flags and what every command shares: ETCDCTL_* environment variables, the client built
 * from the flags, the printer chosen by -w, and the texts etcdctl prints for errors and failed attempts.
 */
import { randomUUID } from 'node:crypto';
import { EtcdClient, ClientError, grpcCodeName, parseEndpoint, type AttemptFailure } from '../../client/index.js';
import { GrpcCode } from '../../base/errors.js';
import type { Command } from './command.js';
import type { FlagSet, FlagSpec } from './flags.js';
import { capnslogTimestamp, goDuration, zapJsonString, zapTimestamp } from './go-format.js';
import { Exit, ExitError, type Io } from './io.js';
import { newPrinter } from './printer-formats.js';
import type { Printer, PrinterOptions } from './printer.js';

export const globalFlags: readonly FlagSpec[] = [
  { name: 'endpoints', kind: 'stringSlice', defaultValue: '127.0.0.1:2379', usage: 'gRPC endpoints' },
  { name: 'debug', kind: 'bool', defaultValue: 'false', usage: 'enable client-side debug logging' },
  { name: 'write-out', shorthand: 'w', kind: 'string', defaultValue: 'simple', usage: 'set the output format (fields, json, protobuf, simple, table)' },
  { name: 'hex', kind: 'bool', defaultValue: 'false', usage: 'print byte strings as hex encoded strings' },
  { name: 'dial-timeout', kind: 'duration', defaultValue: '2s', usage: 'dial timeout for client connections' },
  { name: 'command-timeout', kind: 'duration', defaultValue: '5s', usage: 'timeout for short running command (excluding dial timeout)' },
  { name: 'keepalive-time', kind: 'duration', defaultValue: '2s', usage: 'keepalive time for client connections' },
  { name: 'keepalive-timeout', kind: 'duration', defaultValue: '6s', usage: 'keepalive timeout for client connections' },
  { name: 'insecure-transport', kind: 'bool', defaultValue: 'true', usage: 'disable transport security for client connections' },
  { name: 'insecure-discovery', kind: 'bool', defaultValue: 'true', usage: 'accept insecure SRV records describing cluster endpoints' },
  {
    name: 'insecure-skip-tls-verify',
    kind: 'bool',
    defaultValue: 'false',
    usage: 'skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)',
  },
  { name: 'cert', kind: 'string', defaultValue: '', usage: 'identify secure client using this TLS certificate file' },
  { name: 'key', kind: 'string', defaultValue: '', usage: 'identify secure client using this TLS key file' },
  { name: 'cacert', kind: 'string', defaultValue: '', usage: 'verify certificates of TLS-enabled secure servers using this CA bundle' },
  { name: 'user', kind: 'string', defaultValue: '', usage: 'username[:password] for authentication (prompt if password is not supplied)' },
  {
    name: 'password',
    kind: 'string',
    defaultValue: '',
    usage: "password for authentication (if this option is used, --user option shouldn't include password)",
  },
  { name: 'discovery-srv', shorthand: 'd', kind: 'string', defaultValue: '', usage: 'domain name to query for SRV records describing cluster endpoints' },
  { name: 'discovery-srv-name', kind: 'string', defaultValue: '', usage: 'service name to query when using DNS discovery' },
];

/** Flags etcdctl-ts accepts in its help but cannot honour yet; giving one is an error, never silently ignored. */
const unsupportedFlags = ['cert', 'key', 'cacert', 'discovery-srv', 'discovery-srv-name', 'insecure-skip-tls-verify'];

const envPrefix = 'ETCDCTL';

export function flagToEnv(name: string): string {
  return `${envPrefix}_${name.replaceAll('-', '_').toUpperCase()}`;
}

export interface Context {
  readonly command: Command<Context>;
  readonly flags: FlagSet;
  readonly args: readonly string[];
  readonly io: Io;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The whole argument list, as etcdctl's commands that read os.Args see it (watch's "-- command"). */
  readonly argv: readonly string[];
  /**
   * Ends long-running commands (watch, keep-alive, lock, elect) as SIGINT does. etcdctl-ts run as a process
   * installs its own handlers where etcdctl does; in-process runs (tests) pass a signal instead.
   */
  readonly interrupt: AbortSignal;
  /**
   * For commands that etcdctl lets clean up on SIGINT/SIGTERM (lock, elect): the interrupt signal, and when
   * run as a process, handlers that abort it instead of dying.
   */
  trapInterrupts(): AbortSignal;
  /** Applies ETCDCTL_* variables and builds the printer; etcdctl does this when it first needs a client. */
  configure(): void;
  printer(): Printer;
  /** A client over --endpoints (or the given ones), as etcdctl's mustClientFromCmd; auth: false leaves --user out. */
  client(endpoints?: readonly string[], options?: { auth?: boolean }): EtcdClient;
  commandTimeoutMs(): number;
}

/** ETCDCTL_<FLAG> sets a global flag not given on the command line (pkg/flags.SetPflagsFromEnv). */
export function applyEnv(ctx: Pick<Context, 'flags' | 'io' | 'env'>, specs: readonly FlagSpec[]): void {
  const used = new Set<string>();
  const alreadySet = new Set<string>();
  for (const spec of specs) {
    const key = flagToEnv(spec.name);
    if (ctx.flags.changed(spec.name)) {
      alreadySet.add(key);
      continue;
    }
    const value = ctx.env[key];
    if (value === undefined || value === '') continue;
    used.add(key);
    try {
      ctx.flags.set(spec, value);
    } catch {
      // etcdctl ignores an environment value that does not parse and keeps the default.
    }
  }
  for (const [key, value] of Object.entries(ctx.env)) {
    if (used.has(key) || key === `${envPrefix}_API`) continue;
    if (alreadySet.has(key)) {
      const text = `conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`;
      ctx.io.stderr(`${capnslogTimestamp(new Date())} C | pkg/flags: ${text}\n`);
      throw new ExitError(Exit.Error);
    }
    if (key.startsWith(`${envPrefix}_`)) {
      ctx.io.stderr(`${capnslogTimestamp(new Date())} W | pkg/flags: unrecognized environment variable ${key}=${value ?? ''}\n`);
    }
  }
}

/** --debug lists every global flag as the environment variable that would set it. */
export function printDebugFlags(ctx: Pick<Context, 'flags' | 'io'>, specs: readonly FlagSpec[]): void {
  for (const spec of specs) {
    ctx.io.stderr(`${flagToEnv(spec.name)}=${flagValueText(ctx.flags, spec)}\n`);
  }
}

function flagValueText(flags: FlagSet, spec: FlagSpec): string {
  switch (spec.kind) {
    case 'bool':
      return String(flags.bool(spec.name));
    case 'string':
      return flags.string(spec.name);
    case 'int64':
      return flags.int64(spec.name).toString();
    case 'duration':
      return goDuration(flags.int64(spec.name));
    case 'stringSlice':
      return `[${flags.stringSlice(spec.name).join(',')}]`;
  }
}

export function checkSupportedFlags(flags: FlagSet): void {
  for (const name of unsupportedFlags) {
    if (flags.changed(name)) throw new ExitError(Exit.BadFeature, `--${name} is not supported by etcdctl-ts yet`);
  }
  if (!flags.bool('insecure-transport')) {
    throw new ExitError(Exit.BadFeature, '--insecure-transport=false (TLS) is not supported by etcdctl-ts yet');
  }
}

export function makePrinter(flags: FlagSet, io: Io, options: Pick<PrinterOptions, 'valueOnly'> = { valueOnly: false }): Printer {
  const printer = newPrinter(flags.string('write-out'), io, { hex: flags.bool('hex'), valueOnly: options.valueOnly });
  if (printer === undefined) throw new ExitError(Exit.BadFeature, 'unsupported output format');
  return printer;
}

export function endpointsFromFlags(flags: FlagSet): string[] {
  return flags.stringSlice('endpoints').map((e) => e.trim());
}

export function durationMs(flags: FlagSet, name: string): number {
  return Number(flags.int64(name) / 1000_000n);
}

/** The user and password from --user name[:password] and --password, as etcdctl's authCfgFromCmd. */
export function authFromFlags(flags: FlagSet): { username: string; password: string } | undefined {
  const user = flags.string('user');
  if (user === '') return undefined;
  const password = flags.string('password');
  if (password !== '') return { username: user, password };
  const colon = user.indexOf(':');
  if (colon < 0) throw new ExitError(Exit.Error, 'etcdctl-ts cannot prompt for a password: use --user name:password or --password');
  return { username: user.slice(0, colon), password: user.slice(colon + 1) };
}

/** The text Go's clientv3 gives an error: etcd's own message, the caller's context error, or gRPC's status text. */
/**
 * The exit code for a failed call: etcdctl authenticates while creating its client, so wrong credentials
 * fail there, as a bad connection (2), whatever the command would have answered.
 */
export function exitCodeFor(err: unknown, code: number): number {
  return err instanceof ClientError && err.kind === 'AuthFailed' ? Exit.BadConnection : code;
}

export function goErrorText(err: unknown): string {
  if (!(err instanceof ClientError)) return err instanceof Error ? err.message : String(err);
  if (err.kind !== undefined) return err.details;
  if (err.code === GrpcCode.DeadlineExceeded && err.details === 'context deadline exceeded') return err.details;
  if (err.code === GrpcCode.Canceled && err.details === 'context canceled') return err.details;
  return `rpc error: code = ${grpcCodeName(err.code)} desc = ${err.details}`;
}

/** What grpc-go's status error says for a failed attempt, as clientv3's retry interceptor logs it. */
function attemptErrorText(failure: AttemptFailure, pinned: boolean): string {
  const e = failure.error;
  if (e.code === GrpcCode.DeadlineExceeded && !e.sent) {
    const host = parseEndpoint(failure.endpoint).target;
    const desc = pinned
      ? `latest balancer error: connection error: desc = "transport: Error while dialing dial tcp ${host}: connect: connection refused"`
      : 'latest balancer error: all SubConns are in TransientFailure';
    return `rpc error: code = DeadlineExceeded desc = ${desc}`;
  }
  return `rpc error: code = ${grpcCodeName(e.code)} desc = ${e.details}`;
}

/** Logs a failed attempt the way clientv3's retry interceptor does (a zap warning on stderr). */
export function attemptLogger(io: Io, endpoints: readonly string[]): (failure: AttemptFailure, pinnedEndpoint?: string) => void {
  const group = `client-${randomUUID()}`;
  const first = endpoints[0] ?? '';
  return (failure, pinnedEndpoint) => {
    const target = pinnedEndpoint !== undefined ? `passthrough:///${pinnedEndpoint}` : `endpoint://${group}/${parseEndpoint(first).target.replace(/^unix:/, '')}`;
    const fields = [
      ['level', zapJsonString('warn')],
      ['ts', zapJsonString(zapTimestamp(new Date()))],
      ['caller', zapJsonString('clientv3/retry_interceptor.go:62')],
      ['msg', zapJsonString('retrying of unary invoker failed')],
      ['target', zapJsonString(target)],
      ['attempt', String(failure.attempt)],
      ['error', zapJsonString(attemptErrorText(failure, pinnedEndpoint !== undefined))],
    ];
    io.stderr(`{${fields.map(([k, v]) => `"${k}":${v}`).join(',')}}\n`);
  };
}
