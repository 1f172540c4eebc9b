/**
 * Multi-member clusters of real processes on loopback, started with etcd's own bootstrap flags, for any
 * binary that takes them (real etcd as the oracle, etcd-ts as the system under test).
 *
 * harness.ts's Member is a single-member cluster whose flags are fixed at construction; a cluster member
 * needs the whole initial cluster in its flags before any member starts, may listen for peers on one port
 * while advertising another (a proxy's), may be a learner (which refuses the linearizable read harness.ts
 * waits on), and may be paused with SIGSTOP. Hence this small class of its own; ports, etcdctl and waits
 * come from harness.ts.
 *
 * Every wait polls a condition up to a deadline; a member that exits while we wait fails at once with the
 * tail of its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdctl, freePorts, limits, type CtlOptions, type CtlResult, type ExitInfo, type Target } from '../harness.js';
import { MemberRpc, withRpc } from './rpc.js';
import type { StatusResponse } from '../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { PeerProxy } from './tcp-proxy.js';

export const clusterLimits = {
  /** A member of a cluster needs a quorum up before it serves: all start together, so allow for all. */
  readyTimeoutMs: 30_000,
  leaderTimeoutMs: 15_000,
  convergeTimeoutMs: 30_000,
  statusDeadlineMs: 1_000,
  pollIntervalMs: 50,
} as const;

/**
 * Fast raft timing for loopback: etcd requires election >= 5 x heartbeat. Tests derive their time bounds
 * from these two numbers, never from literals of their own.
 */
export const timing = { heartbeatMs: 50, electionMs: 500 } as const;
export const timingFlags = [`--heartbeat-interval=${timing.heartbeatMs}`, `--election-timeout=${timing.electionMs}`];

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  // A runner that dies must not leave members behind (a SIGSTOPped one would never exit on SIGTERM).
  for (const child of liveChildren) child.kill('SIGKILL');
});

/** etcd reads ETCD_* variables as flags: the caller's own must not leak into a member. */
function memberEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
  return { ...base, ...extra };
}

export interface Bootstrap {
  /** name=peer-url,...: the value of --initial-cluster (or ETCD_INITIAL_CLUSTER). */
  initialCluster: string;
  state: 'new' | 'existing';
  token: string;
  /** Pass the bootstrap as ETCD_* variables instead of flags (what `etcdctl member add` prints). */
  viaEnv?: boolean;
}

export interface MemberSpec {
  target: Target;
  name: string;
  /** Flags for every start, e.g. timingFlags or --snapshot-count. */
  flags: readonly string[];
  /** The port other members dial for this one; the member's own peer port unless a proxy sits in front. */
  advertisedPeerPort?: number;
  /** https for peer TLS (the certificate flags go in `flags`); http by default. */
  peerScheme?: 'http' | 'https';
}

/** One member process; start, kill, pause and restart it on the same data dir. */
export class ClusterMember {
  readonly target: Target;
  readonly name: string;
  readonly clientPort: number;
  readonly dir: string;
  readonly dataDir: string;
  readonly logPath: string;
  #peerPort: number;
  #advertisedPeerPort: number;
  readonly #flags: readonly string[];
  readonly #peerScheme: 'http' | 'https';
  #bootstrap: Bootstrap | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #lastExit: ExitInfo | undefined;
  #paused = false;
  #starts = 0;

  private constructor(spec: MemberSpec, ports: { client: number; peer: number }) {
    this.target = spec.target;
    this.name = spec.name;
    this.clientPort = ports.client;
    this.#peerPort = ports.peer;
    this.#advertisedPeerPort = spec.advertisedPeerPort ?? ports.peer;
    this.#flags = spec.flags;
    this.#peerScheme = spec.peerScheme ?? 'http';
    this.dir = mkdtempSync(join(tmpdir(), `e2e-cluster-${spec.target.name}-${spec.name}-`));
    this.dataDir = join(this.dir, 'data');
    this.logPath = join(this.dir, 'member.log');
  }

  /** Allocates ports and a temp dir; the process starts with launch(). */
  static async create(spec: Omit<MemberSpec, 'advertisedPeerPort'>,
    options: { advertise?: (peerPort: number) => Promise<number> } = {}): Promise<ClusterMember> {
    const [client, peer] = await freePorts(2);
    if (client === undefined || peer === undefined) throw new Error('two ports needed');
    const advertisedPeerPort = options.advertise === undefined ? peer : await options.advertise(peer);
    return new ClusterMember({ ...spec, advertisedPeerPort }, { client, peer });
  }

  get clientUrl(): string { return `http://127.0.0.1:${this.clientPort}`; }
  get peerPort(): number { return this.#peerPort; }
  /** The URL the cluster knows this member by (--initial-advertise-peer-urls). */
  get peerUrl(): string { return `${this.#peerScheme}://127.0.0.1:${this.#advertisedPeerPort}`; }
  get endpoint(): string { return `127.0.0.1:${this.clientPort}`; }
  get pid(): number | undefined { return this.#child?.pid; }
  get running(): boolean { return this.#child !== undefined; }
  get paused(): boolean { return this.#paused; }

  args(): string[] {
    const bootstrap = this.#bootstrap;
    if (bootstrap === undefined) throw new Error(`${this.name}: no bootstrap given`);
    const initial = bootstrap.viaEnv === true ? [] : [
      `--name=${this.name}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${bootstrap.initialCluster}`,
      `--initial-cluster-state=${bootstrap.state}`,
      `--initial-cluster-token=${bootstrap.token}`,
    ];
    return [
      ...initial,
      `--data-dir=${this.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.#peerScheme}://127.0.0.1:${this.#peerPort}`,
      ...this.#flags,
    ];
  }

  /** The ETCD_* variables a bootstrap via environment sets (as printed by `etcdctl member add`). */
  #env(): Record<string, string> {
    const bootstrap = this.#bootstrap;
    if (bootstrap?.viaEnv !== true) return {};
    return {
      ETCD_NAME: this.name,
      ETCD_INITIAL_ADVERTISE_PEER_URLS: this.peerUrl,
      ETCD_INITIAL_CLUSTER: bootstrap.initialCluster,
      ETCD_INITIAL_CLUSTER_STATE: bootstrap.state,
      ETCD_INITIAL_CLUSTER_TOKEN: bootstrap.token,
    };
  }

  /** Spawns the process without waiting for it to serve (members of a new cluster need each other). */
  launch(bootstrap?: Bootstrap): void {
    if (this.#child !== undefined) throw new Error(`${this.name}: already running`);
    if (bootstrap !== undefined) this.#bootstrap = bootstrap;
    this.#starts += 1;
    const env = this.#env();
    const logFd = openSync(this.logPath, 'a');
    writeSync(logFd, `\n=== e2e cluster: start #${this.#starts}: ${JSON.stringify(env)} ` +
      `${this.target.binary} ${this.args().join(' ')}\n`);
    const child = spawn(this.target.binary, this.args(), { stdio: ['ignore', logFd, logFd], env: memberEnv(env) });
    closeSync(logFd);
    this.#child = child;
    this.#paused = false;
    liveChildren.add(child);
    this.#exited = new Promise((ok) => child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      this.#lastExit = { code, signal };
      if (this.#child === child) this.#child = undefined;
      this.#note(`exited code=${code} signal=${signal}`);
      ok();
    }));
  }

  /**
   * Waits until the member serves: a voter answers `endpoint health` (a linearizable read, so it has a
   * leader and has caught up with its commit index); a learner refuses that read, so for it Status must
   * answer.
   */
  async waitServing(options: { learner?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? clusterLimits.readyTimeoutMs);
    const probe = options.learner === true ? ['endpoint', 'status'] : ['endpoint', 'health'];
    let last: CtlResult | undefined;
    while (Date.now() < deadline) {
      if (this.#child === undefined) throw new Error(`${this.name} (${this.target.label}) exited before serving\n${this.logTail()}`);
      last = await this.etcdctl([...probe, '--dial-timeout=1s', '--command-timeout=1s']);
      if (last.code === 0) return;
      await Promise.race([this.#exited, new Promise((ok) => setTimeout(ok, limits.pollIntervalMs))]);
    }
    throw new Error(`${this.name} (${this.target.label}) not serving within ${options.timeoutMs ?? clusterLimits.readyTimeoutMs} ms; ` +
      `last ${probe.join(' ')}: ${last?.stdout ?? ''}${last?.stderr ?? ''}\n${this.logTail()}`);
  }

  etcdctl(args: readonly string[], options: Omit<CtlOptions, 'endpoints'> = {}): Promise<CtlResult> {
    return etcdctl(args, { ...options, endpoints: this.endpoint });
  }

  status(deadlineMs: number = clusterLimits.statusDeadlineMs): Promise<StatusResponse> {
    return withRpc(this.endpoint, (rpc) => rpc.status({ deadlineMs }));
  }

  rpc(): MemberRpc {
    return new MemberRpc(this.endpoint);
  }

  /** How the process last exited, e.g. { code: 0, signal: null }. */
  get lastExit(): ExitInfo | undefined { return this.#lastExit; }

  /** Waits for the process to exit on its own (a removed member shuts itself down); false at the deadline. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    if (this.#child === undefined) return true;
    return Promise.race([this.#exited.then(() => true),
      new Promise<boolean>((ok) => setTimeout(() => ok(false), timeoutMs).unref())]);
  }

  /** kill -9: no chance to flush or say goodbye. Works on a paused process too. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    child.kill('SIGKILL');
    await this.#exited;
    this.#paused = false;
  }

  /** SIGTERM (after SIGCONT, or it would never run its handler), SIGKILL at the deadline. */
  async stop(timeoutMs: number = limits.stopTimeoutMs): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (this.#paused) this.resume();
    child.kill('SIGTERM');
    const inTime = await Promise.race([this.#exited.then(() => true),
      new Promise<boolean>((ok) => setTimeout(() => ok(false), timeoutMs).unref())]);
    if (!inTime) {
      this.#note(`no exit ${timeoutMs} ms after SIGTERM: SIGKILL`);
      child.kill('SIGKILL');
      await this.#exited;
    }
  }

  /** SIGSTOP: the process keeps its sockets and memory but runs no code, like a long GC pause or a VM freeze. */
  pause(): void {
    const child = this.#child;
    if (child === undefined) throw new Error(`${this.name}: not running`);
    child.kill('SIGSTOP');
    this.#paused = true;
    this.#note('SIGSTOP');
  }

  resume(): void {
    const child = this.#child;
    if (child === undefined) throw new Error(`${this.name}: not running`);
    child.kill('SIGCONT');
    this.#paused = false;
    this.#note('SIGCONT');
  }

  /** Starts again on the same data dir (etcd ignores the --initial-* flags once a data dir exists). */
  async restart(options: { learner?: boolean } = {}): Promise<void> {
    this.launch();
    await this.waitServing(options);
  }

  /** Listens for peers on another port from the next start on (the `member update` flow). */
  movePeerPort(options: { listen: number; advertise: number }): void {
    if (this.#child !== undefined) throw new Error(`${this.name}: stop it before moving its peer port`);
    this.#peerPort = options.listen;
    this.#advertisedPeerPort = options.advertise;
  }

  logTail(bytes: number = limits.logTailBytes): string {
    if (!existsSync(this.logPath)) return `(${this.name}: no log)`;
    const text = readFileSync(this.logPath, 'utf8');
    const tail = text.length > bytes ? `...${text.slice(-bytes)}` : text;
    return `----- ${this.name} (${this.target.label}) log (${this.logPath}) -----\n${tail}\n----- end of ${this.name} log -----`;
  }

  async destroy(): Promise<void> {
    if (this.#paused) await this.kill();
    await this.stop();
    if (process.env['E2E_KEEP'] === undefined) rmSync(this.dir, { recursive: true, force: true });
  }

  #note(text: string): void {
    try {
      const fd = openSync(this.logPath, 'a');
      writeSync(fd, `=== e2e cluster: ${text}\n`);
      closeSync(fd);
    } catch {
      // the dir may already be gone after destroy()
    }
  }
}

// ------------------------------------------------------------------------------------------------ cluster

export interface ClusterOptions {
  target: Target;
  /** Names of the initial members, e.g. ['m1', 'm2', 'm3']; the same names on every target. */
  names: readonly string[];
  /** Flags for every member; timingFlags when not given. */
  flags?: readonly string[];
  token?: string;
  /** When given, every member advertises a port of this proxy for its peers. */
  proxy?: PeerProxy;
  /** https: peer TLS (certificate flags in `flags` / `memberFlags`). */
  peerScheme?: 'http' | 'https';
  /** Flags for one member on top of `flags` (e.g. its own peer certificate). */
  memberFlags?: (name: string) => readonly string[];
}

export interface LeaderView {
  leader: ClusterMember;
  term: bigint;
}

/** A set of members started together with static bootstrap; members may join and leave later. */
export class Cluster {
  readonly target: Target;
  readonly token: string;
  readonly flags: readonly string[];
  readonly proxy: PeerProxy | undefined;
  readonly members: ClusterMember[] = [];
  readonly #peerScheme: 'http' | 'https';
  readonly #memberFlags: (name: string) => readonly string[];

  private constructor(options: ClusterOptions) {
    this.target = options.target;
    this.token = options.token ?? 'e2e-cluster';
    this.flags = options.flags ?? timingFlags;
    this.proxy = options.proxy;
    this.#peerScheme = options.peerScheme ?? 'http';
    this.#memberFlags = options.memberFlags ?? (() => []);
    this.proxy?.identifyBy(() => this.pids());
  }

  /** Starts every member with --initial-cluster-state new and waits until each one serves. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    try {
      for (const name of options.names) await cluster.create(name);
      const bootstrap: Bootstrap = { initialCluster: cluster.initialCluster(), state: 'new', token: cluster.token };
      for (const member of cluster.members) member.launch(bootstrap);
      await Promise.all(cluster.members.map((m) => m.waitServing()));
    } catch (e) {
      await cluster.destroy();
      throw e;
    }
    return cluster;
  }

  /** A member with ports and a data dir (and a proxy route), not started: launch it after `member add`. */
  async create(name: string): Promise<ClusterMember> {
    if (this.members.some((m) => m.name === name)) throw new Error(`member ${name} exists`);
    const proxy = this.proxy;
    const member = await ClusterMember.create({
      target: this.target, name, flags: [...this.flags, ...this.#memberFlags(name)], peerScheme: this.#peerScheme,
    },
      proxy === undefined ? {} : { advertise: (peerPort) => proxy.route(name, peerPort) });
    this.members.push(member);
    return member;
  }

  member(name: string): ClusterMember {
    const member = this.members.find((m) => m.name === name);
    if (member === undefined) throw new Error(`no member ${name}`);
    return member;
  }

  running(): ClusterMember[] {
    return this.members.filter((m) => m.running);
  }

  /** name=peer-url for the given members (all by default), as --initial-cluster takes it. */
  initialCluster(members: readonly ClusterMember[] = this.members): string {
    return members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  }

  endpoints(members: readonly ClusterMember[] = this.running()): string[] {
    return members.map((m) => m.endpoint);
  }

  /** Member PIDs by name, for the proxy to tell who dialed. */
  pids(): Map<number, string> {
    const out = new Map<number, string>();
    for (const m of this.members) if (m.pid !== undefined) out.set(m.pid, m.name);
    return out;
  }

  /** Member ids by name, as the cluster reports them (MemberList from any running member). */
  async ids(): Promise<Map<string, bigint>> {
    const from = this.running().find((m) => !m.paused);
    if (from === undefined) throw new Error('no running member to ask for the member list');
    const res = await withRpc(from.endpoint, (rpc) => rpc.memberList());
    return new Map(res.members.filter((m) => m.name !== '').map((m) => [m.name, m.ID]));
  }

  /**
   * Waits until every member in `among` (the running, unpaused ones by default) names the same leader,
   * and that leader is one of them; returns it with its term.
   */
  async waitLeader(options: { among?: readonly ClusterMember[]; timeoutMs?: number; not?: ClusterMember } = {}): Promise<LeaderView> {
    const among = options.among ?? this.running().filter((m) => !m.paused);
    const deadline = Date.now() + (options.timeoutMs ?? clusterLimits.leaderTimeoutMs);
    let last = '';
    for (;;) {
      const seen = await Promise.all(among.map((m) => m.status().then((s) => ({ m, s }), (e: unknown) => ({ m, e }))));
      const views = seen.flatMap((v) => ('s' in v ? [{ member: v.m, status: v.s }] : []));
      const leaderId = views[0]?.status.leader;
      const leader = views.find((v) => v.status.header?.memberId === leaderId)?.member;
      if (views.length === among.length && leaderId !== undefined && leaderId !== 0n && leader !== undefined &&
        leader !== options.not && views.every((v) => v.status.leader === leaderId)) {
        const term = views.find((v) => v.member === leader)?.status.raftTerm ?? 0n;
        return { leader, term };
      }
      last = seen.map((v) => `${v.m.name}: ${'s' in v ? `leader=${v.s.leader.toString(16)} term=${v.s.raftTerm}` : String(v.e)}`).join('; ');
      if (Date.now() > deadline) throw new Error(`no agreed leader among ${among.map((m) => m.name).join(',')}: ${last}`);
      await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
    }
  }

  /**
   * Waits until every member in `members` is at the same revision and every voter reports the same HashKV
   * there (etcd 3.4 refuses HashKV on a learner: "rpc not supported for learner"; a learner must only be at
   * that revision); fails at the deadline with what each one reported last.
   */
  async waitConverged(options: { members?: readonly ClusterMember[]; timeoutMs?: number } = {}): Promise<{ revision: bigint; hash: number }> {
    const members = options.members ?? this.running();
    const deadline = Date.now() + (options.timeoutMs ?? clusterLimits.convergeTimeoutMs);
    let last = '';
    for (;;) {
      const statuses = await Promise.all(members.map((m) => m.status().then((s) => s, () => undefined)));
      const revisions = statuses.map((s) => s?.header?.revision ?? -1n);
      const revision = revisions[0] ?? -1n;
      if (revision > 0n && revisions.every((r) => r === revision)) {
        const voters = members.filter((_m, i) => statuses[i]?.isLearner !== true);
        const hashes = await Promise.all(voters.map((m) => withRpc(m.endpoint, (rpc) => rpc.hashKV(revision))
          .then((r) => ({ hash: r.hash, at: r.header?.revision ?? -1n }), (e: unknown) => ({ hash: -1, at: -1n, e }))));
        const first = hashes[0];
        if (first !== undefined && first.hash >= 0 && hashes.every((h) => h.hash === first.hash && h.at === revision)) {
          return { revision, hash: first.hash };
        }
        last = `at revision ${revision}: ` + hashes.map((h, i) => `${voters[i]?.name}: hash=${h.hash} rev=${h.at}` +
          ('e' in h ? ` ${String(h.e)}` : '')).join('; ');
      } else {
        last = `revisions: ${revisions.map((r, i) => `${members[i]?.name}=${r}`).join(' ')}`;
      }
      if (Date.now() > deadline) throw new Error(`members did not converge: ${last}`);
      await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
    }
  }

  /**
   * The term of the member that reports itself leader, asking every running member and ignoring those that
   * do not answer (one that was just removed is shutting down).
   */
  async leaderTerm(timeoutMs: number = clusterLimits.leaderTimeoutMs): Promise<bigint> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const statuses = await Promise.all(this.running().filter((m) => !m.paused).map((m) => m.status().then((s) => s, () => undefined)));
      const leader = statuses.find((s) => s !== undefined && s.leader !== 0n && s.leader === s.header?.memberId);
      if (leader !== undefined) return leader.raftTerm;
      if (Date.now() > deadline) throw new Error('no member reports itself leader');
      await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
    }
  }

  /** Stops and forgets a member (after `member remove`). */
  async discard(member: ClusterMember): Promise<void> {
    await member.destroy();
    this.members.splice(this.members.indexOf(member), 1);
  }

  logTails(): string {
    return this.members.map((m) => m.logTail()).join('\n');
  }

  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.destroy()));
  }
}

/** Runs `body` with a cluster; prints every member's log tail if it throws, and always tears the cluster down. */
export async function withCluster<T>(options: ClusterOptions, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = await Cluster.start(options);
  try {
    return await body(cluster);
  } catch (e) {
    process.stderr.write(`${cluster.logTails()}\n`);
    throw e;
  } finally {
    await cluster.destroy();
  }
}
