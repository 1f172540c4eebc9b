/**
 * Test support: starts the real etcd (/usr/bin/etcd) as our oracle on free loopback ports with a temporary
 * data directory, and stops it by PID. Used by the client's and etcdctl-ts's tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdClient } from './etcd-client.js';

export const etcdBinary = '/usr/bin/etcd';
export const etcdctlBinary = '/usr/bin/etcdctl';

export function haveRealEtcd(): boolean {
  return existsSync(etcdBinary) && existsSync(etcdctlBinary);
}

const startDeadlineMs = 20_000;
const stopDeadlineMs = 10_000;
const startAttemptsMax = 3;
const logBytesMax = 64 * 1024;

/** A port nobody listens on right now (bind to port 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface RealEtcdOptions {
  /**
   * Advertised peer and client URLs. Two members started with the same advertised URLs get the same member
   * and cluster ids, which lets tests compare outputs of two servers byte for byte.
   */
  advertisePeerUrl?: string;
  advertiseClientUrl?: string;
  /** Another etcd-compatible server binary taking etcd's flags (bin/etcd-ts); /usr/bin/etcd by default. */
  binary?: string;
}

export class RealEtcd {
  readonly endpoint: string;
  readonly clientPort: number;
  /** The peer URL this member advertises. */
  readonly peerUrl: string;
  readonly dataDir: string;
  #child: ChildProcess;
  #log = '';
  #exited: Promise<void>;

  private constructor(child: ChildProcess, clientPort: number, peerUrl: string, dataDir: string) {
    this.#child = child;
    this.clientPort = clientPort;
    this.peerUrl = peerUrl;
    this.endpoint = `127.0.0.1:${clientPort}`;
    this.dataDir = dataDir;
    const keep = (chunk: Buffer): void => {
      this.#log = (this.#log + chunk.toString('utf8')).slice(-logBytesMax);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get log(): string {
    return this.#log;
  }

  static async start(options: RealEtcdOptions = {}): Promise<RealEtcd> {
    let lastError: unknown;
    for (let attempt = 0; attempt < startAttemptsMax; attempt++) {
      const etcd = await RealEtcd.#spawn(options);
      try {
        await etcd.#waitReady();
        return etcd;
      } catch (err) {
        // Most often another process took one of our ports between probing and binding: try new ones.
        lastError = err;
        await etcd.stop();
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  static async #spawn(options: RealEtcdOptions): Promise<RealEtcd> {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'etcd-ts-real-etcd-'));
    const peerUrl = options.advertisePeerUrl ?? `http://127.0.0.1:${peerPort}`;
    const args = [
      '--name=default',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${clientPort}`,
      `--advertise-client-urls=${options.advertiseClientUrl ?? `http://127.0.0.1:${clientPort}`}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=default=${peerUrl}`,
      '--logger=zap',
    ];
    const child = spawn(options.binary ?? etcdBinary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    return new RealEtcd(child, clientPort, peerUrl, dataDir);
  }

  async #waitReady(): Promise<void> {
    const deadline = Date.now() + startDeadlineMs;
    const client = new EtcdClient({ endpoints: [this.endpoint], dialTimeoutMs: 200, requestTimeoutMs: 500 });
    try {
      while (Date.now() < deadline) {
        if (this.#child.exitCode !== null) throw new Error(`etcd exited at start-up:\n${this.#log}`);
        try {
          await client.kv.range({ key: 'health' });
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      throw new Error(`etcd did not become ready within ${startDeadlineMs} ms:\n${this.#log}`);
    } finally {
      client.close();
    }
  }

  /** Stops etcd by its PID (SIGTERM, then SIGKILL past the deadline) and removes its data directory. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), stopDeadlineMs);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
