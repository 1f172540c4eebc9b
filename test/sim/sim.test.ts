/**
 * The simulator in CI: focused scenarios (each a fault the Raft papers single out) and a bounded number
 * of random seeds. `npm run sim -- --seeds N` runs more; every failure names the seed and its replay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RawNodeApi, Ready } from '../../src/raft/contract.js';
import { StateRole } from '../../src/raft/contract.js';
import type { ConfChangeV2, ConfState, NodeId } from '../../src/raft/types.js';
import { ConfChangeTransition, ConfChangeType } from '../../src/raft/types.js';
import { DEFAULT_SIM_CONFIG, SimCluster, type SimConfig } from './cluster.js';
import { realCore } from './core.js';
import type { SimCore, SimHost } from './host.js';
import { Prng } from './prng.js';
import { formatFailure } from './report.js';
import { quietProfile, runSeed, ScenarioRun, type Profile } from './scenario.js';
import { SimViolation } from './violation.js';

/** Seeds and phase-one rounds CI runs; sized for well under a minute on a shared 2-core machine. */
const CI_SEEDS = 64;
const CI_STEPS = 2000;
const ELECTION_ROUNDS = DEFAULT_SIM_CONFIG.electionTicks * DEFAULT_SIM_CONFIG.roundsPerTick;

interface Setup {
  cluster: SimCluster;
  run: ScenarioRun;
}

function setup(options: { seed: number; profile?: Partial<Profile>; config?: Partial<SimConfig>; core?: SimCore }): Setup {
  const profile = quietProfile(options.profile);
  const cluster = new SimCluster(
    {
      ...DEFAULT_SIM_CONFIG,
      initialVoters: profile.initialVoters,
      bootstrap: profile.bootstrap,
      diskLatencyMaxRounds: profile.diskLatencyMaxRounds,
      snapshotEveryEntries: profile.snapshotEveryEntries,
      ...options.config,
      seed: options.seed,
    },
    { core: options.core ?? realCore, tuning: profile.tuning },
  );
  cluster.network.setFaults(profile.faults);
  return { cluster, run: new ScenarioRun(cluster, profile, Prng.stream(options.seed, 'scenario')) };
}

function runUntil(c: SimCluster, what: string, bound: number, done: () => boolean): void {
  for (let i = 0; i < bound; i++) {
    if (done()) return;
    c.runRound();
  }
  assert.fail(`${what}: not within ${bound} rounds\n${c.describe()}`);
}

function awaitLeader(c: SimCluster, except?: NodeId): SimHost {
  let leader: SimHost | null = null;
  runUntil(c, 'a leader', 30 * ELECTION_ROUNDS, () => {
    leader = c.leader();
    return leader !== null && leader.id !== except;
  });
  return leader as unknown as SimHost;
}

function committed(c: SimCluster, ids: readonly number[]): boolean {
  return ids.every((id) => c.tracker.proposal(id)?.outcome === 'committed');
}

function proposeMany(c: SimCluster, via: NodeId, n: number): number[] {
  return Array.from({ length: n }, (_, i) => c.propose(via, { key: i % c.config.keySpace, strict: false }));
}

test('partition of the leader: the majority elects a new leader, the old one steps down, writes on it are lost', () => {
  const { cluster: c, run } = setup({ seed: 11, profile: { initialVoters: 5 } });
  const old = awaitLeader(c);
  const before = proposeMany(c, old.id, 10);
  runUntil(c, 'writes before the partition', 10 * ELECTION_ROUNDS, () => committed(c, before));

  const others = [...c.hosts.keys()].filter((id) => id !== old.id);
  c.network.partition([others, [old.id]], [...c.hosts.keys()]);
  const stranded = proposeMany(c, old.id, 5);
  const oldTerm = old.term;
  const next = awaitLeader(c, old.id);
  assert.ok(next.term > oldTerm);
  const after = proposeMany(c, next.id, 5);
  runUntil(c, 'writes on the new leader', 10 * ELECTION_ROUNDS, () => committed(c, after));
  // CheckQuorum: cut off from the majority, the old leader gives up within about two election timeouts.
  runUntil(c, 'the old leader stepping down', 3 * ELECTION_ROUNDS, () => old.role !== StateRole.Leader);

  run.phaseTwo();
  for (const id of stranded) assert.equal(c.tracker.proposal(id)?.outcome, 'lost', `stranded write #${id}`);
  assert.equal(c.leader()?.applied, old.applied);
});

test('one-way partition: a follower that stops hearing the leader does not disrupt it (PreVote, CheckQuorum)', () => {
  const { cluster: c, run } = setup({ seed: 12 });
  const leader = awaitLeader(c);
  const term = leader.term;
  const deaf = [...c.hosts.keys()].find((id) => id !== leader.id) as NodeId;
  c.network.cutOneWay(leader.id, deaf);
  const writes = proposeMany(c, leader.id, 20);
  c.run(10 * ELECTION_ROUNDS);
  assert.ok(committed(c, writes), 'the leader and the other follower commit without the deaf one');
  assert.equal(c.leader()?.id, leader.id);
  assert.equal(leader.term, term, 'no election was forced by the deaf follower');
  assert.ok((c.hosts.get(deaf) as SimHost).applied < leader.applied, 'the deaf follower fell behind');
  run.phaseTwo();
  assert.equal((c.hosts.get(deaf) as SimHost).applied, c.leader()?.applied);
});

/** Runs until `host` is between writing a Ready and its fsync, with entries not yet durable, then crashes it. */
function crashWithUnsyncedEntries(c: SimCluster, host: SimHost, feed: () => void): number {
  runUntil(c, `n${host.id} with unsynced entries`, 50 * ELECTION_ROUNDS, () => {
    feed();
    return host.busy && host.unsyncedRecords > 0 && host.pendingLastIndex > host.durableLastIndex;
  });
  const durableBefore = host.durableLastIndex;
  const wanted = host.pendingLastIndex;
  c.crash(host.id, { tear: true });
  assert.ok(host.durableLastIndex >= durableBefore, 'a crash never loses synced entries');
  return wanted - host.durableLastIndex;
}

test('crash of a follower with unsynced entries: what it never acknowledged may go, nothing committed does', () => {
  const { cluster: c, run } = setup({ seed: 13, config: { diskLatencyMaxRounds: 8 } });
  const leader = awaitLeader(c);
  const follower = [...c.hosts.values()].find((h) => h !== leader) as SimHost;
  let lost = 0;
  for (let round = 0; round < 5; round++) {
    lost += crashWithUnsyncedEntries(c, follower, () => proposeMany(c, leader.id, 3));
    c.run(ELECTION_ROUNDS);
    c.restart(follower.id);
    c.run(ELECTION_ROUNDS);
  }
  assert.ok(lost > 0, 'the crashes lost unsynced entries');
  run.phaseTwo();
  assert.equal(follower.applied, c.leader()?.applied);
});

test('crash of the leader with unsynced entries it already sent (parallel write): safety holds', () => {
  const { cluster: c, run } = setup({ seed: 14, profile: { initialVoters: 5 }, config: { diskLatencyMaxRounds: 8 } });
  let lost = 0;
  for (let round = 0; round < 4; round++) {
    const leader = awaitLeader(c);
    lost += crashWithUnsyncedEntries(c, leader, () => proposeMany(c, leader.id, 3));
    c.run(2 * ELECTION_ROUNDS);
    c.restart(leader.id);
  }
  assert.ok(lost > 0, 'the crashes lost unsynced entries');
  run.phaseTwo();
});

function configOf(h: SimHost): ConfState {
  return h.raw.status().config;
}

/** Proposes cc on the leader until the leader's configuration satisfies done (proposals may be lost). */
function changeConfig(c: SimCluster, cc: ConfChangeV2, done: (cs: ConfState) => boolean): void {
  let lastTry = -Infinity;
  runUntil(c, `conf change ${JSON.stringify(cc.changes, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`, 200 * ELECTION_ROUNDS, () => {
    const leader = c.leader();
    if (leader === null) return false;
    if (done(configOf(leader))) return true;
    const idle = leader.applied === leader.lastIndex;
    if (idle && c.round - lastTry > 3 * ELECTION_ROUNDS) {
      c.proposeConfChange(leader.id, cc);
      lastTry = c.round;
    }
    return false;
  });
}

test('membership changes under message loss, duplication and reordering: learner, promotion, removal, joint', () => {
  const lossy = { dropProb: 0.2, duplicateProb: 0.1, reorderProb: 0.3, delayMinRounds: 1, delayMaxRounds: 6 };
  const { cluster: c, run } = setup({ seed: 15, profile: { faults: lossy } });
  const leader = awaitLeader(c);
  const single = (type: ConfChangeType, nodeId: NodeId, transition: ConfChangeTransition = ConfChangeTransition.Auto): ConfChangeV2 => ({
    transition,
    changes: [{ type, nodeId }],
    context: new Uint8Array(0),
  });
  const n4 = c.newNodeId();
  proposeMany(c, leader.id, 10);
  changeConfig(c, single(ConfChangeType.AddLearnerNode, n4), (cs) => cs.learners.includes(n4));
  changeConfig(c, single(ConfChangeType.AddNode, n4), (cs) => cs.voters.includes(n4));
  const victim = configOf(c.leader() as SimHost).voters.find((id) => id !== c.leader()?.id && id !== n4) as NodeId;
  changeConfig(c, single(ConfChangeType.RemoveNode, victim), (cs) => !cs.voters.includes(victim));
  const n5 = c.newNodeId();
  const replaced = configOf(c.leader() as SimHost).voters.find((id) => id !== n4) as NodeId;
  const joint: ConfChangeV2 = {
    transition: ConfChangeTransition.JointExplicit,
    changes: [{ type: ConfChangeType.AddNode, nodeId: n5 }, { type: ConfChangeType.RemoveNode, nodeId: replaced }],
    context: new Uint8Array(0),
  };
  changeConfig(c, joint, (cs) => cs.votersOutgoing.length > 0 || cs.voters.includes(n5));
  const leave: ConfChangeV2 = { transition: ConfChangeTransition.Auto, changes: [], context: new Uint8Array(0) };
  changeConfig(c, leave, (cs) => cs.votersOutgoing.length === 0);
  run.phaseTwo();
  const cs = configOf(c.leader() as SimHost);
  assert.ok(cs.voters.includes(n4) && cs.voters.includes(n5));
  assert.ok(!cs.voters.includes(victim) && !cs.voters.includes(replaced));
  assert.equal(cs.voters.length, 3);
});

/** A broken core for the checker's own test: it answers readIndex at once with its applied index. */
class StaleReadNode implements RawNodeApi {
  readonly #pending: { index: number; context: Uint8Array }[] = [];
  constructor(readonly inner: RawNodeApi) {}
  readIndex(context: Uint8Array): void {
    this.#pending.push({ index: this.inner.status().applied, context });
  }
  hasReady(): boolean {
    return this.#pending.length > 0 || this.inner.hasReady();
  }
  ready(): Ready {
    const rd = this.inner.ready();
    return { ...rd, readStates: [...rd.readStates, ...this.#pending.splice(0)] };
  }
  tick(): void { this.inner.tick(); }
  campaign(): void { this.inner.campaign(); }
  propose(data: Uint8Array): void { this.inner.propose(data); }
  proposeConfChange(cc: ConfChangeV2): void { this.inner.proposeConfChange(cc); }
  applyConfChange(cc: ConfChangeV2): ConfState { return this.inner.applyConfChange(cc); }
  step(m: Parameters<RawNodeApi['step']>[0]): void { this.inner.step(m); }
  advance(): void { this.inner.advance(); }
  transferLeader(to: NodeId): void { this.inner.transferLeader(to); }
  reportUnreachable(id: NodeId): void { this.inner.reportUnreachable(id); }
  reportSnapshot(id: NodeId, status: 'finish' | 'failure'): void { this.inner.reportSnapshot(id, status); }
  status(): ReturnType<RawNodeApi['status']> { return this.inner.status(); }
}

function staleReadCore(): SimCore {
  return {
    ...realCore,
    newRawNode: (config, log) => new StaleReadNode(realCore.newRawNode(config, log)),
    bootstrap: (raw, peers) => realCore.bootstrap((raw as StaleReadNode).inner, peers),
  };
}

test('the read checker catches a stale read served by a partitioned follower', () => {
  const { cluster: c } = setup({ seed: 16, core: staleReadCore() });
  const leader = awaitLeader(c);
  const follower = [...c.hosts.values()].find((h) => h !== leader) as SimHost;
  c.network.partition([[follower.id], [...c.hosts.keys()].filter((id) => id !== follower.id)], [...c.hosts.keys()]);
  const w = c.propose(leader.id, { key: 3, strict: false });
  runUntil(c, 'the write', 10 * ELECTION_ROUNDS, () => committed(c, [w]));
  c.read(follower.id, { key: 3, strict: false });
  assert.throws(
    () => c.run(5),
    (e: unknown) => e instanceof SimViolation && e.kind === 'linearizable-read',
  );
});

test('a failing seed reports itself with the command that replays it', () => {
  const r = runSeed(5, staleReadCore(), { steps: 1500, verbose: false });
  assert.ok(r.violation instanceof SimViolation, `expected a violation, got ${r.violation?.message ?? 'none'}`);
  const report = formatFailure(r, 1500);
  assert.match(report, /FAIL seed 5: linearizable-read/);
  assert.match(report, /replay: npm run sim -- --seed 5 --steps 1500/);
});

test(`random seeds 1..${CI_SEEDS}: safety under faults, then liveness once healed`, () => {
  const failures: string[] = [];
  for (let seed = 1; seed <= CI_SEEDS; seed++) {
    const r = runSeed(seed, realCore, { steps: CI_STEPS, verbose: false });
    if (r.violation !== null) failures.push(formatFailure(r, CI_STEPS));
  }
  assert.deepEqual(failures, []);
});

// Seeds that once found a core bug: a snapshot restored while committed conf changes were still being
// applied made those applies fail. They must stay green.
test('regression seeds 330 and 526: no snapshot restore while entries are being applied', () => {
  for (const seed of [330, 526]) {
    const r = runSeed(seed, realCore, { steps: 3000, verbose: false });
    assert.equal(r.violation, null, r.violation === null ? '' : formatFailure(r, 3000));
  }
});
