// A 3-member cluster of one server binary on loopback, for the workloads that need a follower (lease
// keep-alive through a follower, which the follower forwards to the leader). Same flags as the single
// member of server-process.ts, plus the static bootstrap; stopped by PID.

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { MaintenanceClient, StatusRequest, type StatusResponse } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { freePorts } from './server-process.js';

const MEMBERS = 3;
const POLL_MS = 100;
const STOP_GRACE_MS = 15_000;

export interface ClusterMemberProcess {
  pid: number;
  endpoint: string;
}

export interface RunningCluster {
  leader: ClusterMemberProcess;
  followers: ClusterMemberProcess[];
  stop(): Promise<void>;
}

function status(endpoint: string): Promise<StatusResponse | undefined> {
  const client = new MaintenanceClient(endpoint, credentials.createInsecure());
  return new Promise((resolve) => {
    client.status(StatusRequest.fromPartial({}), new Metadata(), { deadline: Date.now() + 1000 }, (err, res) => {
      client.close();
      resolve(err ? undefined : res);
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts three members and waits until all name the same leader. */
export async function startCluster(opts: { label: string; binary: string; readyTimeoutMs: number }): Promise<RunningCluster> {
  const dir = mkdtempSync(join(tmpdir(), `etcd-ts-bench-cluster-${opts.label}-`));
  const ports = await freePorts(2 * MEMBERS);
  const names = Array.from({ length: MEMBERS }, (_, i) => `m${i}`);
  const peer = (i: number): string => `http://127.0.0.1:${ports[2 * i + 1]}`;
  const client = (i: number): string => `http://127.0.0.1:${ports[2 * i]}`;
  const initial = names.map((n, i) => `${n}=${peer(i)}`).join(',');
  const children = names.map((name, i) => {
    const log = openSync(join(dir, `${name}.log`), 'a');
    const child = spawn(opts.binary, [
      `--name=${name}`, `--data-dir=${join(dir, name)}`, `--listen-client-urls=${client(i)}`, `--advertise-client-urls=${client(i)}`,
      `--listen-peer-urls=${peer(i)}`, `--initial-advertise-peer-urls=${peer(i)}`, `--initial-cluster=${initial}`,
      '--initial-cluster-state=new', '--initial-cluster-token=bench',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    return child;
  });
  const members = children.map((c, i) => ({ pid: c.pid ?? 0, endpoint: client(i).slice('http://'.length) }));
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + opts.readyTimeoutMs;
    for (;;) {
      const seen = await Promise.all(members.map((m) => status(m.endpoint)));
      const lead = seen[0]?.leader ?? 0n;
      const at = seen.findIndex((s) => s?.header?.memberId === lead);
      if (lead !== 0n && at >= 0 && seen.every((s) => s?.leader === lead)) {
        return { leader: members[at]!, followers: members.filter((_m, i) => i !== at), stop };
      }
      if (Date.now() > deadline) throw new Error(`${opts.label}: no agreed leader in a 3-member cluster (logs in ${dir})`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
