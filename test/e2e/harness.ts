/**
 * Real-process harness for end-to-end tests: start etcd-compatible members on loopback, wait until they
 * serve, stop / SIGKILL / restart them on the same data dir, and run the real etcdctl against them.
 *
 * Everything here works with ANY binary that takes etcd's flags, so every test can run against real etcd
 * (the oracle) and against etcd-ts with the same code. Nothing sleeps for a fixed time: waits poll a
 * condition and give up at a deadline, and a member that exits while we wait fails at once with its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const limits = {
  readyTimeoutMs: 20_000,
  stopTimeoutMs: 10_000,
  etcdctlTimeoutMs: 20_000,
  pollIntervalMs: 25,
  logTailBytes: 8_000,
} as const;

// ---------------------------------------------------------------------------------------------- targets

export type TargetName = 'etcd' | 'ours';

export interface Target {
  readonly name: TargetName;
  /** Unique in a target list: `etcd`, or `etcd#2` when the same target is listed twice. */
  readonly label: string;
  readonly binary: string;
}

/** The repo root: the nearest ancestor of this file (src or dist/test/e2e) holding our package.json. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'etcd-ts') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no etcd-ts package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export function etcdctlPath(): string {
  return process.env['E2E_ETCDCTL'] ?? '/usr/bin/etcdctl';
}

export function binaryFor(name: TargetName): string {
  if (name === 'etcd') return process.env['E2E_ETCD_BIN'] ?? '/usr/bin/etcd';
  return process.env['E2E_OURS_BIN'] ?? join(repoRoot(), 'bin', 'etcd-ts');
}

/**
 * The targets to test, from E2E_TARGETS (comma-separated; default "etcd,ours"). The first one is the
 * reference that comparison tests hold the others to. A missing binary is an error, never a skip: a
 * suite that silently tests nothing would pass for the wrong reason.
 */
export function targetsFromEnv(): Target[] {
  const raw = process.env['E2E_TARGETS'] ?? 'etcd,ours';
  const names = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new Error(`E2E_TARGETS is empty`);
  const seen = new Map<string, number>();
  return names.map((name) => {
    if (name !== 'etcd' && name !== 'ours') throw new Error(`E2E_TARGETS: unknown target "${name}" (etcd|ours)`);
    const binary = binaryFor(name);
    if (!existsSync(binary)) {
      throw new Error(`E2E_TARGETS includes "${name}" but its binary ${binary} does not exist` +
        (name === 'ours' ? ' (build etcd-ts first, or set E2E_TARGETS=etcd,etcd to check the suite itself)' : ''));
    }
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    return { name, binary, label: count === 1 ? name : `${name}#${count}` };
  });
}

// ------------------------------------------------------------------------------------------------ ports

/**
 * `count` distinct free TCP ports on 127.0.0.1: all listeners are held open together so the kernel
 * cannot hand the same port out twice, then closed for the member to bind.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>(
    (ok, fail) => {
      const server = createServer();
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok(server));
    })));
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('listener has no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((ok) => server.close(() => ok()))));
  return ports;
}

// ------------------------------------------------------------------------------------------------ etcdctl

export interface CtlResult {
  code: number;
  stdout: string;
  /** stdout as bytes, for `-w protobuf`. */
  stdoutBytes: Buffer;
  stderr: string;
}

export interface CtlOptions {
  endpoints: string | readonly string[];
  stdin?: string;
  env?: Readonly<Record<string, string>>;
  timeoutMs?: number;
}

/** Runs the real etcdctl (API v3) with a clean environment, so no ETCDCTL_* of the caller leaks in. */
export function etcdctl(args: readonly string[], options: CtlOptions): Promise<CtlResult> {
  const endpoints = typeof options.endpoints === 'string' ? options.endpoints : options.endpoints.join(',');
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ETCDCTL_API: '3' };
  Object.assign(env, options.env ?? {});
  const child = spawn(etcdctlPath(), [`--endpoints=${endpoints}`, ...args], { env, stdio: 'pipe' });
  return collect(child, { stdin: options.stdin ?? '', timeoutMs: options.timeoutMs ?? limits.etcdctlTimeoutMs,
    what: `etcdctl ${args.join(' ')}` });
}

function collect(child: ChildProcess, options: { stdin: string; timeoutMs: number; what: string }): Promise<CtlResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  child.stdin?.on('error', () => { /* the command may exit before reading its stdin */ });
  child.stdin?.end(options.stdin);
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${options.what}: no exit within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); fail(e); });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      ok({ code: code ?? (signal === null ? -1 : 128), stdout: stdoutBytes.toString('utf8'), stdoutBytes,
        stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

// ------------------------------------------------------------------------------------------------ members

export interface MemberOptions {
  target: Target;
  /** --name; the same name on every target keeps outputs comparable. */
  name?: string;
  /** Extra etcd flags, e.g. ['--max-txn-ops=4']. */
  flags?: readonly string[];
  readyTimeoutMs?: number;
  /**
   * TLS on the client port: the client URL becomes https://, `ctlArgs` (e.g. --cacert, --cert, --key) are
   * what the harness's own etcdctl calls (readiness) pass, and `alsoHttp` adds a plaintext client URL
   * on a second port (httpClientUrl). The TLS flags themselves go in `flags`.
   */
  tls?: { ctlArgs: readonly string[]; alsoHttp?: boolean };
  /** `name:password` for the readiness check once auth is enabled (etcdctl --user). */
  readyUser?: string;
}

/** The caller's environment minus ETCD_* / ETCDCTL_*: etcd reads its flags from ETCD_* variables too. */
function memberEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  // A test runner that dies must not leave servers behind holding ports and temp dirs.
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** One single-member cluster: a real process bound to loopback, with its own temp dir and log file. */
export class Member {
  readonly target: Target;
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly logPath: string;
  readonly #flags: readonly string[];
  readonly #readyTimeoutMs: number;
  readonly #tls: MemberOptions['tls'];
  /** The plaintext client port next to an https one (tls.alsoHttp), else 0. */
  readonly httpClientPort: number;
  readyUser: string | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #lastExit: ExitInfo | undefined;
  #starts = 0;

  private constructor(options: MemberOptions, ports: number[]) {
    this.target = options.target;
    this.name = options.name ?? 'm0';
    const [clientPort, peerPort, httpClientPort] = ports;
    if (clientPort === undefined || peerPort === undefined) throw new Error('two ports needed');
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.#tls = options.tls;
    this.httpClientPort = options.tls?.alsoHttp === true ? httpClientPort ?? 0 : 0;
    this.dir = mkdtempSync(join(tmpdir(), `e2e-${options.target.name}-`));
    this.dataDir = join(this.dir, 'data');
    this.logPath = join(this.dir, 'member.log');
    this.#flags = options.flags ?? [];
    this.#readyTimeoutMs = options.readyTimeoutMs ?? limits.readyTimeoutMs;
    this.readyUser = options.readyUser;
  }

  /** Starts a fresh member and resolves once it serves a linearizable read. */
  static async start(options: MemberOptions): Promise<Member> {
    const member = new Member(options, await freePorts(options.tls?.alsoHttp === true ? 3 : 2));
    try {
      await member.#launch();
    } catch (e) {
      await member.destroy();
      throw e;
    }
    return member;
  }

  get clientUrl(): string { return `${this.#tls !== undefined ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`; }
  get httpClientUrl(): string { return `http://127.0.0.1:${this.httpClientPort}`; }
  get peerUrl(): string { return `http://127.0.0.1:${this.peerPort}`; }
  /** host:port, as etcdctl --endpoints and grpc-js take it. */
  get endpoint(): string { return `127.0.0.1:${this.clientPort}`; }
  get pid(): number | undefined { return this.#child?.pid; }
  get running(): boolean { return this.#child !== undefined; }

  /** etcd's flags for this member; identical on every target. */
  args(): string[] {
    return [
      `--name=${this.name}`,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}${this.httpClientPort !== 0 ? `,${this.httpClientUrl}` : ''}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${this.name}=${this.peerUrl}`,
      ...this.#flags,
    ];
  }

  async #launch(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`${this.target.label}: already running`);
    this.#starts += 1;
    const logFd = openSync(this.logPath, 'a');
    writeSync(logFd, `\n=== e2e harness: start #${this.#starts}: ${this.target.binary} ${this.args().join(' ')}\n`);
    const child = spawn(this.target.binary, this.args(), { stdio: ['ignore', logFd, logFd], env: memberEnv() });
    closeSync(logFd);
    this.#child = child;
    liveChildren.add(child);
    this.#exited = new Promise((ok) => child.once('exit', (code, signal) => {
      this.#lastExit = { code, signal };
      liveChildren.delete(child);
      if (this.#child === child) this.#child = undefined;
      this.#note(`exited code=${code} signal=${signal}`);
      ok();
    }));
    await this.waitReady();
  }

  /** Polls `etcdctl endpoint health` (a linearizable read through the leader) until it succeeds. */
  async waitReady(timeoutMs = this.#readyTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: CtlResult | undefined;
    while (Date.now() < deadline) {
      if (this.#child === undefined) throw new Error(`${this.target.label} exited before ready\n${this.logTail()}`);
      const user = this.readyUser === undefined ? [] : [`--user=${this.readyUser}`];
      last = await this.etcdctl([...(this.#tls?.ctlArgs ?? []), ...user, 'endpoint', 'health', '--dial-timeout=1s', '--command-timeout=1s']);
      if (last.code === 0) return;
      await Promise.race([this.#exited, new Promise((ok) => setTimeout(ok, limits.pollIntervalMs))]);
    }
    throw new Error(`${this.target.label} not ready within ${timeoutMs} ms; last health check: ` +
      `${last?.stdout ?? ''}${last?.stderr ?? ''}\n${this.logTail()}`);
  }

  etcdctl(args: readonly string[], options: Omit<CtlOptions, 'endpoints'> = {}): Promise<CtlResult> {
    return etcdctl(args, { ...options, endpoints: this.endpoint });
  }

  /** How the process last exited, e.g. { code: 0, signal: null } or { code: null, signal: 'SIGKILL' }. */
  get lastExit(): ExitInfo | undefined { return this.#lastExit; }

  /** SIGTERM, then SIGKILL if it has not exited by the deadline; reports whether SIGKILL was needed. */
  async stop(timeoutMs: number = limits.stopTimeoutMs): Promise<{ forced: boolean }> {
    const child = this.#child;
    if (child === undefined) return { forced: false };
    child.kill('SIGTERM');
    const exitedInTime = await Promise.race([
      this.#exited.then(() => true),
      new Promise<boolean>((ok) => setTimeout(() => ok(false), timeoutMs).unref()),
    ]);
    if (!exitedInTime) {
      this.#note(`no exit ${timeoutMs} ms after SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
      await this.#exited;
      return { forced: true };
    }
    return { forced: false };
  }

  /** kill -9: the process gets no chance to flush or clean up. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  /** Starts again on the same data dir and ports, and waits until it serves. */
  async restart(): Promise<void> {
    await this.#launch();
  }

  logTail(bytes: number = limits.logTailBytes): string {
    if (!existsSync(this.logPath)) return `(${this.target.label}: no log)`;
    const text = readFileSync(this.logPath, 'utf8');
    const tail = text.length > bytes ? `...${text.slice(-bytes)}` : text;
    return `----- ${this.target.label} log (${this.logPath}) -----\n${tail}\n----- end of ${this.target.label} log -----`;
  }

  /** Stops the process and removes the temp dir, unless E2E_KEEP is set (to read logs after a run). */
  async destroy(): Promise<void> {
    await this.stop();
    if (process.env['E2E_KEEP'] === undefined) rmSync(this.dir, { recursive: true, force: true });
  }

  #note(text: string): void {
    try {
      const fd = openSync(this.logPath, 'a');
      writeSync(fd, `=== e2e harness: ${text}\n`);
      closeSync(fd);
    } catch {
      // the dir may already be gone after destroy()
    }
  }
}

/** Runs `body`; if it throws, prints every member's log tail first so the failure can be understood. */
export async function withLogsOnFailure<T>(members: readonly Member[], body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    for (const member of members) process.stderr.write(`${member.logTail()}\n`);
    throw e;
  }
}

/** Waits for `condition` to hold, polling, failing with `options.what` at the deadline. */
export async function waitFor(condition: () => Promise<boolean> | boolean,
  options: { what: string; timeoutMs?: number; intervalMs?: number }): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? limits.readyTimeoutMs);
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}`);
    await new Promise((ok) => setTimeout(ok, options.intervalMs ?? limits.pollIntervalMs));
  }
}
