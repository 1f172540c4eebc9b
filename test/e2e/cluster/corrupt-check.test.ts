/**
 * Issue 7: corruption checks on a 3-member etcd-ts cluster (etcd-ts only: corrupting a member means
 * editing its backend offline, which this test does with our own backend module).
 *  - periodic (--experimental-corrupt-check-time): a follower's backend is altered while it is stopped; once
 *    it is back, the leader's check raises CORRUPT (member id 0, as etcd), `etcdctl alarm list` shows it,
 *    and writes fail with etcd's "corrupt cluster" error while reads are still served.
 *  - initial (--experimental-initial-corrupt-check): the altered member refuses to start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { targetsFromEnv, waitFor } from '../harness.js';
import { timingFlags, withCluster, type ClusterMember } from './cluster.js';
import { Backend } from '../../../src/storage/backend/backend.js';

const ours = targetsFromEnv().find((t) => t.name === 'ours');

async function writeKeys(member: ClusterMember, n: number): Promise<void> {
  const rpc = member.rpc();
  try {
    for (let i = 0; i < n; i++) await rpc.put(`cc/${i}`, `v${i}`);
  } finally {
    rpc.close();
  }
}

/** Flips one byte of the newest record of the key bucket: the member's HashKV no longer matches. */
async function corruptBackend(member: ClusterMember): Promise<void> {
  const b = Backend.open(join(member.dataDir, 'member', 'snap', 'db'));
  try {
    let last: { key: Buffer; value: Buffer } | undefined;
    b.forEach('key', {}, (key, value) => void (last = { key: Buffer.from(key), value: Buffer.from(value) }));
    assert.ok(last !== undefined, 'the key bucket has records');
    const value = Buffer.from(last.value);
    value[value.length - 1] = (value[value.length - 1]! ^ 0x01) & 0xff;
    b.put('key', last.key, value);
    await b.commit();
  } finally {
    await b.close();
  }
}

test('periodic corruption check: the leader raises CORRUPT for an altered follower; writes then fail', { timeout: 120_000, skip: ours === undefined }, async () => {
  await withCluster({ target: ours!, names: ['m1', 'm2', 'm3'], flags: [...timingFlags, '--experimental-corrupt-check-time=1s'] }, async (cluster) => {
    const { leader } = await cluster.waitLeader();
    await writeKeys(leader, 20);
    await cluster.waitConverged();
    const victim = cluster.members.find((m) => m !== leader)!;
    await victim.stop();
    await corruptBackend(victim);
    await victim.restart();
    await waitFor(async () => (await leader.etcdctl(['alarm', 'list'])).stdout.includes('alarm:CORRUPT'), { what: 'CORRUPT raised', timeoutMs: 20_000 });
    // Go's proto text leaves out a zero member id.
    assert.equal((await leader.etcdctl(['alarm', 'list'])).stdout, 'alarm:CORRUPT \n');
    const put = await leader.etcdctl(['put', 'after', 'x']);
    assert.notEqual(put.code, 0);
    assert.match(put.stderr, /etcdserver: corrupt cluster/);
    const get = await leader.etcdctl(['get', 'cc/0', '--print-value-only']);
    assert.equal(get.stdout, 'v0\n', 'reads are still served');
  });
});

test('initial corruption check: an altered member refuses to start', { timeout: 120_000, skip: ours === undefined }, async () => {
  await withCluster({ target: ours!, names: ['m1', 'm2', 'm3'], flags: [...timingFlags, '--experimental-initial-corrupt-check'] }, async (cluster) => {
    const { leader } = await cluster.waitLeader();
    await writeKeys(leader, 20);
    await cluster.waitConverged();
    const victim = cluster.members.find((m) => m !== leader)!;
    await victim.stop();
    await victim.restart().catch(() => undefined);
    assert.ok(victim.running, 'an intact member passes the initial check');
    await victim.stop();
    await corruptBackend(victim);
    victim.launch();
    assert.ok(await victim.waitExit(30_000), 'the altered member exits');
    assert.equal(victim.lastExit?.code, 1);
    assert.match(readFileSync(victim.logPath, 'utf8'), /found data inconsistency with peers/);
  });
});
