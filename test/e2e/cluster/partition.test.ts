/**
 * Acceptance 4 of issue 4: every peer link goes through tcp-proxy.ts (members advertise the proxy's port for
 * peers and listen on their own). The leader is cut off from both others ('drop': bytes vanish, as on a
 * partitioned network):
 *  - the majority elects a new leader (within 4 x election timeout + margin, as after a crash: see
 *    failover.test.ts) and serves writes and linearizable reads;
 *  - the minority refuses: a write sent to the old leader right after the cut (it still believes it leads)
 *    and a write and a linearizable read sent once it has stepped down (etcd's CheckQuorum) all fail, by
 *    etcd's errors or by the client's deadline; a serializable read there still answers, from stale data;
 *  - after healing, everything converges (same HashKV at the same revision), the majority's write is
 *    everywhere and the minority's refused writes are nowhere. In etcd that is certain, not luck: the
 *    early write was appended only to the old leader's log, which the new leader's log replaces; the
 *    late one never entered raft, because a member without a leader holds a proposal only until the
 *    request's deadline (propagated by grpc-timeout) and then drops it. A server that queues it and
 *    proposes it once a leader is back applies a write its client was told had failed;
 *  - with --pre-vote the healed node does not depose the new leader: its term did not move while it was
 *    alone, and after it has caught up the leader and term are those elected during the partition.
 * A control case without --pre-vote shows the last check has teeth: there the isolated node's term climbs
 * past the cluster's, and after healing it forces an election at a higher term.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetsFromEnv, type Target } from '../harness.js';
import { clusterLimits, timing, timingFlags, withCluster, type Cluster, type ClusterMember } from './cluster.js';
import { failureOf, withRpc } from './rpc.js';
import { PeerProxy } from './tcp-proxy.js';

const config = {
  /** A refused request must not be answered "ok" within this; etcd itself gives up after 5 s + 2 x election. */
  minorityDeadlineMs: 2_000,
  electionMarginMs: 1_000,
} as const;

const electionBoundMs = 4 * timing.electionMs + config.electionMarginMs;

/**
 * What etcd answers on the minority side (gRPC UNAVAILABLE), besides the deadline: the client's own (code
 * 4), or the server's, which grpc-timeout propagates and etcd reports as UNKNOWN "context deadline exceeded".
 */
const refusals = [
  'etcdserver: request timed out',
  'etcdserver: request timed out, possibly due to previous leader failure',
  'etcdserver: no leader',
  'etcdserver: leader changed',
  // The client's connection to the cut-off member dropped (seen with etcd on a loaded machine): not an answer.
  'Connection dropped',
];

async function refused(what: string, call: () => Promise<unknown>): Promise<string> {
  try {
    await call();
  } catch (e) {
    const { code, details } = failureOf(e);
    const ok = code === 4 || (code === 2 && details === 'context deadline exceeded') || (code === 14 && refusals.includes(details));
    assert.ok(ok, `${what}: refused with an unexpected error: code ${code} ${details}`);
    return `${what}: code ${code} ${details.replace(/ after \d.*$/, '')}`;
  }
  assert.fail(`${what}: the minority side answered ok`);
}

/** Resolves with the time at which `member` was seen no longer claiming leadership. */
async function waitSteppedDown(member: ClusterMember): Promise<number> {
  const from = Date.now();
  for (;;) {
    const s = await member.status();
    if (s.leader !== s.header?.memberId) return Date.now();
    if (Date.now() - from > clusterLimits.leaderTimeoutMs) throw new Error(`${member.name} still claims leadership`);
    await new Promise((ok) => setTimeout(ok, clusterLimits.pollIntervalMs));
  }
}

/**
 * Waits until an isolated follower has certainly started `campaigns` elections of its own: each comes at
 * most 2 x election timeout after the previous one (etcd randomises the timeout in [election, 2 x election)).
 * Its raft term is not observable: etcd 3.4's Status (and every response header) reports the term of the
 * last APPLIED entry, which does not move while the member is alone.
 */
async function waitCampaigns(options: { since: number; campaigns: number }): Promise<void> {
  const until = options.since + options.campaigns * 2 * timing.electionMs + timing.electionMs;
  while (Date.now() < until) await new Promise((ok) => setTimeout(ok, Math.min(clusterLimits.pollIntervalMs * 4, until - Date.now())));
}

interface Isolated {
  old: ClusterMember;
  oldTerm: bigint;
  leader: ClusterMember;
  term: bigint;
  steppedDownAtMs: number;
  refusals: string[];
}

/** Cuts the leader off, checks both sides, returns what the majority elected. */
async function isolateLeader(cluster: Cluster, proxy: PeerProxy, log: (msg: string) => void): Promise<Isolated> {
  const { leader: old, term: oldTerm } = await cluster.waitLeader();
  await withRpc(old.endpoint, (rpc) => rpc.put('pt/before', 'all'));
  const majority = cluster.members.filter((m) => m !== old);
  const cutAtMs = Date.now();
  proxy.isolate(old.name, 'drop');
  const seen: string[] = [];
  // the old leader still believes it leads: the write is appended there and can never commit
  const early = refused('write to the old leader right after the cut', () => withRpc(old.endpoint,
    (rpc) => rpc.put('pt/minority-early', 'lost', { deadlineMs: config.minorityDeadlineMs })));
  const { leader, term } = await cluster.waitLeader({ among: majority, not: old });
  const electedMs = Date.now() - cutAtMs;
  log(`leader ${old.name} (term ${oldTerm}) cut off; ${leader.name} elected at term ${term} after ${electedMs} ms (bound ${electionBoundMs} ms)`);
  assert.ok(electedMs <= electionBoundMs, `the majority took ${electedMs} ms to elect a leader`);
  assert.ok(term > oldTerm);
  await withRpc(leader.endpoint, (rpc) => rpc.put('pt/majority', 'served'));
  const follower = majority.find((m) => m !== leader);
  if (follower === undefined) throw new Error('no majority follower');
  const read = await withRpc(follower.endpoint, (rpc) => rpc.range('pt/majority'));
  assert.equal(read.kvs[0]?.value.toString(), 'served', 'linearizable read on the majority side');
  seen.push(await early);
  const steppedDownAtMs = await waitSteppedDown(old);
  log(`${old.name} no longer claims leadership ${steppedDownAtMs - cutAtMs} ms after the cut`);
  seen.push(await refused('write to the stepped-down old leader', () => withRpc(old.endpoint,
    (rpc) => rpc.put('pt/minority-late', 'lost', { deadlineMs: config.minorityDeadlineMs }))));
  seen.push(await refused('linearizable read on the old leader', () => withRpc(old.endpoint,
    (rpc) => rpc.range('pt/before', { deadlineMs: config.minorityDeadlineMs }))));
  const stale = await withRpc(old.endpoint, (rpc) => rpc.range('pt/', { rangeEnd: 'pt0', serializable: true }));
  assert.deepEqual(stale.kvs.map((kv) => kv.key.toString()), ['pt/before'], 'a serializable read on the minority serves its stale state');
  return { old, oldTerm, leader, term, steppedDownAtMs, refusals: seen };
}

async function healAndConverge(cluster: Cluster, proxy: PeerProxy): Promise<void> {
  proxy.healAll();
  await cluster.waitConverged();
  for (const member of cluster.members) {
    const kvs = await withRpc(member.endpoint, (rpc) => rpc.range('pt/', { rangeEnd: 'pt0', serializable: true }));
    assert.deepEqual(kvs.kvs.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`), ['pt/before=all', 'pt/majority=served'],
      `${member.name} after healing: the majority's write everywhere, the minority's refused writes nowhere`);
  }
}

async function partition(cluster: Cluster, options: { proxy: PeerProxy; preVote: boolean; log: (msg: string) => void }): Promise<void> {
  const { proxy, log } = options;
  const iso = await isolateLeader(cluster, proxy, log);
  log(`minority refusals: ${iso.refusals.join('; ')}`);
  // The isolated node must have had the chance to push its term past the new leader's: it needs
  // (new term - its term + 1) elections. With pre-vote none of them may move its term.
  await waitCampaigns({ since: iso.steppedDownAtMs, campaigns: Number(iso.term - iso.oldTerm) + 1 });
  const isolatedTerm = (await withRpc(iso.old.endpoint, (rpc) => rpc.status())).raftTerm;
  log(`${iso.old.name} is at term ${isolatedTerm} before healing (majority at ${iso.term})`);
  await healAndConverge(cluster, proxy);
  const after = await cluster.waitLeader();
  log(`healed: leader ${after.leader.name} at term ${after.term}; proxy ${JSON.stringify(proxy.stats)}`);
  if (options.preVote) {
    // Pre-vote's promise: an isolated node's failed campaigns never raise its term, so on its return it
    // holds a lower term than the majority and cannot force an election.
    assert.ok(isolatedTerm < iso.term, `with pre-vote the isolated node's term stays below the majority's (${isolatedTerm} vs ${iso.term})`);
    if (after.term === iso.term) {
      assert.equal(after.leader, iso.leader, 'with pre-vote the healed node must not depose the new leader');
    } else {
      // Only the majority's own election (a leader starved of CPU on a loaded machine) can move the term now.
      log(`the majority held an election of its own while healing (term ${iso.term} -> ${after.term}); not the healed node's doing`);
    }
  } else {
    assert.ok(after.term > iso.term, `without pre-vote the healed node's higher term forces an election (term ${after.term})`);
  }
  assert.equal(proxy.stats.unidentified, 0, 'the proxy could not name some dialer');
}

for (const target of targetsFromEnv()) {
  for (const preVote of [true, false]) {
    test(`${target.label}: leader cut off by the proxy ${preVote ? 'with --pre-vote' : 'without pre-vote (control)'}: ` +
      `minority refuses, majority serves, healed cluster converges${preVote ? ', no disruption' : ', term bumps'}`,
    () => run(target, preVote));
  }
}

async function run(target: Target, preVote: boolean): Promise<void> {
  const log = (msg: string): void => { process.stdout.write(`# [${target.label}${preVote ? ' pre-vote' : ''}] ${msg}\n`); };
  const proxy = new PeerProxy();
  try {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], token: 'e2e-partition', proxy,
      flags: [...timingFlags, ...(preVote ? ['--pre-vote'] : [])] }, (cluster) => partition(cluster, { proxy, preVote, log }));
  } finally {
    await proxy.close();
  }
}
