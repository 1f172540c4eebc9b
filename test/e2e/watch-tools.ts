/**
 * Tools for watch end-to-end tests: a raw gRPC Watch stream that records every response (and can stop
 * reading, to play a slow client), and a long-running etcdctl process (watch, watch -i) whose output can
 * be awaited. Both work against any target.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import {
  WatchClient, WatchCreateRequest, type WatchRequest, type WatchResponse,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { DeepPartial } from './grpc-client.js';
import { etcdctlPath, limits } from './harness.js';

/** Polls until check() holds; fails with `what` at the deadline. */
export async function until(check: () => boolean, what: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((ok) => setTimeout(ok, limits.pollIntervalMs));
  }
}

/** One gRPC Watch stream. Responses are kept in arrival order. */
export class RawWatch {
  readonly client: WatchClient;
  readonly stream: ClientDuplexStream<WatchRequest, WatchResponse>;
  readonly responses: WatchResponse[] = [];
  error: Error | undefined;
  ended = false;

  constructor(endpoint: string, client?: WatchClient) {
    this.client = client ?? new WatchClient(endpoint, credentials.createInsecure());
    this.stream = this.client.watch();
    this.stream.on('data', (r: WatchResponse) => this.responses.push(r));
    this.stream.on('error', (e: Error) => {
      this.error = e;
    });
    this.stream.on('end', () => {
      this.ended = true;
    });
  }

  get broken(): boolean {
    return this.error !== undefined || this.ended;
  }

  create(req: DeepPartial<WatchCreateRequest>): void {
    this.stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial(req) } });
  }

  cancel(watchId: bigint): void {
    this.stream.write({ requestUnion: { $case: 'cancelRequest', value: { watchId } } });
  }

  requestProgress(): void {
    this.stream.write({ requestUnion: { $case: 'progressRequest', value: {} } });
  }

  /** Stops reading: the server sees HTTP/2 flow control push back once the buffers fill. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  async waitFor(check: (responses: readonly WatchResponse[]) => boolean, what: string, timeoutMs?: number): Promise<void> {
    await until(() => {
      if (this.error !== undefined) throw new Error(`watch stream failed while waiting for ${what}: ${this.error.message}`);
      return check(this.responses);
    }, () => `${what} (${this.responses.length} responses so far)`, timeoutMs);
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

/** A running etcdctl whose output grows while it runs (watch, watch -i). */
export class CtlProcess {
  readonly #child: ChildProcess;
  stdout = '';
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #exited: Promise<void>;

  constructor(endpoint: string, args: readonly string[]) {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ETCDCTL_API: '3' };
    this.#child = spawn(etcdctlPath(), [`--endpoints=${endpoint}`, ...args], { env, stdio: 'pipe' });
    this.#child.stdout!.on('data', (b: Buffer) => {
      this.stdout += b.toString('utf8');
    });
    this.#child.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString('utf8');
    });
    this.#child.stdin!.on('error', () => { /* it may exit before reading */ });
    this.#exited = new Promise((ok) => this.#child.once('close', (code, signal) => {
      this.exit = { code, signal };
      ok();
    }));
  }

  write(text: string): void {
    this.#child.stdin!.write(text);
  }

  async waitOutput(re: RegExp, timeoutMs?: number): Promise<void> {
    await until(() => re.test(this.stdout + this.stderr) || this.exit !== undefined,
      () => `etcdctl output ~ ${re}; got stdout ${JSON.stringify(this.stdout)} stderr ${JSON.stringify(this.stderr)}`, timeoutMs);
    if (!re.test(this.stdout + this.stderr)) {
      throw new Error(`etcdctl exited (${JSON.stringify(this.exit)}) without printing ~ ${re}: ${this.stdout}${this.stderr}`);
    }
  }

  /** Closes stdin and waits for the process to exit by itself. */
  async endInput(timeoutMs = limits.etcdctlTimeoutMs): Promise<void> {
    this.#child.stdin!.end();
    await this.waitExit(timeoutMs);
  }

  async waitExit(timeoutMs = limits.etcdctlTimeoutMs): Promise<void> {
    await until(() => this.exit !== undefined, () => `etcdctl to exit; stdout ${JSON.stringify(this.stdout)}`, timeoutMs);
  }

  async kill(): Promise<void> {
    if (this.exit === undefined) this.#child.kill('SIGKILL');
    await this.#exited;
  }
}
