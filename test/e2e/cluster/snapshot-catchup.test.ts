/**
 * Acceptance 3 of issue 4: members run with --snapshot-count=100; a follower is taken away while the other
 * two advance far past it, so that the leader has compacted the raft log it would need; when it returns
 * it must catch up BY SNAPSHOT, and then hold every acknowledged key and report the same HashKV at the same
 * revision as the others. Two cases, each on a fresh cluster: the follower is frozen with SIGSTOP (it
 * keeps its sockets and memory and resumes where it was), or SIGKILLed (it restarts from its data dir).
 *
 * How far is "far past", from etcd's own constants (etcd-ts should keep the same ones: they decide when a
 * member gets a snapshot rather than entries):
 *  - after each snapshot the leader keeps the last 5000 entries (etcd's SnapshotCatchUpEntries, not a
 *    flag in 3.4) and snapshots every --snapshot-count entries, so the log is compacted past an index once
 *    the leader has applied 5000 + 2 x snapshot-count entries beyond it (plus slack);
 *  - a FROZEN follower still receives, when it resumes, what the leader had already sent into its
 *    sockets: at most 512 MsgApp (etcd's MaxInflightMsgs) before the leader stops sending to it. So the
 *    SIGSTOP case first writes one at a time (one entry per MsgApp) until that window must be full, and
 *    only then writes the compaction distance with many concurrent writers.
 *  - etcd skips log compaction for 30 s after it sent a snapshot (releaseDelayAfterSnapshot): a second
 *    catch-up on the same cluster would find the log uncompacted. Hence one cluster per case.
 * That a snapshot was received is read from etcd's metric etcd_network_snapshot_receive_success (labelled
 * by sender) on the returning member's /metrics: etcd-ts must export it too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { targetsFromEnv, type Target } from '../harness.js';
import { timingFlags, withCluster, type Cluster, type ClusterMember } from './cluster.js';
import { prng, seedFromEnv, storedUnder, WriteLoad } from './workload.js';

const etcdFacts = { snapshotCatchUpEntries: 5000, maxInflightMsgs: 512 } as const;
const config = {
  snapshotCount: 100,
  /** Sequential writes that fill a frozen follower's in-flight window, with room for internal entries. */
  windowFillWrites: etcdFacts.maxInflightMsgs + 88,
  bulkWriters: 24,
  slackEntries: 300,
  phaseTimeoutMs: 90_000,
  metricsTimeoutMs: 5_000,
} as const;

const compactionDistance = etcdFacts.snapshotCatchUpEntries + 2 * config.snapshotCount + config.slackEntries;
const seed = seedFromEnv();

/** The sum of etcd_network_snapshot_receive_success over all senders, from the member's /metrics. */
async function snapshotsReceived(member: ClusterMember): Promise<number> {
  const text = await new Promise<string>((ok, fail) => {
    const req = request({ host: '127.0.0.1', port: member.clientPort, path: '/metrics', timeout: config.metricsTimeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? ok(Buffer.concat(chunks).toString()) : fail(new Error(`/metrics: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('/metrics: timeout')));
    req.on('error', fail);
    req.end();
  });
  let sum = 0;
  for (const m of text.matchAll(/^etcd_network_snapshot_receive_success(?:\{[^}]*\})? (\S+)$/gm)) sum += Number(m[1]);
  return sum;
}

interface Case {
  name: 'sigstop' | 'sigkill';
  /** Writes one at a time before the bulk (the frozen follower's in-flight window). */
  sequentialWrites: number;
  takeAway: (m: ClusterMember) => Promise<void>;
  bringBack: (m: ClusterMember) => Promise<void>;
}

const cases: Case[] = [
  { name: 'sigstop', sequentialWrites: config.windowFillWrites, takeAway: async (m) => m.pause(), bringBack: async (m) => m.resume() },
  { name: 'sigkill', sequentialWrites: 0, takeAway: (m) => m.kill(), bringBack: (m) => m.restart() },
];

async function writeWhileAway(cluster: Cluster, options: { c: Case; away: ClusterMember; rand: () => number }): Promise<WriteLoad> {
  const load = new WriteLoad({ prefix: `sn/${options.c.name}/`, seed: Math.floor(options.rand() * 2 ** 31),
    members: cluster.members.filter((m) => m !== options.away) });
  try {
    if (options.c.sequentialWrites > 0) {
      load.start(1);
      await load.waitAcks(options.c.sequentialWrites, { timeoutMs: config.phaseTimeoutMs, what: 'sequential writes' });
    }
    load.start(config.bulkWriters);
    await load.waitAcks(compactionDistance, { timeoutMs: config.phaseTimeoutMs, what: `writes while ${options.away.name} is away` });
  } finally {
    await load.stop();
  }
  return load;
}

async function catchUp(cluster: Cluster, c: Case, log: (msg: string) => void): Promise<void> {
  const rand = prng(seed);
  const { leader } = await cluster.waitLeader();
  const followers = cluster.members.filter((m) => m !== leader);
  const away = followers[Math.floor(rand() * followers.length)];
  if (away === undefined) throw new Error('no follower');
  const before = await snapshotsReceived(away);
  await c.takeAway(away);
  const startedAtMs = Date.now();
  const load = await writeWhileAway(cluster, { c, away, rand });
  log(`${c.name}: ${load.history.acks.size} writes in ${Date.now() - startedAtMs} ms while ${away.name} was away; ${load.history.summary()}`);
  assert.equal(load.history.failures.size, 0, 'writes to the two remaining members failed');
  const backAtMs = Date.now();
  await c.bringBack(away);
  const { revision, hash } = await cluster.waitConverged({ timeoutMs: config.phaseTimeoutMs });
  // a killed member starts its counters again from zero
  const received = (await snapshotsReceived(away)) - (c.name === 'sigstop' ? before : 0);
  log(`${c.name}: ${away.name} caught up in ${Date.now() - backAtMs} ms (revision ${revision}, HashKV ${hash}); snapshots received: ${received}`);
  assert.ok(received >= 1, `${away.name} caught up without receiving a snapshot`);
  for (const member of cluster.members) {
    const problems = load.history.verify(await storedUnder(member, load.prefix));
    assert.deepEqual(problems.slice(0, 20), [], `${member.name}: ${problems.length} problem(s) (E2E_SEED=${seed} to replay)`);
  }
}

for (const target of targetsFromEnv()) {
  for (const c of cases) {
    test(`${target.label}: a follower ${c.name === 'sigstop' ? 'frozen (SIGSTOP)' : 'killed'} while the others pass ` +
      `--snapshot-count catches up by snapshot`, () => run(target, c));
  }
}

async function run(target: Target, c: Case): Promise<void> {
  const log = (msg: string): void => { process.stdout.write(`# [${target.label}] ${msg}\n`); };
  log(`E2E_SEED=${seed}; ${c.sequentialWrites} sequential + ${compactionDistance} concurrent writes while away`);
  await withCluster({ target, names: ['m1', 'm2', 'm3'], token: `e2e-snapshot-${c.name}`,
    flags: [...timingFlags, `--snapshot-count=${config.snapshotCount}`] }, (cluster) => catchUp(cluster, c, log));
}
