/**
 * One simulation run per seed. The seed picks a profile first (swarm testing: each run turns on its own
 * mix of faults at its own intensities, so rare combinations get exercised), then phase one runs client
 * traffic under faults with every safety check live, and phase two heals everything and demands
 * liveness: a leader within a bound, a converged cluster, and fresh writes and reads that complete.
 */
import { StateRole } from '../../src/raft/contract.js';
import type { ConfChangeSingle, ConfChangeV2, ConfState, NodeId } from '../../src/raft/types.js';
import { ConfChangeTransition, ConfChangeType, NONE } from '../../src/raft/types.js';
import { SimCluster, DEFAULT_SIM_CONFIG, type SimConfig } from './cluster.js';
import type { RaftTuning, SimCore, SimHost } from './host.js';
import type { LinkFaults } from './network.js';
import { Prng } from './prng.js';
import type { TrackerSummary } from './tracker.js';
import { SimViolation, violation } from './violation.js';

export interface Profile {
  readonly initialVoters: number;
  readonly diskLatencyMaxRounds: number;
  /** How often hosts snapshot their state machine and compact (small: leaders send many snapshots). */
  readonly snapshotEveryEntries: number;
  readonly bootstrap: 'snapshot' | 'entries';
  readonly faults: LinkFaults;
  readonly proposeProb: number;
  readonly readProb: number;
  /** Chance per round of a fault or membership event. */
  readonly eventProb: number;
  readonly crashes: boolean;
  readonly tornWrites: boolean;
  readonly partitions: boolean;
  readonly pauses: boolean;
  readonly confChanges: boolean;
  readonly transfers: boolean;
  readonly tuning: RaftTuning;
}

export interface RunOptions {
  /** Rounds of phase one (faults). */
  readonly steps: number;
  readonly verbose: boolean;
  /** With verbose: also trace every message. */
  readonly messages?: boolean;
  /**
   * Serve reads from the leader's lease (readOnlyOption 'lease-based', CheckQuorum on, no pauses):
   * a separate mode, since a lease is only as good as the timing assumptions behind it.
   */
  readonly leaseReads?: boolean;
  /** Overrides applied to the seed's profile (focused scenarios). */
  readonly profile?: Partial<Profile>;
  readonly config?: Partial<Omit<SimConfig, 'seed'>>;
}

export interface RunStats {
  readonly rounds: number;
  readonly phase2Rounds: number;
  readonly leaders: number;
  readonly maxCommit: number;
  readonly entriesApplied: number;
  readonly crashes: number;
  readonly tracker: TrackerSummary;
  readonly messages: number;
}

export interface RunResult {
  readonly seed: number;
  readonly violation: SimViolation | Error | null;
  readonly stats: RunStats | null;
  readonly profile: Profile;
  readonly trace: readonly string[];
}

/** Liveness bounds, in election timeouts. */
const LEADER_BOUND_ELECTIONS = 30;
/** Convergence must show progress at least this often, and finish within the hard bound. */
const STALL_BOUND_ELECTIONS = 20;
const CONVERGE_BOUND_ELECTIONS = 400;
/** Worst case with one entry per message and one message in flight: a round trip per entry, with margin. */
const DRAIN_ROUNDS_PER_ENTRY = 10;
const PROBE_BOUND_ELECTIONS = 20;
const PROBE_WRITES = 5;

export function drawProfile(seed: number): Profile {
  const r = Prng.stream(seed, 'profile');
  const delayMax = r.pick([1, 2, 3, 5, 8, 12]);
  const maxSizePerMsgBytes = r.pick([1, 64, 1024, 1 << 20]);
  return {
    initialVoters: r.pick([3, 3, 3, 4, 5, 5, 6, 7]),
    bootstrap: r.chance(0.5) ? 'snapshot' : 'entries',
    diskLatencyMaxRounds: r.pick([0, 1, 3, 8]),
    snapshotEveryEntries: r.pick([16, 64, 64, 1024]),
    faults: {
      dropProb: r.pick([0, 0, 0.01, 0.05, 0.15, 0.3]),
      duplicateProb: r.pick([0, 0, 0.02, 0.1]),
      reorderProb: r.pick([0, 0.05, 0.3, 1]),
      delayMinRounds: 1,
      delayMaxRounds: delayMax,
    },
    proposeProb: r.pick([0.05, 0.2, 0.5, 1]),
    readProb: r.pick([0, 0.02, 0.1, 0.3]),
    eventProb: r.pick([0.003, 0.01, 0.03]),
    crashes: r.chance(0.7),
    tornWrites: r.chance(0.6),
    partitions: r.chance(0.7),
    pauses: r.chance(0.4),
    confChanges: r.chance(0.6),
    transfers: r.chance(0.5),
    tuning: {
      electionTicks: DEFAULT_SIM_CONFIG.electionTicks,
      heartbeatTicks: DEFAULT_SIM_CONFIG.heartbeatTicks,
      maxSizePerMsgBytes,
      maxInflightMsgs: r.pick([1, 4, 64, 256]),
      // the core requires room for at least one full message in flight
      maxInflightBytes: Math.max(maxSizePerMsgBytes, r.pick([256, 1 << 20, Number.MAX_SAFE_INTEGER])),
      maxUncommittedEntriesBytes: r.pick([0, 0, 64, 1024]),
      preVote: r.chance(0.8),
      checkQuorum: r.chance(0.8),
      readOnlyOption: 'safe',
      disableProposalForwarding: r.chance(0.15),
    },
  };
}

/** No random faults, no random events: the starting point of the focused, scripted scenarios. */
export function quietProfile(overrides: Partial<Profile> = {}): Profile {
  return {
    initialVoters: 3,
    bootstrap: 'snapshot',
    diskLatencyMaxRounds: DEFAULT_SIM_CONFIG.diskLatencyMaxRounds,
    snapshotEveryEntries: DEFAULT_SIM_CONFIG.snapshotEveryEntries,
    faults: { dropProb: 0, duplicateProb: 0, reorderProb: 0, delayMinRounds: 1, delayMaxRounds: 2 },
    proposeProb: 0,
    readProb: 0,
    eventProb: 0,
    crashes: false,
    tornWrites: false,
    partitions: false,
    pauses: false,
    confChanges: false,
    transfers: false,
    tuning: {
      electionTicks: DEFAULT_SIM_CONFIG.electionTicks,
      heartbeatTicks: DEFAULT_SIM_CONFIG.heartbeatTicks,
      maxSizePerMsgBytes: 1024,
      maxInflightMsgs: 16,
      maxInflightBytes: 1 << 20,
      maxUncommittedEntriesBytes: 0,
      preVote: true,
      checkQuorum: true,
      readOnlyOption: 'safe',
      disableProposalForwarding: false,
    },
    ...overrides,
  };
}

export function runSeed(seed: number, core: SimCore, options: RunOptions): RunResult {
  const drawn = drawProfile(seed);
  const lease: Partial<Profile> = options.leaseReads === true
    ? { pauses: false, readProb: 0.3, tuning: { ...drawn.tuning, checkQuorum: true, readOnlyOption: 'lease-based' } }
    : {};
  const profile: Profile = { ...drawn, ...lease, ...options.profile };
  const config: SimConfig = {
    ...DEFAULT_SIM_CONFIG,
    initialVoters: profile.initialVoters,
    bootstrap: profile.bootstrap,
    diskLatencyMaxRounds: profile.diskLatencyMaxRounds,
    snapshotEveryEntries: profile.snapshotEveryEntries,
    keepEntriesAfterSnapshot: Math.floor(profile.snapshotEveryEntries / 4),
    logRaft: options.verbose,
    traceMessages: options.verbose && options.messages === true,
    ...options.config,
    seed,
  };
  let cluster: SimCluster | null = null;
  try {
    cluster = new SimCluster(config, { core, tuning: profile.tuning });
    cluster.verbose = options.verbose;
    const run = new ScenarioRun(cluster, profile, Prng.stream(seed, 'scenario'));
    run.phaseOne(options.steps);
    const phase2Start = cluster.round;
    run.phaseTwo();
    return { seed, violation: null, stats: stats(cluster, cluster.round - phase2Start), profile, trace: [] };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    if (cluster !== null && err instanceof SimViolation && err.kind === 'liveness') {
      for (const line of cluster.describe().split('\n')) cluster.trace(`state: ${line}`);
    }
    if (cluster !== null && !(err instanceof SimViolation)) cluster.trace(`exception: ${err.stack ?? err.message}`);
    return { seed, violation: err, stats: cluster ? stats(cluster, 0) : null, profile, trace: cluster?.traceLines ?? [] };
  }
}

function stats(c: SimCluster, phase2Rounds: number): RunStats {
  return {
    rounds: c.round,
    phase2Rounds,
    leaders: c.checker.stats.leaders,
    maxCommit: c.checker.stats.maxCommit,
    entriesApplied: c.checker.stats.entriesApplied,
    crashes: [...c.hosts.values()].reduce((n, h) => n + h.crashes, 0),
    tracker: c.tracker.summary(),
    messages: c.network.stats.sent,
  };
}

type Timed = { readonly round: number; readonly action: () => void };

export class ScenarioRun {
  readonly #c: SimCluster;
  readonly #p: Profile;
  readonly #rng: Prng;
  #timers: Timed[] = [];
  /** Clients propose at most once per round, so this bounds the backlog phase two must drain. */
  #phaseOneRounds = 0;

  constructor(cluster: SimCluster, profile: Profile, rng: Prng) {
    this.#c = cluster;
    this.#p = profile;
    this.#rng = rng;
  }

  get #electionRounds(): number {
    return this.#c.config.electionTicks * this.#c.config.roundsPerTick;
  }

  phaseOne(steps: number): void {
    this.#phaseOneRounds += steps;
    this.#c.network.setFaults(this.#p.faults);
    for (let i = 0; i < steps; i++) {
      this.#runTimers();
      this.#clientOps();
      if (this.#rng.chance(this.#p.eventProb)) this.#event();
      this.#c.runRound();
    }
  }

  #at(delayRounds: number, action: () => void): void {
    this.#timers.push({ round: this.#c.round + delayRounds, action });
  }

  #runTimers(): void {
    const due = this.#timers.filter((t) => t.round <= this.#c.round);
    if (due.length === 0) return;
    this.#timers = this.#timers.filter((t) => t.round > this.#c.round);
    for (const t of due) t.action();
  }

  #clientOps(): void {
    const c = this.#c;
    const r = this.#rng;
    if (r.chance(this.#p.proposeProb)) {
      const via = this.#pickTarget();
      if (via !== null) c.propose(via, { key: r.intn(c.config.keySpace), strict: false });
    }
    if (r.chance(this.#p.readProb)) {
      const via = this.#pickTarget();
      if (via !== null) c.read(via, { key: r.intn(c.config.keySpace), strict: false });
    }
  }

  /** The leader half of the time (that is where clients end up), else any running node. */
  #pickTarget(): NodeId | null {
    const leader = this.#c.leader();
    if (leader !== null && this.#rng.chance(0.5)) return leader.id;
    const up = this.#c.upHosts().filter((h) => !this.#c.isStopped(h.id));
    return up.length === 0 ? null : this.#rng.pick(up).id;
  }

  #event(): void {
    const p = this.#p;
    const kinds: (() => void)[] = [() => this.#changeNetwork()];
    if (p.crashes) kinds.push(() => this.#crashOne(), () => this.#crashOne());
    if (p.partitions) kinds.push(() => this.#partition(), () => this.#partition());
    if (p.pauses) kinds.push(() => this.#pauseOne());
    if (p.confChanges) kinds.push(() => this.#confChange(), () => this.#confChange());
    if (p.transfers) kinds.push(() => this.#transfer());
    this.#rng.pick(kinds)();
  }

  #changeNetwork(): void {
    const r = this.#rng;
    const f = this.#p.faults;
    this.#c.network.setFaults({
      dropProb: r.chance(0.5) ? f.dropProb : r.pick([0, 0.05, 0.2]),
      duplicateProb: r.chance(0.5) ? f.duplicateProb : r.pick([0, 0.05]),
      reorderProb: r.chance(0.5) ? f.reorderProb : r.pick([0, 0.5]),
      delayMinRounds: 1,
      delayMaxRounds: r.chance(0.5) ? f.delayMaxRounds : r.pick([1, 4, 10, 30]),
    });
    this.#c.trace(`network faults now ${JSON.stringify(this.#c.network.faults)}`);
  }

  #crashOne(): void {
    const c = this.#c;
    const up = c.upHosts().filter((h) => !c.isStopped(h.id));
    if (up.length === 0) return;
    const leader = c.leader();
    const victim = leader !== null && this.#rng.chance(0.3) ? leader : this.#rng.pick(up);
    c.crash(victim.id, { tear: this.#p.tornWrites });
    this.#at(this.#rng.range(1, this.#electionRounds * 4), () => c.restart(victim.id));
  }

  #partition(): void {
    const c = this.#c;
    const r = this.#rng;
    const ids = [...c.hosts.keys()].filter((id) => !c.isStopped(id));
    const leader = c.leader();
    c.network.heal();
    const shape = r.intn(4);
    if (shape === 0 && leader !== null) {
      c.network.partition([ids.filter((id) => id !== leader.id), [leader.id]], ids);
      c.trace(`partition: leader n${leader.id} isolated`);
    } else if (shape === 1) {
      const shuffled = r.shuffle([...ids]);
      const cut = r.range(1, Math.max(1, shuffled.length - 1));
      c.network.partition([shuffled.slice(0, cut), shuffled.slice(cut)], ids);
      c.trace(`partition: [${shuffled.slice(0, cut)}] | [${shuffled.slice(cut)}]`);
    } else if (shape === 2 && ids.length > 1) {
      const from = leader !== null && r.chance(0.5) ? leader.id : r.pick(ids);
      const others = ids.filter((id) => id !== from);
      const victims = r.shuffle([...others]).slice(0, r.range(1, others.length));
      for (const to of victims) c.network.cutOneWay(from, to);
      c.trace(`one-way cut: n${from} -/-> [${victims}]`);
    } else {
      c.trace('network healed');
    }
    this.#at(r.range(this.#electionRounds, this.#electionRounds * 8), () => {
      c.network.heal();
      c.trace('network healed');
    });
  }

  #pauseOne(): void {
    const c = this.#c;
    const up = c.upHosts().filter((h) => !c.isStopped(h.id));
    if (up.length === 0) return;
    const leader = c.leader();
    const victim = leader !== null && this.#rng.chance(0.5) ? leader : this.#rng.pick(up);
    c.pause(victim.id, this.#rng.range(1, this.#electionRounds * 3));
  }

  #transfer(): void {
    const c = this.#c;
    const leader = c.leader();
    if (leader === null) return;
    const cs = leader.raw.status().config;
    const targets = cs.voters.filter((id) => id !== leader.id);
    if (targets.length === 0) return;
    c.transferLeader(leader.id, this.#rng.pick(targets));
  }

  #confChange(): void {
    const c = this.#c;
    const leader = c.leader();
    if (leader === null) return;
    const cc = pickConfChange(this.#rng, leader.raw.status().config, { maxMembers: c.config.maxMembers, newId: () => c.newNodeId() });
    if (cc !== null) c.proposeConfChange(leader.id, cc);
  }

  // --- phase two ------------------------------------------------------------------------------------

  phaseTwo(): void {
    const c = this.#c;
    this.#timers = [];
    c.network.heal();
    c.network.setFaults({ dropProb: 0, duplicateProb: 0, reorderProb: 0, delayMinRounds: 1, delayMaxRounds: 2 });
    c.resumeAll();
    for (const h of c.hosts.values()) if (!h.up) c.restart(h.id);
    c.trace('phase two: faults healed, every node running');
    const leader = this.#awaitLeader();
    c.trace(`phase two: leader n${leader.id} in term ${leader.term}`);
    const converged = this.#awaitConvergence();
    c.trace(`phase two: converged at ${converged.lastIndex} under n${converged.id}`);
    this.#probe();
    this.#resolveProposals();
  }

  #awaitLeader(): SimHost {
    const c = this.#c;
    const bound = LEADER_BOUND_ELECTIONS * this.#electionRounds;
    for (let i = 0; i < bound; i++) {
      const l = c.leader();
      if (l !== null) return l;
      c.runRound();
    }
    return violation('liveness', `no leader within ${LEADER_BOUND_ELECTIONS} election timeouts after the faults healed`);
  }

  /**
   * Every member follows the leader in its term and applied its whole log; the configuration is not
   * joint and no leader transfer is under way. The bound is on progress, not on time: a cluster tuned
   * to one entry per message and one message in flight may take long to drain a backlog, but it must
   * keep moving.
   */
  #awaitConvergence(): SimHost {
    const c = this.#c;
    const stallBound = STALL_BOUND_ELECTIONS * this.#electionRounds;
    const hardBound = CONVERGE_BOUND_ELECTIONS * this.#electionRounds + DRAIN_ROUNDS_PER_ENTRY * this.#phaseOneRounds;
    let last = '';
    let progress = -1;
    let progressRound = c.round;
    for (let i = 0; i < hardBound && c.round - progressRound < stallBound; i++) {
      c.runRound();
      const now = this.#progressMeasure();
      if (now !== progress) {
        progress = now;
        progressRound = c.round;
      }
      const leader = c.leader();
      if (leader === null) {
        last = 'no leader';
        continue;
      }
      const st = leader.raw.status();
      const cs = st.config;
      this.#stopNonMembers(cs);
      if (cs.votersOutgoing.length > 0) {
        last = `joint configuration (outgoing [${cs.votersOutgoing}])`;
        if (!cs.autoLeave && i % this.#electionRounds === 0) c.proposeConfChange(leader.id, leaveJoint());
        continue;
      }
      const lagging = c.members(cs).filter(
        (h) => !h.up || h.busy || h.applied !== leader.lastIndex || h.term !== leader.term ||
          (h !== leader && (h.role !== StateRole.Follower || h.lead !== leader.id)),
      );
      if (leader.commit === leader.lastIndex && lagging.length === 0 && st.leadTransferee === NONE) return leader;
      last = `leader n${leader.id} term ${leader.term} commit ${leader.commit}/${leader.lastIndex}` +
        `${st.leadTransferee === NONE ? '' : ` transferring to n${st.leadTransferee}`}; lagging: ${lagging
          .map((h) => `n${h.id}@${h.applied}/t${h.term}`)
          .join(' ')}`;
    }
    const why = c.round - progressRound >= stallBound ? `no progress for ${STALL_BOUND_ELECTIONS}` : `not within ${CONVERGE_BOUND_ELECTIONS}`;
    return violation('liveness', `no convergence (${why} election timeouts): ${last}`);
  }

  /** Changes whenever any node appends, commits or applies something, or changes term. */
  #progressMeasure(): number {
    let n = 0;
    for (const h of this.#c.hosts.values()) if (h.up) n += h.applied + h.commit + h.term + h.lastIndex;
    return n;
  }

  /** Removed nodes that never learned of their removal are shut down by the operator. */
  #stopNonMembers(cs: ConfState): void {
    const c = this.#c;
    for (const h of c.hosts.values()) {
      if (!c.isStopped(h.id) && !isMemberOf(cs, h.id)) {
        c.trace(`n${h.id} is not a member: stopped`);
        c.stopNode(h.id);
      }
    }
  }

  /** In a healed, converged cluster new writes (through any member) and reads (on every member) complete. */
  #probe(): void {
    const c = this.#c;
    const leader = c.leader();
    if (leader === null) return violation('liveness', 'leader lost right after convergence');
    const term = leader.term;
    const cs = leader.raw.status().config;
    const members = c.members(cs);
    const writes: number[] = [];
    for (let i = 0; i < PROBE_WRITES; i++) {
      const via = this.#p.tuning.disableProposalForwarding ? leader : this.#rng.pick(members);
      writes.push(c.propose(via.id, { key: i % c.config.keySpace, strict: true }));
    }
    const bound = PROBE_BOUND_ELECTIONS * this.#electionRounds;
    let reads: number[] = [];
    for (let i = 0; i < bound; i++) {
      c.runRound();
      const l = c.leader();
      if (l === null || l.term !== term) {
        violation('liveness', `leadership changed in a healed, converged cluster (term ${term} -> ${l?.term ?? 'none'})`);
      }
      const done = writes.every((id) => c.tracker.proposal(id)?.outcome === 'committed');
      if (done && reads.length === 0) {
        reads = members.map((h) => c.read(h.id, { key: this.#rng.intn(PROBE_WRITES), strict: true }));
      }
      if (done && reads.length > 0 && reads.every((id) => c.tracker.read(id)?.served === true)) return;
    }
    const open = writes.filter((id) => c.tracker.proposal(id)?.outcome !== 'committed');
    const unread = reads.filter((id) => c.tracker.read(id)?.served !== true);
    violation('liveness', `healed cluster: writes [${open}] not committed, reads [${unread}] not served`);
  }

  /**
   * Every proposal ends committed, dropped, or lost with its leader. One appended by a leader that is
   * still leader of the same term, never having crashed, must commit: phase-one messages may still be
   * in flight (delays outlive the heal), so such proposals get a bounded time to do so.
   */
  #resolveProposals(): void {
    const c = this.#c;
    const bound = PROBE_BOUND_ELECTIONS * this.#electionRounds;
    let owed = this.#owedProposals();
    for (let i = 0; i < bound && owed.length > 0; i++) {
      c.runRound();
      owed = this.#owedProposals();
    }
    const first = owed[0];
    if (first !== undefined) {
      violation('liveness', `proposal #${first.id} was appended by leader n${first.leader} in term ${first.term}, which is ` +
        `still leader, but it did not commit within ${PROBE_BOUND_ELECTIONS} election timeouts`);
    }
    for (const p of c.tracker.pending()) {
      c.tracker.onLost(p.id, p.appendedBy.length > 0 ? 'its leader lost leadership or crashed' : 'it never reached a leader');
    }
  }

  /** Pending proposals appended by a leader that still leads in the same term and incarnation. */
  #owedProposals(): { id: number; leader: NodeId; term: number }[] {
    const c = this.#c;
    const owed: { id: number; leader: NodeId; term: number }[] = [];
    for (const p of c.tracker.pending()) {
      for (const a of p.appendedBy) {
        const h = c.hosts.get(a.node);
        if (h !== undefined && h.up && h.role === StateRole.Leader && h.term === a.term && h.incarnation === a.incarnation) {
          owed.push({ id: p.id, leader: a.node, term: a.term });
          break;
        }
      }
    }
    return owed;
  }
}

function isMemberOf(cs: ConfState, id: NodeId): boolean {
  return cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id);
}

function leaveJoint(): ConfChangeV2 {
  return { transition: ConfChangeTransition.Auto, changes: [], context: new Uint8Array(0) };
}

/** A membership change that is valid against the leader's current configuration, or null. */
export function pickConfChange(
  r: Prng,
  cs: ConfState,
  options: { maxMembers: number; newId: () => NodeId },
): ConfChangeV2 | null {
  if (cs.votersOutgoing.length > 0) return cs.autoLeave ? null : leaveJoint();
  const members = cs.voters.length + cs.learners.length;
  const single = (type: ConfChangeType, nodeId: NodeId): ConfChangeSingle => ({ type, nodeId });
  const options2: (() => ConfChangeSingle[])[] = [];
  if (members < options.maxMembers) {
    options2.push(() => [single(ConfChangeType.AddLearnerNode, options.newId())]);
    options2.push(() => [single(ConfChangeType.AddNode, options.newId())]);
  }
  for (const l of cs.learners) {
    options2.push(() => [single(ConfChangeType.AddNode, l)]);
    options2.push(() => [single(ConfChangeType.RemoveNode, l)]);
  }
  if (cs.voters.length > 3) {
    for (const v of cs.voters) {
      options2.push(() => [single(ConfChangeType.RemoveNode, v)]);
      options2.push(() => [single(ConfChangeType.AddLearnerNode, v)]);
    }
  }
  if (members < options.maxMembers && cs.voters.length >= 3) {
    options2.push(() => [single(ConfChangeType.AddNode, options.newId()), single(ConfChangeType.RemoveNode, r.pick(cs.voters))]);
  }
  if (options2.length === 0) return null;
  const changes = r.pick(options2)();
  const transition = changes.length > 1 || r.chance(0.2)
    ? r.pick([ConfChangeTransition.Auto, ConfChangeTransition.JointImplicit, ConfChangeTransition.JointExplicit])
    : ConfChangeTransition.Auto;
  return { transition, changes, context: new Uint8Array(0) };
}
