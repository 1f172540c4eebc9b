/**
 * Disaster recovery, end to end: a 3-member etcd-ts cluster under concurrent writes, `etcdctl snapshot
 * save` (the real etcdctl) from one member, `etcdutl-ts snapshot restore` into three new data dirs for a new
 * cluster (new ports, new token), and the new cluster started from them. It must hold exactly the old
 * cluster's state at the snapshot's revision (same HashKV there, every acknowledged write up to it, none
 * after it), keep the leases, elect a leader and take writes. A corrupted snapshot is refused with etcd's
 * message unless --skip-hash-check.
 *
 * etcd-ts only: restore builds etcd-ts data dirs (real etcd's are bbolt); test/e2e/snapshot-save.test.ts
 * compares `snapshot save` and the refusal message with real etcd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limits, repoRoot, targetsFromEnv, type CtlResult } from '../harness.js';
import { ClusterMember, clusterLimits, timingFlags, withCluster, type Bootstrap } from './cluster.js';
import { seedFromEnv, storedUnder, WriteLoad } from './workload.js';
import { withRpc } from './rpc.js';

const ours = targetsFromEnv().find((t) => t.name === 'ours');
const newToken = 'restored-cluster';

/** Runs bin/etcdutl-ts (or, with tool 'etcdctl-ts', bin/etcdctl-ts) with a deadline. */
function etcdutl(args: readonly string[], tool: 'etcdutl-ts' | 'etcdctl-ts' = 'etcdutl-ts'): Promise<CtlResult> {
  const child = spawn(join(repoRoot(), 'bin', tool), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`etcdutl-ts ${args.join(' ')}: no exit within ${limits.etcdctlTimeoutMs} ms`));
    }, limits.etcdctlTimeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      ok({ code: code ?? -1, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(err).toString() });
    });
  });
}

function ok(r: CtlResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface RestoreTarget {
  readonly name: string;
  readonly dataDir: string;
  readonly peerUrl: string;
}

function restoreArgs(file: string, m: RestoreTarget, initialCluster: string, extra: readonly string[] = []): string[] {
  return ['snapshot', 'restore', file, `--name=${m.name}`, `--data-dir=${m.dataDir}`, `--initial-cluster=${initialCluster}`,
    `--initial-cluster-token=${newToken}`, `--initial-advertise-peer-urls=${m.peerUrl}`, ...extra];
}

test('a snapshot saved under writes restores into a new 3-member cluster holding exactly that state', { skip: ours === undefined }, async () => {
  const target = ours!;
  const work = mkdtempSync(join(tmpdir(), 'e2e-snapshot-restore-'));
  const fresh: ClusterMember[] = [];
  try {
    await withCluster({ target, names: ['m1', 'm2', 'm3'] }, async (old) => {
      await ourOwnMembers(old.members);
      const m1 = old.member('m1');
      const granted = ok(await m1.etcdctl(['lease', 'grant', '3600']), 'lease grant');
      const leaseId = /^lease ([0-9a-f]+) granted/.exec(granted)?.[1];
      assert.ok(leaseId !== undefined, granted);
      ok(await m1.etcdctl(['put', 'leased', 'v', `--lease=${leaseId}`]), 'put with lease');

      const seed = seedFromEnv();
      process.stdout.write(`# E2E_SEED=${seed}\n`);
      const load = new WriteLoad({ prefix: 'load/', seed, members: old.members });
      load.start(4);
      await load.waitAcks(200, { timeoutMs: clusterLimits.convergeTimeoutMs, what: 'writes before the snapshot' });
      const file = join(work, 'snap.db');
      const acksBefore = load.history.acks.size;
      const saved = await m1.etcdctl(['snapshot', 'save', file]);
      const acksDuring = load.history.acks.size - acksBefore;
      await load.waitAcks(50, { timeoutMs: clusterLimits.convergeTimeoutMs, what: 'writes after the snapshot' });
      await load.stop();
      assert.equal(ok(saved, 'snapshot save'), `Snapshot saved at ${file}\n`);
      assert.equal(statSync(file).size % 512, 32, 'the saved file ends with its sha256');
      process.stdout.write(`# ${acksDuring} writes acknowledged while the snapshot was being saved\n`);

      const status = JSON.parse(ok(await etcdutl(['snapshot', 'status', file, '-w', 'json']), 'snapshot status')) as { revision: number };
      const revision = BigInt(status.revision);
      assert.ok(revision > 200n, `snapshot revision ${revision}`);
      const oldHash = await withRpc(m1.endpoint, (rpc) => rpc.hashKV(revision)).catch((e: unknown) => {
        throw new Error(`m1 (the saved member): HashKV at the snapshot's revision ${revision}: ${String(e)}`);
      });
      assert.equal(oldHash.header?.revision !== undefined && oldHash.header.revision > revision, true, 'writes went on after the snapshot');

      await corruptedRefused(file, { work });
      await old.destroy();

      // Ports are taken as late as possible: between choosing them and binding them, nothing else may.
      for (const name of ['n1', 'n2', 'n3']) fresh.push(await ClusterMember.create({ target, name, flags: timingFlags }));
      const initialCluster = fresh.map((m) => `${m.name}=${m.peerUrl}`).join(',');
      for (const [i, m] of fresh.entries()) {
        // One member is restored by etcdctl-ts's `snapshot restore` (etcdctl 3.4 has the command too).
        ok(await etcdutl(restoreArgs(file, m, initialCluster), i === 1 ? 'etcdctl-ts' : 'etcdutl-ts'), `restore ${m.name}`);
        assert.ok(existsSync(join(m.dataDir, 'member', 'wal')));
      }
      const bootstrap: Bootstrap = { initialCluster, state: 'new', token: newToken };
      for (const m of fresh) m.launch(bootstrap);
      await Promise.all(fresh.map((m) => m.waitServing()));
      await ourOwnMembers(fresh);
      await checkRestored(fresh, { revision, hash: oldHash.hash, leaseId, load });
    });
  } catch (e) {
    for (const m of fresh) process.stderr.write(`${m.logTail()}\n`);
    throw e;
  } finally {
    await Promise.all(fresh.map((m) => m.destroy()));
    rmSync(work, { recursive: true, force: true });
  }
});

async function checkRestored(members: readonly ClusterMember[],
  expect: { revision: bigint; hash: number; leaseId: string; load: WriteLoad }): Promise<void> {
  for (const m of members) {
    const h = await withRpc(m.endpoint, (rpc) => rpc.hashKV(expect.revision)).catch(async (e: unknown) => {
      const status = await m.status().then((st) => `revision ${st.header?.revision}`, (err: unknown) => String(err));
      throw new Error(`${m.name} (restored): HashKV at ${expect.revision}: ${String(e)}; Status: ${status}`);
    });
    assert.equal(h.hash, expect.hash, `${m.name}: HashKV at ${expect.revision}`);
  }
  for (const m of members) {
    const stored = await storedUnder(m, expect.load.prefix);
    for (const [key, ack] of expect.load.history.acks) {
      if (ack.revision <= expect.revision) assert.equal(stored.get(key)?.value, ack.value, `${m.name}: ${key} (revision ${ack.revision})`);
      else assert.equal(stored.has(key), false, `${m.name}: ${key} written at ${ack.revision}, after the snapshot`);
    }
  }
  const leader = await agreedLeader(members);
  const leases = ok(await leader.etcdctl(['lease', 'list']), 'lease list');
  assert.match(leases, new RegExp(`^${expect.leaseId}$`, 'm'));
  assert.equal(ok(await members[1]!.etcdctl(['put', 'after-restore', 'yes']), 'put after restore'), 'OK\n');
  const got = ok(await members[2]!.etcdctl(['get', 'after-restore', '--print-value-only']), 'get after restore');
  assert.equal(got, 'yes\n');
  const list = ok(await members[0]!.etcdctl(['member', 'list']), 'member list');
  for (const m of members) assert.match(list, new RegExp(`, started, ${m.name}, ${m.peerUrl}, ${m.clientUrl}, false`));
}

/** Every member answers from its own process: same cluster, ids of the member list, all still running. */
async function ourOwnMembers(members: readonly ClusterMember[]): Promise<void> {
  const listed = await withRpc(members[0]!.endpoint, (rpc) => rpc.memberList());
  const byName = new Map(listed.members.map((m) => [m.name, m.ID]));
  for (const m of members) {
    assert.ok(m.running, `${m.name} exited\n${m.logTail()}`);
    const status = await m.status();
    assert.equal(status.header?.memberId, byName.get(m.name), `${m.name}: Status answered by another process`);
    assert.equal(status.header?.clusterId, listed.header?.clusterId);
  }
}

/** A byte flipped in the database: etcd's refusal, nothing left behind; accepted with --skip-hash-check. */
async function corruptedRefused(file: string, o: { work: string }): Promise<void> {
  const bytes = readFileSync(file);
  const at = Math.floor((bytes.length - 32) / 2);
  bytes[at] = (bytes[at] ?? 0) ^ 0x01;
  const bad = join(o.work, 'corrupted.db');
  writeFileSync(bad, bytes);
  const dataDir = join(o.work, 'from-corrupted');
  // Never started: its peer URL only has to name the member in --initial-cluster.
  const member: RestoreTarget = { name: 'x1', dataDir, peerUrl: 'http://127.0.0.1:1' };
  const initialCluster = `x1=${member.peerUrl}`;
  const refused = await etcdutl(restoreArgs(bad, member, initialCluster));
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /^Error: expected sha256 \[(\d+ ){31}\d+\], got \[(\d+ ){31}\d+\]$/m);
  assert.equal(existsSync(dataDir), false);
  ok(await etcdutl(restoreArgs(bad, member, initialCluster, ['--skip-hash-check'])), 'restore with --skip-hash-check');
  assert.ok(existsSync(join(dataDir, 'member', 'snap', 'db')));
}

/** The member every one of `members` names as leader, once they agree (a new cluster elects one). */
async function agreedLeader(members: readonly ClusterMember[]): Promise<ClusterMember> {
  const deadline = Date.now() + clusterLimits.leaderTimeoutMs;
  let last = '';
  for (;;) {
    const seen = await Promise.all(members.map((m) => m.status().then((s) => s, (e: unknown) => e as Error)));
    const leaders = seen.map((s) => (s instanceof Error ? undefined : s.leader));
    const leader = members.find((_m, i) => {
      const s = seen[i];
      return !(s instanceof Error) && s !== undefined && s.leader !== 0n && s.leader === s.header?.memberId;
    });
    if (leader !== undefined && leaders.every((l) => l === leaders[0])) return leader;
    last = seen.map((s, i) => `${members[i]?.name}: ${s instanceof Error ? s.message : s.leader.toString(16)}`).join('; ');
    if (Date.now() > deadline) throw new Error(`the restored cluster agreed on no leader: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, clusterLimits.pollIntervalMs));
  }
}
