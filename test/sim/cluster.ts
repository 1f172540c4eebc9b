/**
 * The simulated cluster: hosts, the network between them and the round clock. One round delivers the
 * messages that are due, ticks the nodes whose tick falls in it and lets every host take one turn of its
 * loop. Nodes tick at the same rate with a per-node phase, so no two nodes are in lockstep.
 */
import { StateRole } from '../../src/raft/contract.js';
import type { ConfChangeV2, ConfState, Message, NodeId, Snapshot } from '../../src/raft/types.js';
import { MessageType, NONE } from '../../src/raft/types.js';
import { SafetyChecker } from './checkers.js';
import { SimDisk } from './disk.js';
import { SimHost, isMember, type RaftTuning, type SimCore } from './host.js';
import { KvMachine } from './kv-machine.js';
import { SimNetwork, type Envelope } from './network.js';
import { Prng } from './prng.js';
import { ProposalTracker } from './tracker.js';

/** Every limit and timing of the simulated world, named in one place. */
export interface SimConfig {
  readonly seed: number;
  readonly initialVoters: number;
  readonly maxMembers: number;
  readonly roundsPerTick: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly diskLatencyMaxRounds: number;
  readonly snapshotEveryEntries: number;
  readonly keepEntriesAfterSnapshot: number;
  readonly networkQueueMax: number;
  /** Messages a paused node buffers (its socket buffers) before dropping. */
  readonly pausedInboxMax: number;
  readonly keySpace: number;
  readonly traceLinesMax: number;
  /** How the founding members start: from a snapshot holding the configuration, or RawNode.bootstrap(). */
  readonly bootstrap: 'snapshot' | 'entries';
  /** Put the core's own log lines in the trace (slow; for --verbose). */
  readonly logRaft: boolean;
  /** Put every message sent and delivered in the trace (for --messages). */
  readonly traceMessages: boolean;
}

export const DEFAULT_SIM_CONFIG: Omit<SimConfig, 'seed'> = {
  initialVoters: 3,
  maxMembers: 7,
  roundsPerTick: 5,
  electionTicks: 10,
  heartbeatTicks: 1,
  diskLatencyMaxRounds: 3,
  snapshotEveryEntries: 64,
  keepEntriesAfterSnapshot: 16,
  networkQueueMax: 50_000,
  pausedInboxMax: 1_000,
  keySpace: 8,
  traceLinesMax: 400,
  bootstrap: 'snapshot',
  logRaft: false,
  traceMessages: false,
};

/** The index of the log's first real entry is BOOTSTRAP_INDEX + 1: every founding member starts from a snapshot. */
export const BOOTSTRAP_INDEX = 2;

interface Report {
  readonly node: NodeId;
  readonly peer: NodeId;
  readonly kind: 'unreachable' | 'snapshot-finish' | 'snapshot-failure';
}

export class SimCluster {
  readonly config: SimConfig;
  readonly core: SimCore;
  readonly tuning: RaftTuning;
  readonly checker = new SafetyChecker();
  readonly tracker = new ProposalTracker();
  readonly network: SimNetwork<Message>;
  readonly hosts = new Map<NodeId, SimHost>();
  round = 0;
  readonly #hostRng: Prng;
  readonly #tickPhase = new Map<NodeId, number>();
  readonly #pausedUntil = new Map<NodeId, number>();
  readonly #inbox = new Map<NodeId, Message[]>();
  readonly #stopAt = new Map<NodeId, number>();
  readonly #stopped = new Set<NodeId>();
  #reports: Report[] = [];
  #nextNodeId: bigint;
  /** The newest configuration any node applied, and where. */
  latestConf: { index: number; cs: ConfState };
  readonly traceLines: string[] = [];
  verbose = false;

  constructor(config: SimConfig, options: { core: SimCore; tuning: RaftTuning }) {
    this.config = config;
    this.core = options.core;
    this.tuning = options.tuning;
    this.network = new SimNetwork<Message>(Prng.stream(config.seed, 'network'), { queueMax: config.networkQueueMax });
    this.#hostRng = Prng.stream(config.seed, 'hosts');
    const voters: NodeId[] = [];
    for (let i = 1; i <= config.initialVoters; i++) voters.push(BigInt(i));
    this.#nextNodeId = BigInt(config.initialVoters + 1);
    const cs: ConfState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    this.latestConf = { index: BOOTSTRAP_INDEX, cs };
    const snapshot: Snapshot = {
      data: KvMachine.empty(BOOTSTRAP_INDEX).serialize(),
      metadata: { confState: cs, index: BOOTSTRAP_INDEX, term: 1 },
    };
    for (const id of voters) {
      if (config.bootstrap === 'entries') {
        this.#addHost(id, SimDisk.empty(), voters).start();
        continue;
      }
      const disk = new SimDisk({
        snapshot,
        hardState: { term: 1, vote: NONE, commit: BOOTSTRAP_INDEX },
        firstIndex: BOOTSTRAP_INDEX + 1,
        entries: [],
      });
      this.#addHost(id, disk, null).start();
    }
  }

  trace(line: string): void {
    const text = `[r${this.round} t${Math.floor(this.round / this.config.roundsPerTick)}] ${line}`;
    if (this.verbose) console.log(text);
    this.traceLines.push(text);
    if (this.traceLines.length > this.config.traceLinesMax) this.traceLines.splice(0, this.traceLines.length >> 1);
  }

  #addHost(id: NodeId, disk: SimDisk, bootstrapPeers: readonly NodeId[] | null): SimHost {
    const seed = this.config.seed;
    const host = new SimHost({
      id,
      disk,
      core: this.core,
      checker: this.checker,
      tracker: this.tracker,
      rng: Prng.stream(seed, `host/${id}`),
      raftRng: (inc) => Prng.stream(seed, `raft/${id}/${inc}`),
      tuning: this.tuning,
      diskLatencyMaxRounds: this.config.diskLatencyMaxRounds,
      snapshotEveryEntries: this.config.snapshotEveryEntries,
      keepEntriesAfterSnapshot: this.config.keepEntriesAfterSnapshot,
      bootstrapPeers,
      send: (m) => this.#send(m),
      onConfApplied: (_node, index, cs) => this.#onConfApplied(index, cs),
      trace: (line) => this.trace(line),
      logRaft: this.config.logRaft,
    });
    this.hosts.set(id, host);
    this.#tickPhase.set(id, this.#hostRng.intn(this.config.roundsPerTick));
    return host;
  }

  /** A fresh id, never used before (ids of removed members are not reused). */
  newNodeId(): NodeId {
    return this.#nextNodeId++;
  }

  #send(m: Message): void {
    const outcome = this.network.send(m.from, m.to, m, this.round);
    if (this.config.traceMessages) this.trace(`send ${describeMessage(m)}: ${outcome}`);
    if (outcome === 'queued') return;
    if (m.type === MessageType.Snap) this.#reports.push({ node: m.from, peer: m.to, kind: 'snapshot-failure' });
    else if (outcome === 'blocked' && m.type === MessageType.App) {
      this.#reports.push({ node: m.from, peer: m.to, kind: 'unreachable' });
    }
  }

  #onCut(e: Envelope<Message>): void {
    if (e.msg.type === MessageType.Snap) this.#reports.push({ node: e.from, peer: e.to, kind: 'snapshot-failure' });
    else if (e.msg.type === MessageType.App) this.#reports.push({ node: e.from, peer: e.to, kind: 'unreachable' });
  }

  #onConfApplied(index: number, cs: ConfState): void {
    if (index > this.latestConf.index) this.latestConf = { index, cs };
    const ids = [...cs.voters, ...cs.learners, ...cs.votersOutgoing, ...cs.learnersNext];
    for (const id of ids) {
      if (this.hosts.has(id)) continue;
      this.trace(`n${id} joins (empty disk)`);
      this.#addHost(id, SimDisk.empty(), null).start();
    }
  }

  isPaused(id: NodeId): boolean {
    return this.#pausedUntil.has(id);
  }

  isStopped(id: NodeId): boolean {
    return this.#stopped.has(id);
  }

  /** One round of the world. Safety checks run inside, as the hosts report what they did. */
  runRound(): void {
    this.round++;
    this.#deliverReports();
    for (const e of this.network.deliverDue(this.round, (x) => this.#onCut(x))) this.#deliver(e);
    this.#resumePaused();
    const rpt = this.config.roundsPerTick;
    for (const host of this.hosts.values()) {
      if (!host.up || this.#pausedUntil.has(host.id)) continue;
      try {
        if ((this.round + (this.#tickPhase.get(host.id) ?? 0)) % rpt === 0) host.tick();
        host.process(this.round);
      } catch (e) {
        this.trace(`n${host.id} threw while ticking or handling a Ready: ${host.describe()}`);
        throw e;
      }
    }
    this.#stopRemoved();
  }

  #deliver(e: Envelope<Message>): void {
    const host = this.hosts.get(e.to);
    if (this.config.traceMessages) this.trace(`recv ${describeMessage(e.msg)}${host?.up === true ? '' : ' (node down)'}`);
    if (host === undefined || !host.up) {
      if (e.msg.type === MessageType.Snap) this.#reports.push({ node: e.from, peer: e.to, kind: 'snapshot-failure' });
      return;
    }
    if (this.#pausedUntil.has(e.to)) {
      // The socket takes it: the sender's transport counts a snapshot as sent (etcd reports on send).
      const inbox = this.#inbox.get(e.to) ?? [];
      const fits = inbox.length < this.config.pausedInboxMax;
      if (fits) inbox.push(e.msg);
      this.#inbox.set(e.to, inbox);
      if (e.msg.type === MessageType.Snap) {
        this.#reports.push({ node: e.from, peer: e.to, kind: fits ? 'snapshot-finish' : 'snapshot-failure' });
      }
      return;
    }
    try {
      host.step(e.msg);
    } catch (err) {
      this.trace(`n${host.id} threw while stepping ${describeMessage(e.msg)}: ${host.describe()}`);
      throw err;
    }
    if (e.msg.type === MessageType.Snap) this.#reports.push({ node: e.from, peer: e.to, kind: 'snapshot-finish' });
  }

  /** Transport feedback reaches the sender a round later, never in the middle of its Ready. */
  #deliverReports(): void {
    const reports = this.#reports;
    this.#reports = [];
    for (const r of reports) {
      const host = this.hosts.get(r.node);
      if (host === undefined || !host.up) continue;
      if (r.kind === 'unreachable') host.reportUnreachable(r.peer);
      else host.reportSnapshot(r.peer, r.kind === 'snapshot-finish' ? 'finish' : 'failure');
    }
  }

  #resumePaused(): void {
    for (const [id, until] of this.#pausedUntil) {
      if (until > this.round) continue;
      this.#pausedUntil.delete(id);
      const host = this.hosts.get(id);
      const inbox = this.#inbox.get(id) ?? [];
      this.#inbox.delete(id);
      this.trace(`n${id} resumes with ${inbox.length} buffered messages`);
      for (const m of inbox) host?.step(m);
    }
  }

  /** A node that applied its own removal shuts down a little later, like an etcd member does. */
  #stopRemoved(): void {
    for (const host of this.hosts.values()) {
      if (host.removedAtIndex === 0 || this.#stopped.has(host.id)) continue;
      const at = this.#stopAt.get(host.id);
      if (at === undefined) {
        const delay = this.#hostRng.intn(this.config.electionTicks * this.config.roundsPerTick * 2);
        this.#stopAt.set(host.id, this.round + delay);
      } else if (at <= this.round) {
        this.stopNode(host.id);
      }
    }
  }

  stopNode(id: NodeId): void {
    const host = this.hosts.get(id);
    if (host === undefined || this.#stopped.has(id)) return;
    host.stop();
    this.#stopped.add(id);
    this.#pausedUntil.delete(id);
  }

  run(rounds: number): void {
    for (let i = 0; i < rounds; i++) this.runRound();
  }

  // --- faults --------------------------------------------------------------------------------------

  crash(id: NodeId, options: { tear: boolean }): void {
    const host = this.hosts.get(id);
    if (host === undefined || !host.up) return;
    this.trace(`n${id} crashes`);
    host.crash(options);
    this.#pausedUntil.delete(id);
    this.#inbox.delete(id);
  }

  restart(id: NodeId): void {
    const host = this.hosts.get(id);
    if (host === undefined || host.up || this.#stopped.has(id)) return;
    host.start();
  }

  pause(id: NodeId, rounds: number): void {
    const host = this.hosts.get(id);
    if (host === undefined || !host.up) return;
    this.trace(`n${id} paused for ${rounds} rounds`);
    this.#pausedUntil.set(id, this.round + rounds);
  }

  resumeAll(): void {
    for (const id of [...this.#pausedUntil.keys()]) this.#pausedUntil.set(id, this.round);
    this.#resumePaused();
  }

  // --- clients -------------------------------------------------------------------------------------

  propose(via: NodeId, options: { key: number; strict: boolean }): number {
    const host = this.hosts.get(via);
    const id = this.tracker.newId();
    this.tracker.onProposed({ id, node: via, round: this.round, strict: options.strict });
    if (host === undefined || !host.up) {
      this.tracker.onDropped(id, 'node down');
      return id;
    }
    const r = host.propose(id, options.key);
    if (this.verbose) this.trace(`n${via} propose #${id} key=${options.key}: ${r}`);
    return id;
  }

  read(via: NodeId, options: { key: number; strict: boolean }): number {
    const host = this.hosts.get(via);
    const id = this.tracker.newId();
    const mustSeeIndex = this.checker.readStart(options.key);
    this.tracker.onRead({ id, node: via, key: options.key, round: this.round, mustSeeIndex, strict: options.strict });
    if (host !== undefined && host.up) host.readIndex(id);
    return id;
  }

  proposeConfChange(via: NodeId, cc: ConfChangeV2): 'ok' | 'dropped' | 'down' {
    const host = this.hosts.get(via);
    if (host === undefined || !host.up) return 'down';
    const r = host.proposeConfChange(cc);
    this.trace(`n${via} proposes conf change ${describeConfChange(cc)}: ${r}`);
    return r;
  }

  transferLeader(via: NodeId, to: NodeId): void {
    const host = this.hosts.get(via);
    if (host === undefined || !host.up) return;
    this.trace(`n${via} transfers leadership to n${to}`);
    host.raw.transferLeader(to);
  }

  // --- views ---------------------------------------------------------------------------------------

  /** The running, unpaused leader with the highest term, if any. */
  leader(): SimHost | null {
    let best: SimHost | null = null;
    for (const h of this.hosts.values()) {
      if (!h.up || this.#pausedUntil.has(h.id) || h.role !== StateRole.Leader) continue;
      if (best === null || h.term > best.term) best = h;
    }
    return best;
  }

  /** Hosts that are members of the configuration cs and have not been stopped. */
  members(cs: ConfState): SimHost[] {
    return [...this.hosts.values()].filter((h) => isMember(cs, h.id) && !this.#stopped.has(h.id));
  }

  /** One line per node, for liveness failures. */
  describe(): string {
    return [...this.hosts.values()]
      .map((h) => `${h.describe()}${this.#stopped.has(h.id) ? ' [stopped]' : ''}${this.#pausedUntil.has(h.id) ? ' [paused]' : ''}`)
      .join('\n');
  }

  upHosts(): SimHost[] {
    return [...this.hosts.values()].filter((h) => h.up);
  }
}

const MESSAGE_NAMES = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k]));

/** One line per message: type, route, term, log position, entries carried, commit, rejection. */
export function describeMessage(m: Message): string {
  const first = m.entries[0];
  const last = m.entries[m.entries.length - 1];
  const ents = first === undefined || last === undefined ? '' : ` ents=${first.index}..${last.index}`;
  const snap = m.snapshot === null ? '' : ` snap=${m.snapshot.metadata.index}/${m.snapshot.metadata.term}`;
  const rej = m.reject ? ` REJECT hint=${m.rejectHint}` : '';
  return `${MESSAGE_NAMES[m.type] ?? m.type} ${m.from}->${m.to} t${m.term} i=${m.index} lt=${m.logTerm} c=${m.commit}${ents}${snap}${rej}`;
}

export function describeConfChange(cc: ConfChangeV2): string {
  const letters = ['v', 'r', 'u', 'l'];
  const changes = cc.changes.map((c) => `${letters[c.type] ?? '?'}${c.nodeId}`).join(' ');
  return `${['auto', 'joint-implicit', 'joint-explicit'][cc.transition] ?? '?'}(${changes || 'leave'})`;
}
