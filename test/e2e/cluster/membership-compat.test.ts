/**
 * Acceptance 1 of issue 4: the real etcdctl (3.4) drives one scripted membership session against a
 * 3-member cluster of every target, each started the same way with static bootstrap (--name,
 * --initial-cluster, --initial-cluster-token, --initial-advertise-peer-urls, --listen-peer-urls,
 * --initial-cluster-state new). After the normalisations of cluster-normalise.ts, every output (exit code,
 * stdout, stderr) must equal the first target's (real etcd by default).
 *
 * The script covers member list (all formats), endpoint status/health/hashkv --cluster, move-leader,
 * member add then a start from the ETCD_* variables etcdctl printed, the learner flow (add, promote refused
 * while the learner has never run, start, promote), member update (refused cases, then a new peer URL the
 * member restarts on) and member remove (the removed member exits by itself).
 *
 * A row is one etcdctl command line; `{id:m2}` is m2's hex id, `{peer:m4}` m4's peer URL, `{port:m3.peer2}`
 * a port the script allocated, all resolved per target. `ok`/`err` also check what every target printed,
 * which keeps the script honest. `retry` re-runs a row while it fails with that message, for etcd's
 * time-based strict reconfiguration check: a member must have been connected to all voters for 5 s
 * (etcd's HealthInterval) before it accepts `member add`/`remove`, which after any (re)start is a matter
 * of time, not of state. `settle` waits until all members agree (same revision and HashKV, applied =
 * raft index) so status rows compare a quiescent cluster.
 *
 * The leader is moved to m1 before the script, so "is leader" columns and the member the rows talk to
 * (m1 unless the row says otherwise) are the same on every target.
 *
 * E2E_TRANSCRIPT=<file> appends every row with its normalised outputs to <file>.
 */
import { appendFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { etcdctl, freePorts, targetsFromEnv, type CtlResult } from '../harness.js';
import type { Normalised } from '../normalise.js';
import { Cluster, clusterLimits, type ClusterMember } from './cluster.js';
import { normaliseCluster, type ClusterFacts } from './cluster-normalise.js';
import { withRpc } from './rpc.js';

const compatLimits = {
  retryTimeoutMs: 20_000,
  retryIntervalMs: 250,
  /** A removed member shuts itself down; etcd takes well under a second. */
  removedExitTimeoutMs: 10_000,
} as const;

interface Side {
  label: string;
  cluster: Cluster;
  clusterId: bigint;
  /** Every member id the cluster reported, removed ones included. */
  ids: Map<bigint, string>;
  ports: Map<number, string>;
  captured: Map<string, string>;
}

interface CtlStep {
  kind: 'ctl';
  line: string;
  /** A member name, or 'all' for every running member (move-leader needs the leader among them). */
  on: string;
  ok?: RegExp;
  err?: RegExp;
  retry?: RegExp;
  settle?: boolean;
  capture?: string;
}

interface DoStep {
  kind: 'do';
  what: string;
  run: (side: Side) => Promise<void>;
}

type Step = CtlStep | DoStep;

const ctl = (line: string, options: Partial<Omit<CtlStep, 'kind' | 'line'>> = {}): Step =>
  ({ kind: 'ctl', line, on: 'm1', ...options });
const act = (what: string, run: (side: Side) => Promise<void>): Step => ({ kind: 'do', what, run });

const formats = ['simple', 'json', 'fields', 'table'] as const;
const unhealthy = /etcdserver: unhealthy cluster/;

// ------------------------------------------------------------------------------------------ the script

const bootstrap: Step[] = [
  ctl('put a 1', { ok: /^OK\n$/ }),
  ctl('put b 2', { ok: /^OK\n$/ }),
  ...[...formats, 'protobuf'].map((w) => ctl(`-w ${w} member list`, { ok: /(?=[\s\S]*m1)(?=[\s\S]*m2)(?=[\s\S]*m3)/ })),
  ...formats.flatMap((w) => [
    ctl(`-w ${w} endpoint status --cluster`, { settle: true, ok: /3\.4\./ }),
    ctl(`-w ${w} endpoint health --cluster`, { ok: /true|is healthy/ }),
    ctl(`-w ${w} endpoint hashkv --cluster`, { settle: true }),
  ]),
];

const moveLeader: Step[] = [
  ctl('move-leader {id:m2}', { on: 'all', ok: /^Leadership transferred from \w+ to \w+\n$/ }),
  act('wait until m2 leads', (s) => leaderIs(s, 'm2')),
  ctl('move-leader {id:m2}', { on: 'all', ok: /Leadership transferred/ }),
  ctl('move-leader ffff', { on: 'all', err: /etcdserver: bad leader transferee/ }),
  ctl('move-leader {id:m1}', { on: 'm3', err: /no leader endpoint given at/ }),
  ctl('-w json move-leader {id:m3}', { on: 'all' }),
  act('wait until m3 leads', (s) => leaderIs(s, 'm3')),
  ctl('-w protobuf move-leader {id:m1}', { on: 'all' }),
  act('wait until m1 leads', (s) => leaderIs(s, 'm1')),
  ctl('-w table endpoint status --cluster', { settle: true }),
];

const add: Step[] = [
  act('allocate m4', async (s) => { await s.cluster.create('m4'); }),
  ctl('member add m4 --peer-urls={peer:m4}', { retry: unhealthy, capture: 'm4', ok: /^Member +\w+ added to cluster +\w+\n\nETCD_NAME="m4"\n/ }),
  ctl('member list', { ok: /unstarted, , / }),
  ctl('-w json member list'),
  // with a voter that never started, strict reconfiguration refuses another voter...
  ctl('member add m9 --peer-urls=http://127.0.0.1:9', { err: unhealthy }),
  // ...and etcd checks a promote's progress before the learner flag: a voter that never ran is "not in sync"
  ctl('member promote {id:m4}', { err: /etcdserver: can only promote a learner member which is in sync with leader/ }),
  act('start m4 with the ETCD_* variables member add printed', (s) => startFromCapture(s, 'm4', { learner: false })),
  ctl('member list', { ok: /started, m4/ }),
  ctl('-w table member list'),
  ctl('member add m9 --peer-urls={peer:m1}', { retry: unhealthy, err: /etcdserver: Peer URLs already exists/ }),
  ctl('member promote {id:m4}', { err: /etcdserver: can only promote a learner member\n/ }),
  ctl('endpoint health --cluster', { ok: /is healthy/ }),
  ctl('endpoint hashkv --cluster', { settle: true }),
];

const learner: Step[] = [
  act('allocate m5', async (s) => { await s.cluster.create('m5'); }),
  ctl('member add m5 --learner --peer-urls={peer:m5}', { retry: unhealthy, capture: 'm5', ok: /added to cluster/ }),
  ctl('member add m6 --learner --peer-urls=http://127.0.0.1:9', { err: /etcdserver: too many learner members in cluster/ }),
  ctl('-w table member list', { ok: /unstarted .*true/ }),
  ctl('-w fields member list'),
  ctl('member promote {id:m5}', { err: /etcdserver: can only promote a learner member which is in sync with leader/ }),
  ctl('member promote {id:m5}', { on: 'm2', err: /etcdserver: can only promote a learner member which is in sync with leader/ }),
  ctl('move-leader {id:m5}', { on: 'all', err: /etcdserver: bad leader transferee/ }),
  act('start m5 from its ETCD_* variables', (s) => startFromCapture(s, 'm5', { learner: true })),
  ctl('get a', { on: 'm5', settle: true, err: /etcdserver: rpc not supported for learner/ }),
  ctl('get a --consistency=s', { on: 'm5', ok: /^a\n1\n$/ }),
  ctl('put x y', { on: 'm5', err: /etcdserver: rpc not supported for learner/ }),
  ctl('endpoint status --cluster', { settle: true, ok: /, false, true, / }),
  // etcd 3.4 serves HashKV on voters only
  ctl('endpoint hashkv --cluster', { settle: true, err: /rpc not supported for learner/ }),
  ctl('-w json endpoint hashkv --cluster', { err: /rpc not supported for learner/ }),
  ctl('member promote {id:m5}', { retry: /in sync with leader/, ok: /^Member +\w+ promoted in cluster +\w+\n$/ }),
  ctl('member promote {id:m5}', { err: /etcdserver: can only promote a learner member\n/ }),
  ctl('-w json member list'),
  ctl('get a', { on: 'm5', ok: /^a\n1\n$/ }),
];

const update: Step[] = [
  ctl('member update {id:m3} --peer-urls={peer:m1}', { err: /etcdserver: Peer URLs already exists/ }),
  ctl('member update ffff --peer-urls=http://127.0.0.1:9', { err: /etcdserver: member not found/ }),
  act('allocate a second peer port for m3', allocatePeerPort('m3')),
  ctl('member update {id:m3} --peer-urls=http://127.0.0.1:{port:m3.peer2}', { ok: /^Member +\w+ updated in cluster +\w+\n$/ }),
  act('restart m3 listening on its new peer URL', (s) => restartOnNewPeerPort(s, 'm3')),
  ctl('member list', { ok: /m3, http:\/\/127\.0\.0\.1:\d+/ }),
  ctl('-w json member update {id:m3} --peer-urls=http://127.0.0.1:{port:m3.peer2}'),
  ctl('endpoint hashkv --cluster', { settle: true }),
];

const remove: Step[] = [
  ctl('member remove ffff', { err: /etcdserver: member not found/ }),
  ctl('member remove {id:m2}', { retry: unhealthy, ok: /^Member +\w+ removed from cluster +\w+\n$/ }),
  act('the removed member exits by itself', (s) => removedExits(s, 'm2')),
  ctl('member remove {id:m2}', { err: /etcdserver: member not found/ }),
  ctl('-w json member remove {id:m5}', { retry: unhealthy, ok: /"members"/ }),
  act('the removed learner-turned-voter exits by itself', (s) => removedExits(s, 'm5')),
  ...[...formats, 'protobuf'].map((w) => ctl(`-w ${w} member list`)),
  ctl('endpoint status --cluster', { settle: true }),
  ctl('-w json endpoint hashkv --cluster', { settle: true }),
  ctl('put c 3', { ok: /^OK\n$/ }),
  ctl('get --prefix ""', { on: 'm4', ok: /^a\n1\nb\n2\nc\n3\n$/ }),
];

// ------------------------------------------------------------------------------------------ actions

async function leaderIs(side: Side, name: string): Promise<void> {
  const deadline = Date.now() + clusterLimits.leaderTimeoutMs;
  for (;;) {
    const { leader } = await side.cluster.waitLeader();
    if (leader.name === name) return;
    if (Date.now() > deadline) throw new Error(`${side.label}: leader is ${leader.name}, expected ${name}`);
    await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
  }
}

/** `eval $(etcdctl member add ...)`: the variables etcdctl printed are the new member's whole bootstrap. */
async function startFromCapture(side: Side, name: string, options: { learner: boolean }): Promise<void> {
  const out = side.captured.get(name) ?? '';
  const vars = new Map([...out.matchAll(/^(ETCD_[A-Z_]+)="([^"]*)"$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
  const member = side.cluster.member(name);
  assert.equal(vars.get('ETCD_NAME'), name, `${side.label}: ETCD_NAME printed by member add`);
  assert.equal(vars.get('ETCD_INITIAL_ADVERTISE_PEER_URLS'), member.peerUrl);
  assert.equal(vars.get('ETCD_INITIAL_CLUSTER_STATE'), 'existing');
  const initialCluster = vars.get('ETCD_INITIAL_CLUSTER') ?? '';
  member.launch({ initialCluster, state: 'existing', token: side.cluster.token, viaEnv: true });
  await member.waitServing({ learner: options.learner });
}

function allocatePeerPort(name: string): (side: Side) => Promise<void> {
  return async (side) => {
    const [port] = await freePorts(1);
    if (port === undefined) throw new Error('no port');
    side.ports.set(port, `${name}.peer2`);
  };
}

async function restartOnNewPeerPort(side: Side, name: string): Promise<void> {
  const port = [...side.ports].find(([, label]) => label === `${name}.peer2`)?.[0];
  if (port === undefined) throw new Error(`${name}.peer2 not allocated`);
  const member = side.cluster.member(name);
  await member.stop();
  member.movePeerPort({ listen: port, advertise: port });
  await member.restart();
}

async function removedExits(side: Side, name: string): Promise<void> {
  const member = side.cluster.member(name);
  const exited = await member.waitExit(compatLimits.removedExitTimeoutMs);
  assert.ok(exited, `${side.label}: ${name} still runs ${compatLimits.removedExitTimeoutMs} ms after its removal`);
  // Not the exit code: etcd 3.4 usually exits 0 here, but now and then 2 (a panic while shutting down).
  assert.equal(member.lastExit?.signal, null, `${side.label}: removed ${name} was killed instead of exiting`);
  await side.cluster.discard(member);
}

// ------------------------------------------------------------------------------------------ running rows

const targets = targetsFromEnv();
const sides: Side[] = [];

before(async () => {
  const started = await Promise.allSettled(targets.map((target) => Cluster.start({ target, names: ['m1', 'm2', 'm3'],
    token: 'e2e-membership' })));
  for (const [i, result] of started.entries()) {
    if (result.status === 'fulfilled') {
      sides.push({ label: targets[i]?.label ?? '?', cluster: result.value, clusterId: 0n, ids: new Map(),
        ports: new Map(), captured: new Map() });
    }
  }
  const failed = started.find((r) => r.status === 'rejected');
  if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  await Promise.all(sides.map(async (side) => {
    await refreshFacts(side);
    const { leader } = await side.cluster.waitLeader();
    if (leader.name !== 'm1') {
      const moved = await etcdctl(['move-leader', idOf(side, 'm1')], { endpoints: side.cluster.endpoints() });
      assert.equal(moved.code, 0, `${side.label}: move-leader to m1 before the script: ${moved.stderr}`);
    }
    await leaderIs(side, 'm1');
  }));
});

after(async () => {
  await Promise.all(sides.map((side) => side.cluster.destroy()));
});

function idOf(side: Side, name: string): string {
  const id = [...side.ids].find(([, n]) => n === name)?.[0];
  if (id === undefined) throw new Error(`${side.label}: no id known for ${name}`);
  return id.toString(16);
}

function resolve(side: Side, line: string): string[] {
  const text = line.replace(/\{(id|peer|port):([\w.]+)\}/g, (_w, kind: string, name: string) => {
    if (kind === 'id') return idOf(side, name);
    if (kind === 'peer') return side.cluster.member(name).peerUrl;
    const port = [...side.ports].find(([, label]) => label === name)?.[0];
    if (port === undefined) throw new Error(`${side.label}: no port ${name}`);
    return String(port);
  });
  return text.split(' ').map((arg) => (arg === '""' ? '' : arg));
}

/** Ids, ports and the term the normalisation needs; ids of unstarted members are named by their peer URL. */
async function refreshFacts(side: Side): Promise<ClusterFacts> {
  const { cluster } = side;
  const ask = cluster.member('m1');
  const list = await withRpc(ask.endpoint, (rpc) => rpc.memberList());
  side.clusterId = list.header?.clusterId ?? 0n;
  for (const m of list.members) {
    const name = m.name !== '' ? m.name : cluster.members.find((c) => m.peerURLs.includes(c.peerUrl))?.name;
    if (name !== undefined && !side.ids.has(m.ID)) side.ids.set(m.ID, name);
  }
  for (const m of cluster.members) {
    if (!side.ports.has(m.clientPort)) side.ports.set(m.clientPort, `${m.name}.client`);
    if (!side.ports.has(m.peerPort)) side.ports.set(m.peerPort, `${m.name}.peer`);
  }
  const term = await cluster.leaderTerm();
  return { clusterId: side.clusterId, ids: side.ids, ports: side.ports, term };
}

/** Same revision and HashKV everywhere, and every member has applied all it has in its raft log. */
async function settle(side: Side): Promise<void> {
  const members = side.cluster.running();
  await side.cluster.waitConverged({ members });
  const deadline = Date.now() + clusterLimits.convergeTimeoutMs;
  for (;;) {
    const statuses = await Promise.all(members.map((m: ClusterMember) => m.status()));
    const index = statuses[0]?.raftIndex;
    if (statuses.every((s) => s.raftIndex === index && s.raftAppliedIndex === s.raftIndex)) return;
    if (Date.now() > deadline) {
      throw new Error(`${side.label}: raft indexes did not settle: ${statuses.map((s) => `${s.raftIndex}/${s.raftAppliedIndex}`).join(' ')}`);
    }
    await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
  }
}

interface RowResult {
  raw: CtlResult;
  norm: Normalised;
}

async function runCtl(side: Side, step: CtlStep): Promise<RowResult> {
  if (step.settle === true) await settle(side);
  await refreshFacts(side);
  const args = resolve(side, step.line);
  const endpoints = step.on === 'all' ? side.cluster.endpoints() : [side.cluster.member(step.on).endpoint];
  const deadline = Date.now() + compatLimits.retryTimeoutMs;
  let raw = await etcdctl(args, { endpoints });
  while (step.retry !== undefined && raw.code !== 0 && step.retry.test(raw.stdout + raw.stderr) && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, compatLimits.retryIntervalMs));
    raw = await etcdctl(args, { endpoints });
  }
  if (step.capture !== undefined) side.captured.set(step.capture, raw.stdout);
  // after the row: a member it added has an id now, a leader it moved has a new term
  const facts = await refreshFacts(side);
  return { raw, norm: normaliseCluster(raw, { args, facts }) };
}

function expectationProblem(step: CtlStep, raw: CtlResult): string | undefined {
  const text = raw.stdout + raw.stderr;
  if (step.ok !== undefined && (raw.code !== 0 || !step.ok.test(text))) return `expected success with output ~ ${step.ok}`;
  if (step.err !== undefined && (raw.code === 0 || !step.err.test(text))) return `expected failure with output ~ ${step.err}`;
  return undefined;
}

function show(label: string, n: Normalised): string {
  return `  [${label}] exit ${n.code}\n  stdout: ${JSON.stringify(n.stdout)}\n  stderr: ${JSON.stringify(n.stderr)}`;
}

/** Runs the steps in order, each on all targets at once, and fails once at the end listing every problem. */
async function runScript(steps: readonly Step[]): Promise<void> {
  assert.ok(sides.length === targets.length, 'every target started');
  const problems: string[] = [];
  try {
    for (const step of steps) {
      if (step.kind === 'do') {
        await Promise.all(sides.map((side) => step.run(side)));
        continue;
      }
      const results = await Promise.all(sides.map((side) => runCtl(side, step)));
      compareRow(step, results, problems);
    }
  } catch (e) {
    for (const side of sides) process.stderr.write(`${side.cluster.logTails()}\n`);
    throw e;
  }
  if (problems.length > 0) assert.fail(`${problems.length} problem(s):\n\n${problems.join('\n\n')}`);
}

function compareRow(step: CtlStep, results: readonly RowResult[], problems: string[]): void {
  const describe = `$ etcdctl ${step.line}   (on ${step.on})`;
  results.forEach((res, i) => {
    const problem = expectationProblem(step, res.raw);
    const label = sides[i]?.label ?? '?';
    if (problem !== undefined) problems.push(`${describe}\n  [${label}] ${problem}\n${show(label, res.norm)}`);
  });
  const transcript = process.env['E2E_TRANSCRIPT'];
  if (transcript !== undefined) {
    appendFileSync(transcript, `${describe}\n${results.map((res, i) => show(sides[i]?.label ?? '?', res.norm)).join('\n')}\n\n`);
  }
  const [reference, ...others] = results;
  others.forEach((res, i) => {
    if (reference === undefined || JSON.stringify(res.norm) === JSON.stringify(reference.norm)) return;
    problems.push(`${describe}\n  outputs differ:\n${show(sides[0]?.label ?? '?', reference.norm)}\n${show(sides[i + 1]?.label ?? '?', res.norm)}`);
  });
}

test('static bootstrap: member list in every format, endpoint status/health/hashkv --cluster', () => runScript(bootstrap));
test('move-leader: to a follower, to itself, to an unknown id, without the leader among the endpoints', () => runScript(moveLeader));
test('member add, refused reconfigurations, start from the ETCD_* variables etcdctl printed', () => runScript(add));
test('learner: add, a second learner refused, promote refused while behind, serve, promote', () => runScript(learner));
test('member update: duplicate URL and unknown id refused, then a new peer URL the member restarts on', () => runScript(update));
test('member remove: unknown id, a voter and a promoted learner; removed members exit; the rest serve', () => runScript(remove));
