/**
 * Acceptance 2 of issue 4: under continuous writes from several clients to all members, SIGKILL the leader.
 *  - A new leader serves a write within the failover bound. etcd draws each follower's election timeout
 *    from [election, 2 x election), so a survivor campaigns within 2 x election of the last heartbeat.
 *    Under writes the first candidate's log may be behind the other survivor's: that one refuses its
 *    vote, restarts its own timer and campaigns within another 2 x election. Hence 4 x election, plus a
 *    margin for the vote, one commit and a loaded 2-core machine (typically it takes 0.5-1 s). The time
 *    measured is from the SIGKILL to the acknowledgement of the first write SENT after it (a write sent
 *    before could have been committed by the old leader); a prober sends one every probeIntervalMs to
 *    the survivors so the measure does not depend on writers stuck waiting on the dead leader.
 *  - The old leader restarts on its data dir and catches up; writes go on through all three.
 *  - No acknowledged write is lost, on any member (read locally on each), each at the revision it was
 *    acknowledged with; no key holds a value nobody wrote; all members report the same HashKV at the
 *    same revision.
 * The kill point (a seeded number of acknowledged writes, so it does not depend on machine speed) and the
 * member each write goes to come from E2E_SEED (printed on every run and with every failure).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetsFromEnv, type Target } from '../harness.js';
import { timing, withCluster, type Cluster } from './cluster.js';
import { prng, seedFromEnv, storedUnder, WriteLoad } from './workload.js';

const config = {
  acksBeforeKillMin: 100,
  acksBeforeKillMax: 400,
  acksAfterFailover: 100,
  acksAfterRestart: 150,
  probeIntervalMs: 25,
  probeDeadlineMs: 3_000,
  /** Added to 4 x election timeout; see the file comment. */
  failoverMarginMs: 1_000,
  phaseTimeoutMs: 30_000,
} as const;

const failoverBoundMs = 4 * timing.electionMs + config.failoverMarginMs;
const seed = seedFromEnv();

/** Sends a probe write every probeIntervalMs to a random survivor until one is acknowledged. */
async function probeUntilServed(options: { load: WriteLoad; survivors: readonly string[]; rand: () => number; sinceMs: number }): Promise<number> {
  const { load, survivors, rand } = options;
  const deadline = options.sinceMs + config.phaseTimeoutMs;
  const inFlight: Promise<boolean>[] = [];
  while (Date.now() < deadline) {
    const served = load.history.firstAckSince(options.sinceMs);
    if (served !== undefined) {
      await Promise.all(inFlight);
      return served.ackedAtMs - options.sinceMs;
    }
    inFlight.push(load.writeOnce(survivors[Math.floor(rand() * survivors.length)] ?? '', { deadlineMs: config.probeDeadlineMs }));
    await new Promise((ok) => setTimeout(ok, config.probeIntervalMs));
  }
  await Promise.all(inFlight);
  throw new Error(`no write served within ${config.phaseTimeoutMs} ms of the SIGKILL; ${load.history.summary()}`);
}

async function failover(cluster: Cluster, log: (msg: string) => void): Promise<void> {
  const rand = prng(seed);
  const { leader: oldLeader, term: oldTerm } = await cluster.waitLeader();
  const load = new WriteLoad({ prefix: 'fo/', seed: Math.floor(rand() * 2 ** 31), members: cluster.members });
  load.start();
  try {
    const killAt = config.acksBeforeKillMin + Math.floor(rand() * (config.acksBeforeKillMax - config.acksBeforeKillMin));
    await load.waitAcks(killAt, { timeoutMs: config.phaseTimeoutMs, what: 'writes before the kill' });
    const failuresBeforeKill = load.history.summary();
    assert.equal(load.history.failures.size, 0, `a healthy cluster refused writes: ${failuresBeforeKill}`);

    const killedAtMs = Date.now();
    const killed = oldLeader.kill();
    const survivors = cluster.members.filter((m) => m !== oldLeader);
    const failoverMs = await probeUntilServed({ load, survivors: survivors.map((m) => m.name), rand, sinceMs: killedAtMs });
    await killed;
    const { leader: newLeader, term: newTerm } = await cluster.waitLeader({ among: survivors });
    log(`SIGKILL of leader ${oldLeader.name} (term ${oldTerm}) after ${killAt} acks; first write served ` +
      `${failoverMs} ms later (bound ${failoverBoundMs} ms); new leader ${newLeader.name} at term ${newTerm}`);
    assert.ok(failoverMs <= failoverBoundMs, `failover took ${failoverMs} ms > ${failoverBoundMs} ms`);
    assert.ok(newTerm > oldTerm, `new leader's term ${newTerm} after ${oldTerm}`);

    await load.waitAcks(config.acksAfterFailover, { timeoutMs: config.phaseTimeoutMs, what: 'writes with two members' });
    const restartAtMs = Date.now();
    await oldLeader.restart();
    load.reconnect(oldLeader);
    log(`${oldLeader.name} restarted and serving after ${Date.now() - restartAtMs} ms`);
    await load.waitAcks(config.acksAfterRestart, { timeoutMs: config.phaseTimeoutMs, what: 'writes after the restart' });
  } finally {
    await load.stop();
  }
  const { revision, hash } = await cluster.waitConverged();
  log(`converged at revision ${revision}, HashKV ${hash}; ${load.history.summary()}`);
  for (const member of cluster.members) {
    const problems = load.history.verify(await storedUnder(member, 'fo/'));
    assert.deepEqual(problems.slice(0, 20), [], `${member.name}: ${problems.length} problem(s) (E2E_SEED=${seed} to replay)`);
  }
}

for (const target of targetsFromEnv()) {
  test(`${target.label}: SIGKILL the leader under writes: quick failover, restart catches up, nothing acknowledged lost`,
    () => run(target));
}

async function run(target: Target): Promise<void> {
  const log = (msg: string): void => { process.stdout.write(`# [${target.label}] ${msg}\n`); };
  log(`E2E_SEED=${seed}`);
  try {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], token: 'e2e-failover' }, (cluster) => failover(cluster, log));
  } catch (e) {
    throw new Error(`${String(e instanceof Error ? e.message : e)} (E2E_SEED=${seed} replays)`, { cause: e });
  }
}
