/**
 * Peer links over TLS, on real etcd and on etcd-ts alike: a 3-member cluster with CA-signed peer
 * certificates and --peer-client-cert-auth, one with --peer-auto-tls, and one where a member's peer
 * certificate has a CN other than --peer-cert-allowed-cn: the other two form the cluster and serve, the
 * intruder is refused at every handshake (logged as "rejected connection") and never gets a leader.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { targetsFromEnv, waitFor } from '../harness.js';
import { TestPki, type Issued } from '../tls-certs.js';
import { ClusterMember, timing, timingFlags, withCluster, type Cluster } from './cluster.js';

const targets = targetsFromEnv();
let pki: TestPki;
const certs = new Map<string, Issued>();

before(() => {
  pki = TestPki.create();
  for (const name of ['m1', 'm2', 'm3', 'm4']) certs.set(name, pki.issue(name, { cn: 'member', ips: ['127.0.0.1'] }));
  certs.set('intruder', pki.issue('intruder', { cn: 'intruder', ips: ['127.0.0.1'] }));
});

after(() => pki.remove());

function peerCertFlags(certName: string): string[] {
  const c = certs.get(certName)!;
  return [`--peer-cert-file=${c.cert}`, `--peer-key-file=${c.key}`, `--peer-trusted-ca-file=${pki.caCert}`, '--peer-client-cert-auth'];
}

/** A write on one member is read on every other, and all agree on the data. */
async function checkReplicates(cluster: Cluster): Promise<void> {
  const [first, ...rest] = cluster.members;
  const put = await first!.etcdctl(['put', 'tls-key', 'over-tls']);
  assert.equal(put.stdout, 'OK\n', put.stderr);
  for (const m of rest) {
    const got = await m.etcdctl(['get', 'tls-key']);
    assert.equal(got.stdout, 'tls-key\nover-tls\n', got.stderr);
  }
  // Followers forward keep-alives to the leader over the TLS peer link.
  const grant = await first!.etcdctl(['lease', 'grant', '60']);
  const lease = /lease ([0-9a-f]+) granted/.exec(grant.stdout)?.[1];
  assert.ok(lease !== undefined, grant.stdout + grant.stderr);
  for (const m of cluster.members) {
    const kept = await m.etcdctl(['lease', 'keep-alive', '--once', lease]);
    assert.match(kept.stdout, new RegExp(`lease ${lease} keepalived with TTL\\(60\\)`), kept.stderr);
  }
  await cluster.waitConverged();
  const list = await first!.etcdctl(['member', 'list']);
  assert.equal(list.stdout.match(/https:\/\/127\.0\.0\.1:\d+/g)?.length, 3, list.stdout);
}

for (const target of targets) {
  test(`${target.label}: a 3-member cluster over peer TLS with client certificate auth; a 4th joins over TLS as a learner, promoted through a follower`, async () => {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], peerScheme: 'https', memberFlags: (name) => peerCertFlags(name) }, async (cluster) => {
      await cluster.waitLeader();
      await checkReplicates(cluster);
      // Joining reads the member list from a peer's https port, then catches up over the TLS links.
      const m4 = await cluster.create('m4');
      const m1 = cluster.member('m1');
      // etcd refuses `member add` until its peers have been connected for its health interval (5 s).
      let added = '';
      await waitFor(async () => {
        const r = await m1.etcdctl(['member', 'add', 'm4', '--learner', `--peer-urls=${m4.peerUrl}`]);
        added = r.stdout;
        return r.code === 0;
      }, { what: 'member add m4', timeoutMs: 20_000, intervalMs: 500 });
      const id = /Member +([0-9a-f]+) added/.exec(added)?.[1];
      assert.ok(id !== undefined, added);
      m4.launch({ initialCluster: cluster.initialCluster(), state: 'existing', token: cluster.token });
      await m4.waitServing({ learner: true });
      // Promoted through a follower, which forwards the request to the leader's https peer port.
      const { leader } = await cluster.waitLeader({ among: cluster.members.slice(0, 3) });
      const follower = cluster.members.slice(0, 3).find((m) => m !== leader)!;
      await waitFor(async () => (await follower.etcdctl(['member', 'promote', id])).code === 0,
        { what: 'member promote m4 through a follower', timeoutMs: 20_000, intervalMs: 500 });
      await m4.waitServing();
      assert.equal((await m4.etcdctl(['get', 'tls-key'])).stdout, 'tls-key\nover-tls\n');
    });
  });

  test(`${target.label}: a 3-member cluster over --peer-auto-tls`, async () => {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], peerScheme: 'https', flags: [...timingFlags, '--peer-auto-tls'] }, async (cluster) => {
      await cluster.waitLeader();
      await checkReplicates(cluster);
      for (const m of cluster.members) assert.ok(existsSync(join(m.dataDir, 'fixtures', 'peer', 'cert.pem')), `${m.name}: no generated peer cert`);
    });
  });

  test(`${target.label}: a peer whose certificate CN is not --peer-cert-allowed-cn is refused; the others serve`, async () => {
    const members: ClusterMember[] = [];
    try {
      for (const name of ['m1', 'm2', 'm3']) {
        const flags = [...timingFlags, ...peerCertFlags(name === 'm3' ? 'intruder' : name), '--peer-cert-allowed-cn=member'];
        members.push(await ClusterMember.create({ target, name, flags, peerScheme: 'https' }));
      }
      const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      for (const m of members) m.launch({ initialCluster, state: 'new', token: 'peer-tls-cn' });
      const [m1, m2, m3] = members as [ClusterMember, ClusterMember, ClusterMember];
      await Promise.all([m1.waitServing(), m2.waitServing()]);
      assert.equal((await m1.etcdctl(['put', 'k', 'v'])).stdout, 'OK\n');
      assert.equal((await m2.etcdctl(['get', 'k'])).stdout, 'k\nv\n');
      await waitFor(() => [m1, m2].some((m) => /rejected connection/.test(readFileSync(m.logPath, 'utf8'))), { what: 'a logged refusal of the intruder' });
      // Several election timeouts later the intruder still has no leader and none of the data.
      const until = Date.now() + 6 * timing.electionMs;
      while (Date.now() < until) {
        const health = await m3.etcdctl(['endpoint', 'health', '--dial-timeout=1s', '--command-timeout=1s']);
        assert.notEqual(health.code, 0, `the intruder serves: ${health.stdout}`);
        const status = await m3.status().catch(() => undefined);
        assert.ok(status === undefined || status.leader === 0n, `the intruder follows ${status?.leader.toString(16)}`);
      }
      const local = await m3.etcdctl(['get', 'k', '--consistency=s', '--dial-timeout=1s', '--command-timeout=1s']);
      assert.equal(local.stdout, '', 'the intruder received the data');
    } catch (e) {
      for (const m of members) process.stderr.write(`${m.logTail()}\n`);
      throw e;
    } finally {
      await Promise.all(members.map((m) => m.destroy()));
    }
  });
}
