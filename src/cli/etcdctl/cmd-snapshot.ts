/**
 * snapshot save | status | restore, as etcdctl 3.4 has them. save streams Maintenance.Snapshot from the one
 * endpoint given into FILE.part, checks that the stream ended with the checksum, fsyncs and renames; its log
 * lines on stderr are etcdctl's (zap JSON, the same callers and fields). status and restore are the offline
 * tools etcdutl-ts has (src/cli/etcdutl/snapshot-cmd.ts, src/server/snapshot-restore.ts) behind etcdctl's flags.
 */
import fs from 'node:fs';
import type { EtcdClient } from '../../client/index.js';
import { restoreSnapshot, RestoreError } from '../../server/snapshot-restore.js';
import { hasChecksum, snapshotStatus } from '../../server/snapshot-file.js';
import { formatStatus, ProgressReporter, type ProgressStream } from '../etcdutl/snapshot-cmd.js';
import type { CommandSpec } from './command.js';
import { humanizeBytes, zapJsonString, zapTimestamp } from './go-format.js';
import { endpointsFromFlags, goErrorText, type Context } from './global.js';
import { Exit, ExitError, type Io } from './io.js';

/** A zap production line as etcdctl prints it; clientv3's logger writes ISO timestamps, the snapshot package epoch seconds. */
function zapLine(io: Io, o: { caller: string; msg: string; iso?: boolean; fields?: Record<string, unknown> }): void {
  const now = new Date();
  const ts = o.iso === true ? zapJsonString(zapTimestamp(now)) : String(now.getTime() / 1000);
  const fields = Object.entries(o.fields ?? {}).map(([k, v]) => `,${JSON.stringify(k)}:${typeof v === 'string' ? zapJsonString(v) : JSON.stringify(v)}`);
  io.stderr(`{"level":"info","ts":${ts},"caller":${zapJsonString(o.caller)},"msg":${zapJsonString(o.msg)}${fields.join('')}}\n`);
}

function goOpenError(file: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const text = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied'
    : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
  return `open ${file}: ${text}`;
}

export interface SaveOptions {
  readonly path: string;
  readonly endpoint: string;
  readonly timeoutMs?: number;
  readonly io: Io;
  readonly progress: ProgressStream;
}

/** etcd's v3Manager.Save: stream into FILE.part, require the trailing checksum, fsync, rename. */
export async function saveSnapshot(client: EtcdClient, o: SaveOptions): Promise<void> {
  const part = `${o.path}.part`;
  let fd: number;
  try {
    fd = fs.openSync(part, 'w', 0o600);
  } catch (err) {
    throw new ExitError(Exit.Interrupted, `could not open ${part} (${goOpenError(part, err)})`);
  }
  const bar = new ProgressReporter(o.progress, { label: 'saving' });
  try {
    zapLine(o.io, { caller: 'snapshot/v3_snapshot.go:119', msg: 'created temporary db file', fields: { path: part } });
    const startedMs = performance.now();
    const size = await receive(client, { fd, bar, io: o.io, endpoint: o.endpoint, ...(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs }) });
    if (!hasChecksum(size)) throw new ExitError(Exit.Interrupted, `sha256 checksum not found [bytes: ${size}]`);
    fs.fsyncSync(fd);
    bar.stop();
    zapLine(o.io, {
      caller: 'snapshot/v3_snapshot.go:142', msg: 'fetched snapshot',
      fields: { endpoint: o.endpoint, size: humanizeBytes(BigInt(size)), took: (performance.now() - startedMs) / 1000 },
    });
    fs.closeSync(fd);
    fd = -1;
    fs.renameSync(part, o.path);
    zapLine(o.io, { caller: 'snapshot/v3_snapshot.go:152', msg: 'saved', fields: { path: o.path } });
  } finally {
    bar.stop();
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(part, { force: true });
  }
}

async function receive(client: EtcdClient, o: { fd: number; bar: ProgressReporter; io: Io; endpoint: string; timeoutMs?: number }): Promise<number> {
  let size = 0;
  let total: number | undefined;
  let opened = false;
  try {
    for await (const m of client.maintenance.snapshot(o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs })) {
      if (!opened) {
        opened = true;
        zapLine(o.io, { caller: 'clientv3/maintenance.go:200', msg: 'opened snapshot stream; downloading', iso: true });
        zapLine(o.io, { caller: 'snapshot/v3_snapshot.go:127', msg: 'fetching snapshot', fields: { endpoint: o.endpoint } });
      }
      total ??= Number(m.remainingBytes) + m.blob.length;
      for (let at = 0; at < m.blob.length;) at += fs.writeSync(o.fd, m.blob, at, m.blob.length - at, size + at);
      size += m.blob.length;
      o.bar.update(Math.min(size, total), total);
    }
  } catch (err) {
    if (err instanceof ExitError) throw err;
    throw new ExitError(Exit.Interrupted, goErrorText(err));
  }
  zapLine(o.io, { caller: 'clientv3/maintenance.go:208', msg: 'completed snapshot read; closing', iso: true });
  return size;
}

async function runSave(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw new ExitError(Exit.BadArgs, 'snapshot save expects one argument');
  ctx.configure();
  const endpoints = endpointsFromFlags(ctx.flags);
  if (endpoints.length !== 1) {
    throw new ExitError(Exit.Interrupted, `snapshot must be requested to one selected node, not multiple [${endpoints.join(' ')}]`);
  }
  const path = ctx.args[0]!;
  // etcdctl sets no deadline on the stream unless --command-timeout is given explicitly.
  const timeoutMs = ctx.flags.changed('command-timeout') ? ctx.commandTimeoutMs() : undefined;
  await saveSnapshot(ctx.client(), { path, endpoint: endpoints[0]!, io: ctx.io, progress: process.stderr, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  ctx.io.stdout(`Snapshot saved at ${path}\n`);
}

async function runStatus(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw new ExitError(Exit.BadArgs, 'snapshot status requires exactly one argument');
  ctx.configure();
  const format = ctx.flags.string('write-out');
  if (format === 'protobuf') throw new ExitError(Exit.BadFeature, 'printer "protobuf" is not supported');
  let status;
  try {
    status = await snapshotStatus(ctx.args[0]!);
  } catch (err) {
    throw new ExitError(Exit.Error, (err as Error).message);
  }
  ctx.io.stdout(formatStatus(status, format));
}

const restoreCallers: Record<string, string> = {
  'restoring snapshot': 'snapshot/v3_snapshot.go:296',
  'added member': 'membership/cluster.go:392',
  'restored snapshot': 'snapshot/v3_snapshot.go:309',
};

async function runRestore(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw new ExitError(Exit.BadArgs, 'snapshot restore requires exactly one argument');
  const f = ctx.flags;
  const name = f.string('name');
  const bar = new ProgressReporter(process.stderr, { label: 'restoring' });
  try {
    await restoreSnapshot({
      snapshotPath: ctx.args[0]!,
      name,
      dataDir: f.string('data-dir'),
      initialCluster: f.string('initial-cluster'),
      initialClusterToken: f.string('initial-cluster-token'),
      initialAdvertisePeerUrls: f.string('initial-advertise-peer-urls').split(','),
      skipHashCheck: f.bool('skip-hash-check'),
      onProgress: (done, total) => bar.update(done, total),
      log: (msg, fields) => zapLine(ctx.io, { caller: restoreCallers[msg] ?? 'snapshot/v3_snapshot.go', msg, fields }),
    });
  } catch (err) {
    if (err instanceof RestoreError) throw new ExitError(Exit.Error, err.message);
    throw err;
  } finally {
    bar.stop();
  }
}

export const snapshotCommand: CommandSpec<Context> = {
  name: 'snapshot',
  use: 'snapshot <subcommand>',
  short: 'Manages etcd node snapshots',
  children: [
    { name: 'save', use: 'save <filename>', short: 'Stores an etcd node backend snapshot to a given file', run: runSave },
    {
      name: 'restore',
      use: 'restore <filename> [options]',
      short: 'Restores an etcd member snapshot to an etcd directory',
      run: runRestore,
      flags: [
        { name: 'data-dir', kind: 'string', defaultValue: '', usage: 'Path to the data directory' },
        { name: 'initial-cluster', kind: 'string', defaultValue: 'default=http://localhost:2380', usage: 'Initial cluster configuration for restore bootstrap' },
        { name: 'initial-cluster-token', kind: 'string', defaultValue: 'etcd-cluster', usage: 'Initial cluster token for the etcd cluster during restore bootstrap' },
        { name: 'initial-advertise-peer-urls', kind: 'string', defaultValue: 'http://localhost:2380', usage: "List of this member's peer URLs to advertise to the rest of the cluster" },
        { name: 'name', kind: 'string', defaultValue: 'default', usage: 'Human-readable name for this member' },
        { name: 'skip-hash-check', kind: 'bool', defaultValue: 'false', usage: 'Ignore snapshot integrity hash value (required if copied from data directory)' },
      ],
    },
    {
      name: 'status',
      use: 'status <filename>',
      short: 'Gets backend snapshot status of a given file',
      long: 'When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are hash, revision, total keys, total size.\n',
      run: runStatus,
    },
  ],
};
