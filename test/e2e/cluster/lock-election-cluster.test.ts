/**
 * Issue 5 on a cluster: Lock and Election served by followers, which propose through the leader and wait
 * on their own store's watchers. One three-member cluster per target; a lock is held through one
 * follower, contended through the other, released through the leader; an election is observed on one
 * follower while candidates campaign on the other. What each step returned (keys, revisions, values,
 * error codes) must equal the first target's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetsFromEnv, waitFor, type Target } from '../harness.js';
import { ConcurrencyRpc } from '../concurrency-rpc.js';
import { isServiceError } from '../grpc-client.js';
import { withCluster } from './cluster.js';

const targets = targetsFromEnv();

async function scenario(target: Target): Promise<string[]> {
  return withCluster({ target, names: ['m1', 'm2', 'm3'] }, async (cluster) => {
    const { leader } = await cluster.waitLeader();
    const [f1, f2] = cluster.running().filter((m) => m !== leader);
    assert.ok(f1 !== undefined && f2 !== undefined);
    const [viaLeader, viaF1, viaF2] = [leader, f1, f2].map((m) => new ConcurrencyRpc(m.endpoint)) as [ConcurrencyRpc, ConcurrencyRpc, ConcurrencyRpc];
    const out: string[] = [];
    try {
      for (const ID of [0x11n, 0x12n, 0x13n]) await viaF1.rpc.leaseGrant({ ID, TTL: 60n });
      const held = await viaF1.lock('cl', 0x11n);
      out.push(`f1 holds ${held.key.toString()} at ${held.header?.revision}`);
      const contended = viaF2.lock('cl', 0x12n);
      await waitFor(async () => (await viaLeader.keys('cl/')).includes('cl/12'), { what: 'f2 queued' });
      try {
        await viaF2.lock('cl', 0x13n, 600);
        out.push('f2 second waiter: acquired?!');
      } catch (e) {
        out.push(`f2 second waiter: ${isServiceError(e) ? `code ${e.code}` : String(e)}`);
      }
      await waitFor(async () => !(await viaLeader.keys('cl/')).includes('cl/13'), { what: 'canceled waiter withdrawn', timeoutMs: 5000 });
      out.push(`keys while contended: ${(await viaLeader.keys('cl/')).join(',')}`);
      const unlocked = await viaLeader.unlock(held.key);
      const got = await contended;
      out.push(`unlock via leader at ${unlocked.header?.revision}; f2 then holds ${got.key.toString()} at ${got.header?.revision}`);

      const observer = viaF2.observe('ce');
      const first = await viaF1.campaign('ce', 0x11n, 'one');
      out.push(`f1 elected ${first.leader?.key.toString()} rev ${first.leader?.rev}`);
      const next = viaF2.campaign('ce', 0x13n, 'two');
      await waitFor(async () => (await viaF1.keys('ce/')).includes('ce/13'), { what: 'second candidate queued' });
      await viaF1.proclaim(first.leader, 'one-b');
      await viaF2.resign(first.leader);
      const second = await next;
      out.push(`f2 elected ${second.leader?.key.toString()} rev ${second.leader?.rev}`);
      const leaderNow = await viaF1.leader('ce');
      out.push(`leader via f1: ${leaderNow.kv?.key.toString()}=${leaderNow.kv?.value.toString()}`);
      await observer.waitCount(3);
      observer.cancel();
      // The header revision of an observed change is the watch response's, which etcd fills with its store's
      // revision at send time (later than the change when its watcher was still catching up): timing, not
      // semantics. Compare the changes' own revisions, and check the headers never precede them.
      for (const r of observer.received) assert.ok((r.header?.revision ?? 0n) >= (r.kv?.modRevision ?? 0n), 'a header never precedes its change');
      out.push(`observed on f2: ${observer.received.map((r) => `${r.kv?.key.toString()}=${r.kv?.value.toString()}@${r.kv?.modRevision}`).join(' ')}`);
      return out;
    } finally {
      for (const c of [viaLeader, viaF1, viaF2]) c.close();
    }
  });
}

test('Lock and Election through followers of a three-member cluster give the reference results', async () => {
  const results = await Promise.all(targets.map((t) => scenario(t)));
  const [reference, ...others] = results;
  assert.ok(reference !== undefined);
  assert.equal(reference.length, 8, reference.join('\n'));
  for (const [i, other] of others.entries()) assert.deepEqual(other, reference, `${targets[i + 1]?.label} differs from ${targets[0]?.label}`);
});
