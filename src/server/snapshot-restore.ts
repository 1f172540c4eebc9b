/**
 * `snapshot restore`: a fresh data dir for one member of a new cluster, built from a saved snapshot, laid
 * out so that bootstrap.ts starts it as it restarts any member (snapshot file + WAL + backend).
 *
 * As etcd 3.4 does it: the key space, leases, users and roles, alarms stay as they are in the snapshot;
 * the member list is replaced by the new --initial-cluster; the raft log starts over. The new log is what
 * a brand-new cluster's would be (one committed conf change per member at term 1, indexes 1..n), except
 * that it is already compacted into a raft snapshot at n whose configuration has every member as a voter,
 * and the backend's consistent index is n, so nothing is applied twice and the first entry a new leader
 * appends is n+1. Every member restored from the same snapshot with the same flags gets the same cluster
 * id, member ids and log, so they form one cluster.
 *
 * The data dir is built under a temporary name and renamed into place at the end: a refused or failed
 * restore leaves nothing behind (etcd leaves a half-made data dir).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MemberInfo } from '../gen/etcdts/internal.js';
import { encodeConfChangeV2 } from '../raft/conf-change.js';
import { ConfChangeTransition, ConfChangeType, EntryType, type Entry, type Snapshot } from '../raft/types.js';
import { Backend } from '../storage/backend/backend.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { Wal } from '../storage/wal/wal.js';
import { clusterId as deriveClusterId, memberId as deriveMemberId } from './ids.js';
import { encodeMember, type MemberRecord } from './membership.js';
import { copySnapshotDb, SnapshotFileError } from './snapshot-file.js';

export interface RestoreOptions {
  readonly snapshotPath: string;
  readonly name: string;
  /** Defaults to "<name>.etcd", as etcd's. */
  readonly dataDir?: string;
  /** name=url,... as --initial-cluster takes it. */
  readonly initialCluster: string;
  readonly initialClusterToken: string;
  readonly initialAdvertisePeerUrls: readonly string[];
  readonly skipHashCheck: boolean;
  readonly onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Lines for the operator (etcd logs these with zap). */
  readonly log?: (msg: string, fields: Record<string, unknown>) => void;
}

export interface RestoreResult {
  readonly dataDir: string;
  readonly memberId: bigint;
  readonly clusterId: bigint;
  /** The raft index the new log starts after (the number of members). */
  readonly snapshotIndex: number;
}

/** A refused restore; the message is etcd's. */
export class RestoreError extends Error {
  override readonly name = 'RestoreError';
}

interface NewMember {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
}

/** Restores `snapshotPath` into a new data dir; RestoreError for what etcd refuses. */
export async function restoreSnapshot(o: RestoreOptions): Promise<RestoreResult> {
  const members = planMembers(o);
  const self = members.find((m) => m.name === o.name)!;
  const clusterId = deriveClusterId(members.map((m) => m.id));
  const dataDir = o.dataDir || `${o.name}.etcd`;
  if (fs.existsSync(dataDir)) throw new RestoreError(`data-dir ${goQuote(dataDir)} exists`);
  const member = path.join(dataDir, 'member');
  const snapDir = path.join(member, 'snap');
  o.log?.('restoring snapshot', { path: o.snapshotPath, 'wal-dir': path.join(member, 'wal'), 'data-dir': dataDir, 'snap-dir': snapDir });
  const tmp = `${dataDir.replace(/\/+$/, '')}.restore-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const tmpSnap = path.join(tmp, 'member', 'snap');
    await restoreBackend(o, { backendDir: path.join(tmpSnap, 'db'), members, index: members.length });
    writeRaftState({ member: path.join(tmp, 'member'), snapDir: tmpSnap }, { self: self.id, clusterId, members });
    for (const m of members) {
      o.log?.('added member', { 'cluster-id': clusterId.toString(16), 'local-member-id': '0', 'added-peer-id': m.id.toString(16), 'added-peer-peer-urls': [...m.peerUrls] });
    }
    fs.mkdirSync(path.dirname(path.resolve(dataDir)), { recursive: true });
    fs.renameSync(tmp, dataDir);
    fsyncDir(path.dirname(path.resolve(dataDir)));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  o.log?.('restored snapshot', { path: o.snapshotPath, 'wal-dir': path.join(member, 'wal'), 'data-dir': dataDir, 'snap-dir': snapDir });
  return { dataDir, memberId: self.id, clusterId, snapshotIndex: members.length };
}

/** The new cluster's members, checked as etcd's VerifyBootstrap checks them; in ascending id order. */
function planMembers(o: RestoreOptions): NewMember[] {
  const byName = new Map<string, string[]>();
  for (const part of o.initialCluster.split(',').filter((s) => s.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RestoreError(`parse ${goQuote(part)}: missing name or URL in --initial-cluster`);
    const url = part.slice(eq + 1);
    if (!/^https?:\/\/[^/]+/.test(url)) throw new RestoreError(`URL scheme must be http, https, unix, or unixs: ${url}`);
    byName.set(part.slice(0, eq), [...(byName.get(part.slice(0, eq)) ?? []), url]);
  }
  const mine = byName.get(o.name);
  if (mine === undefined) throw new RestoreError(`couldn't find local name ${goQuote(o.name)} in the initial cluster configuration`);
  const advertised = [...o.initialAdvertisePeerUrls].sort();
  const missing = mine.filter((u) => !advertised.includes(u));
  if (missing.length > 0) {
    throw new RestoreError(`--initial-cluster has ${missing.map((u) => `${o.name}=${u}`).join(',')} but missing from --initial-advertise-peer-urls=${advertised.join(',')}`);
  }
  const extra = advertised.filter((u) => !mine.includes(u));
  if (extra.length > 0) {
    throw new RestoreError(`--initial-advertise-peer-urls has ${extra.join(',')} but missing from --initial-cluster=${o.name}=${advertised.join(',')}`);
  }
  const all = [...byName.values()].flat();
  if (new Set(all).size !== all.length) throw new RestoreError(`initial cluster ${o.initialCluster} has duplicate url`);
  const members = [...byName].map(([name, peerUrls]) => ({ name, peerUrls, id: deriveMemberId(peerUrls, { clusterToken: o.initialClusterToken }) }));
  if (new Set(members.map((m) => m.id)).size !== members.length) throw new RestoreError('member exists with identical ID');
  return members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Copies and checks the database, then rewrites what belongs to the old cluster. */
async function restoreBackend(o: RestoreOptions, t: { backendDir: string; members: readonly NewMember[]; index: number }): Promise<void> {
  const envDir = path.join(t.backendDir, 'db'); // Backend.open(dir) keeps its LMDB environment here
  fs.mkdirSync(envDir, { recursive: true });
  const copied = await copySnapshotDb(o.snapshotPath, path.join(envDir, 'data.mdb'), o.onProgress ? { onProgress: o.onProgress } : {})
    .catch((err: unknown) => {
      throw err instanceof SnapshotFileError ? new RestoreError(err.message) : err;
    });
  if (copied.expectedSha === null && !o.skipHashCheck) throw new RestoreError('snapshot missing hash but --skip-hash-check=false');
  if (copied.expectedSha !== null && !o.skipHashCheck && !copied.expectedSha.equals(copied.actualSha)) {
    throw new RestoreError(`expected sha256 ${goBytes(copied.expectedSha)}, got ${goBytes(copied.actualSha)}`);
  }
  const backend = Backend.open(t.backendDir);
  try {
    for (const bucket of ['members', 'membersRemoved'] as const) {
      const keys: Buffer[] = [];
      backend.forEach(bucket, {}, (k) => void keys.push(Buffer.from(k)));
      for (const k of keys) backend.delete(bucket, k);
    }
    for (const m of t.members) {
      const record: MemberRecord = { id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: [], isLearner: false };
      backend.put('members', idKey(m.id), Buffer.from(encodeMember(record)));
    }
    backend.setConsistentIndex({ index: t.index, term: 1 });
    await backend.sync();
  } finally {
    await backend.close();
  }
}

/** The WAL and raft snapshot a restarting member reads: log 1..n compacted into a snapshot at n. */
function writeRaftState(dirs: { member: string; snapDir: string }, c: { self: bigint; clusterId: bigint; members: readonly NewMember[] }): void {
  const term = 1;
  const entries: Entry[] = c.members.map((m, i) => ({
    term,
    index: i + 1,
    type: EntryType.ConfChangeV2,
    data: encodeConfChangeV2({
      transition: ConfChangeTransition.Auto,
      changes: [{ type: ConfChangeType.AddNode, nodeId: m.id }],
      context: MemberInfo.encode({ id: m.id, name: m.name, peerUrls: [...m.peerUrls], clientUrls: [], isLearner: false, requestId: 0n }).finish(),
    }),
  }));
  const index = entries.length;
  const wal = Wal.create(path.join(dirs.member, 'wal'), { metadata: { memberId: c.self, clusterId: c.clusterId } });
  try {
    wal.save({ hardState: { term, vote: c.members[0]!.id, commit: index }, entries, mustSync: true });
    const snapshot: Snapshot = {
      data: new Uint8Array(0),
      metadata: {
        index, term,
        confState: { voters: c.members.map((m) => m.id), learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    };
    new Snapshotter(dirs.snapDir).save(snapshot);
    wal.saveSnapshotMarker({ index, term });
  } finally {
    wal.close();
  }
}

function idKey(id: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(id);
  return b;
}

/** Go's %v of a []byte: decimal bytes in brackets. */
function goBytes(b: Buffer): string {
  return `[${[...b].join(' ')}]`;
}

/** Go's %q for the strings we quote (paths and names): JSON's escaping agrees on printable text. */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
