import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemberInfo } from '../gen/etcdts/internal.js';
import { crc32c } from '../mvcc/crc32c.js';
import { revisionKey } from '../mvcc/revision.js';
import { Backend, bucketNames } from '../storage/backend/backend.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { Wal } from '../storage/wal/wal.js';
import { clusterId, memberId } from './ids.js';
import { hasChecksum, snapshotStatus } from './snapshot-file.js';
import { restoreSnapshot, RestoreError, type RestoreOptions } from './snapshot-restore.js';

const token = 'new-token';
const peers = { a: 'http://127.0.0.1:1001', b: 'http://127.0.0.1:1002', c: 'http://127.0.0.1:1003' };
const initialCluster = Object.entries(peers).map(([n, u]) => `${n}=${u}`).join(',');

function idKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(id);
  return b;
}

/** An old member's backend: keys, a lease, a user, two old members (one removed), consistent index 900. */
async function oldBackend(dir: string): Promise<Backend> {
  const b = Backend.open(dir);
  for (let rev = 1; rev <= 50; rev++) b.put('key', revisionKey(rev, 0), Buffer.from(`value-${rev}`));
  b.put('lease', idKey(7n), Buffer.from('lease-7'));
  b.put('authUsers', Buffer.from('root'), Buffer.from('user'));
  b.put('members', idKey(111n), Buffer.from('old-member'));
  b.put('membersRemoved', idKey(222n), Buffer.from([1]));
  b.setConsistentIndex({ index: 900, term: 7 });
  await b.commit();
  return b;
}

/** What `etcdctl snapshot save` writes: the copy followed by its sha256. */
async function savedSnapshot(dir: string): Promise<string> {
  const b = await oldBackend(path.join(dir, 'old'));
  const db = path.join(dir, 'raw.db');
  await b.snapshotTo(db);
  await b.close();
  const bytes = fs.readFileSync(db);
  const file = path.join(dir, 'saved.db');
  fs.writeFileSync(file, Buffer.concat([bytes, createHash('sha256').update(bytes).digest()]));
  return file;
}

function options(snapshotPath: string, name: keyof typeof peers, dataDir: string): RestoreOptions {
  return { snapshotPath, name, dataDir, initialCluster, initialClusterToken: token, initialAdvertisePeerUrls: [peers[name]], skipHashCheck: false };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapshot-restore-'));
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('restore builds, for each member, the same new cluster over the old data', () => withDir(async (dir) => {
  const file = await savedSnapshot(dir);
  assert.ok(hasChecksum(fs.statSync(file).size));
  const ids = Object.values(peers).map((u) => memberId([u], { clusterToken: token })).sort((x, y) => (x < y ? -1 : 1));
  for (const name of ['a', 'b', 'c'] as const) {
    const dataDir = path.join(dir, name);
    const r = await restoreSnapshot(options(file, name, dataDir));
    assert.equal(r.memberId, memberId([peers[name]], { clusterToken: token }));
    assert.equal(r.clusterId, clusterId(ids));
    assert.equal(r.snapshotIndex, 3);

    const b = Backend.open(path.join(dataDir, 'member', 'snap', 'db'));
    assert.deepEqual(b.consistentIndex(), { index: 3, term: 1 });
    assert.equal(b.get('key', revisionKey(50, 0))?.toString(), 'value-50');
    assert.equal(b.get('lease', idKey(7n))?.toString(), 'lease-7');
    assert.equal(b.get('authUsers', Buffer.from('root'))?.toString(), 'user');
    assert.equal(b.get('membersRemoved', idKey(222n)), undefined);
    const members: Array<{ name: string; peerUrls: string[] }> = [];
    b.forEach('members', {}, (_k, v) => void members.push(MemberInfo.decode(v)));
    assert.deepEqual(members.map((m) => `${m.name}=${m.peerUrls.join()}`).sort(), initialCluster.split(','));
    await b.close();

    const wal = path.join(dataDir, 'member', 'wal');
    assert.deepEqual(Wal.readSnapshotMarkers(wal).map((m) => m.index), [0, 3]);
    const opened = Wal.open(wal, { snapshot: { index: 3, term: 1 } });
    assert.deepEqual(opened.metadata, { memberId: r.memberId, clusterId: r.clusterId });
    assert.deepEqual(opened.hardState, { term: 1, vote: ids[0], commit: 3 });
    assert.deepEqual(opened.entries, []);
    opened.wal.close();
    const snap = new Snapshotter(path.join(dataDir, 'member', 'snap')).loadNewestAvailable([{ index: 3, term: 1 }]);
    assert.equal(snap?.metadata.index, 3);
    assert.deepEqual(snap?.metadata.confState.voters, ids);
  }
}));

test('restore refuses a corrupted snapshot with etcd\'s message and leaves nothing, unless told to skip the check', () => withDir(async (dir) => {
  const file = await savedSnapshot(dir);
  const bytes = fs.readFileSync(file);
  bytes[4096 + 17] = (bytes[4096 + 17] ?? 0) ^ 0xff;
  fs.writeFileSync(file, bytes);
  const dataDir = path.join(dir, 'a');
  await assert.rejects(restoreSnapshot(options(file, 'a', dataDir)), (err: Error) => {
    assert.ok(err instanceof RestoreError);
    assert.match(err.message, /^expected sha256 \[(\d+ ){31}\d+\], got \[(\d+ ){31}\d+\]$/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['old', 'raw.db', 'saved.db']);
  await restoreSnapshot({ ...options(file, 'a', dataDir), skipHashCheck: true });
  assert.ok(fs.existsSync(path.join(dataDir, 'member', 'wal')));
}));

test('restore of a file copied from a data dir (no checksum) needs --skip-hash-check', () => withDir(async (dir) => {
  await savedSnapshot(dir);
  const raw = path.join(dir, 'raw.db');
  await assert.rejects(restoreSnapshot(options(raw, 'a', path.join(dir, 'a'))), /^RestoreError: snapshot missing hash but --skip-hash-check=false$/);
  await restoreSnapshot({ ...options(raw, 'a', path.join(dir, 'a')), skipHashCheck: true });
}));

test('restore refuses an existing data dir and a name or URLs not in --initial-cluster, as etcd does', () => withDir(async (dir) => {
  const file = await savedSnapshot(dir);
  fs.mkdirSync(path.join(dir, 'exists'));
  await assert.rejects(restoreSnapshot(options(file, 'a', path.join(dir, 'exists'))), { message: `data-dir "${path.join(dir, 'exists')}" exists` });
  await assert.rejects(restoreSnapshot({ ...options(file, 'a', path.join(dir, 'x')), name: 'zz' }),
    { message: 'couldn\'t find local name "zz" in the initial cluster configuration' });
  await assert.rejects(restoreSnapshot({ ...options(file, 'a', path.join(dir, 'x')), initialAdvertisePeerUrls: ['http://127.0.0.1:9'] }),
    { message: `--initial-cluster has a=${peers.a} but missing from --initial-advertise-peer-urls=http://127.0.0.1:9` });
  assert.equal(fs.existsSync(path.join(dir, 'x')), false);
}));

test('snapshot status: CRC-32C over every bucket in name order, last revision, all entries, database size', () => withDir(async (dir) => {
  const file = await savedSnapshot(dir);
  const s = await snapshotStatus(file);
  assert.equal(s.revision, 50);
  // 50 keys, 1 lease, 1 user, 2 members, consistent index and term.
  assert.equal(s.totalKey, 50 + 1 + 1 + 1 + 1 + 2);
  assert.equal(s.totalSize, fs.statSync(path.join(dir, 'raw.db')).size);
  const b = Backend.open(path.join(dir, 'old'));
  let h = 0;
  for (const name of [...bucketNames].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)))) {
    h = crc32c(h, Buffer.from(name));
    b.forEach(name, {}, (k, v) => {
      h = crc32c(crc32c(h, k), v);
    });
  }
  await b.close();
  assert.equal(s.hash, h);
  assert.deepEqual(await snapshotStatus(path.join(dir, 'raw.db')), s);
}));
