// Starts a server binary (real etcd or etcd-ts) as a single member with etcd's own flags on free loopback
// ports and a fresh data directory, waits until it serves a linearizable read, and stops it by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { KVClient, RangeRequest } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { readComm } from './proc-stats.js';

export interface RunningServer {
  label: string;
  pid: number;
  /** host:port of the client URL. */
  endpoint: string;
  /** The process's command name as the kernel sees it: shows whether the PID measured is the server. */
  comm: string;
  logPath: string;
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 15_000;
const READY_POLL_MS = 100;
const READY_ATTEMPT_MS = 1_000;
const LOG_TAIL_LINES = 30;

/** Cleanup that must run even when the runner dies: kill what we started, remove what we created. */
const liveChildren = new Map<number, string>();
process.on('exit', () => {
  for (const [pid, dir] of liveChildren) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Ports the kernel hands out for port 0, held open together so the two differ. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', () => resolve());
      });
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') throw new Error('listening socket has no port');
      ports.push(addr.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export function etcdFlags(opts: { name: string; dataDir: string; clientPort: number; peerPort: number }): string[] {
  const client = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  return [
    `--name=${opts.name}`,
    `--data-dir=${opts.dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${opts.name}=${peer}`,
  ];
}

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '(no log)';
  }
}

function readOnce(client: KVClient): Promise<boolean> {
  const req = RangeRequest.fromPartial({ key: Buffer.from('etcd-ts-bench-ready') });
  return new Promise((resolve) => {
    client.range(req, new Metadata(), { deadline: Date.now() + READY_ATTEMPT_MS }, (err) => resolve(err === null));
  });
}

async function waitReady(child: ChildProcess, endpoint: string, deadlineMs: number): Promise<void> {
  const client = new KVClient(endpoint, credentials.createInsecure());
  try {
    while (Date.now() < deadlineMs) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error('exited before becoming ready');
      if (await readOnce(client)) return;
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    throw new Error('not ready before the deadline');
  } finally {
    client.close();
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess, pid: number, dir: string): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // Already gone.
  }
  if (!(await waitExit(child, STOP_GRACE_MS))) {
    process.kill(pid, 'SIGKILL');
    await waitExit(child, STOP_GRACE_MS);
  }
  liveChildren.delete(pid);
  rmSync(dir, { recursive: true, force: true });
}

export async function startServer(opts: { label: string; binary: string; readyTimeoutMs: number }): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-ts-bench-${opts.label}-`));
  const [clientPort, peerPort] = await freePorts(2);
  if (clientPort === undefined || peerPort === undefined) throw new Error('no free ports');
  const logPath = join(dir, 'server.log');
  const logFd = openSync(logPath, 'a');
  const args = etcdFlags({ name: `bench-${opts.label}`, dataDir: join(dir, 'data'), clientPort, peerPort });
  const child = spawn(opts.binary, args, { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${opts.binary} did not start`);
  }
  liveChildren.set(pid, dir);
  const endpoint = `127.0.0.1:${clientPort}`;
  try {
    await waitReady(child, endpoint, Date.now() + opts.readyTimeoutMs);
  } catch (err) {
    const tail = logTail(logPath);
    await stopChild(child, pid, dir);
    throw new Error(`${opts.label} (${opts.binary}) ${String((err as Error).message)}; log tail:\n${tail}`);
  }
  return { label: opts.label, pid, endpoint, comm: readComm(pid), logPath, stop: () => stopChild(child, pid, dir) };
}
