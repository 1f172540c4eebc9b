/**
 * grpc-js clients of the Lock and Election services (with Lease and KV on the same channel), for the lock
 * and election e2e tests.
 */
import { credentials, Metadata, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { waitFor } from './harness.js';
import { EtcdRpc } from './grpc-client.js';
import {
  LockClient, type LockRequest, type LockResponse, type UnlockRequest, type UnlockResponse,
} from '../../src/gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import {
  ElectionClient, type CampaignRequest, type CampaignResponse, type LeaderKey, type LeaderRequest, type LeaderResponse,
  type ProclaimRequest, type ProclaimResponse, type ResignRequest, type ResignResponse,
} from '../../src/gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import { LeaseClient, LeaseTimeToLiveRequest, type LeaseTimeToLiveResponse } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

export const callDeadlineMs = 10_000;
const b = (s: string): Buffer => Buffer.from(s);

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryFn<Req, Res> = (req: Req, md: Metadata, options: { deadline: number }, cb: Callback<Res>) => unknown;

function unary<Req, Res>(self: object, fn: UnaryFn<Req, Res>, req: Req, deadlineMs = callDeadlineMs): Promise<Res> {
  return new Promise((ok, fail) => {
    fn.call(self, req, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err !== null ? fail(err) : ok(res)));
  });
}

/** Lock, Election and Lease clients on one channel to one member. */
export class ConcurrencyRpc {
  readonly rpc: EtcdRpc;
  readonly lockClient: LockClient;
  readonly election: ElectionClient;
  readonly lease: LeaseClient;

  constructor(endpoint: string) {
    this.rpc = new EtcdRpc(endpoint);
    const channelOverride = this.rpc.kvClient.getChannel();
    const creds = credentials.createInsecure();
    this.lockClient = new LockClient(endpoint, creds, { channelOverride });
    this.election = new ElectionClient(endpoint, creds, { channelOverride });
    this.lease = new LeaseClient(endpoint, creds, { channelOverride });
  }

  lock(name: string, lease: bigint, deadlineMs?: number): Promise<LockResponse> {
    return unary(this.lockClient, this.lockClient.lock as UnaryFn<LockRequest, LockResponse>, { name: b(name), lease }, deadlineMs);
  }
  /** A Lock the caller can cancel, as a client that gives up (Ctrl-C, a closed context). */
  cancellableLock(name: string, lease: bigint): { result: Promise<LockResponse>; cancel: () => void } {
    let call!: { cancel(): void };
    const result = new Promise<LockResponse>((ok, fail) => {
      call = this.lockClient.lock({ name: b(name), lease }, new Metadata(), { deadline: Date.now() + callDeadlineMs },
        (err: ServiceError | null, res: LockResponse) => (err !== null ? fail(err) : ok(res)));
    });
    return { result, cancel: () => call.cancel() };
  }
  unlock(key: Buffer): Promise<UnlockResponse> {
    return unary(this.lockClient, this.lockClient.unlock as UnaryFn<UnlockRequest, UnlockResponse>, { key });
  }
  campaign(name: string, lease: bigint, value: string, deadlineMs?: number): Promise<CampaignResponse> {
    return unary(this.election, this.election.campaign as UnaryFn<CampaignRequest, CampaignResponse>,
      { name: b(name), lease, value: b(value) }, deadlineMs);
  }
  proclaim(leader: LeaderKey | undefined, value: string): Promise<ProclaimResponse> {
    return unary(this.election, this.election.proclaim as UnaryFn<ProclaimRequest, ProclaimResponse>, { leader, value: b(value) });
  }
  leader(name: string): Promise<LeaderResponse> {
    return unary(this.election, this.election.leader as UnaryFn<LeaderRequest, LeaderResponse>, { name: b(name) });
  }
  resign(leader: LeaderKey | undefined): Promise<ResignResponse> {
    return unary(this.election, this.election.resign as UnaryFn<ResignRequest, ResignResponse>, { leader });
  }
  timeToLive(id: bigint): Promise<LeaseTimeToLiveResponse> {
    return unary(this.lease, this.lease.leaseTimeToLive as UnaryFn<LeaseTimeToLiveRequest, LeaseTimeToLiveResponse>,
      LeaseTimeToLiveRequest.fromPartial({ ID: id }));
  }
  observe(name: string): Observation {
    return new Observation(this.election.observe({ name: b(name) }));
  }
  async keys(prefix: string): Promise<string[]> {
    const end = b(prefix);
    end[end.length - 1]! += 1;
    const res = await this.rpc.range({ key: b(prefix), rangeEnd: end, keysOnly: true });
    return res.kvs.map((kv) => kv.key.toString());
  }
  close(): void {
    this.lockClient.close();
    this.election.close();
    this.lease.close();
    this.rpc.close();
  }
}

/** An Observe stream, collecting what it receives. */
export class Observation {
  readonly received: LeaderResponse[] = [];
  ended: string | undefined;
  readonly #stream: ClientReadableStream<LeaderResponse>;

  constructor(stream: ClientReadableStream<LeaderResponse>) {
    this.#stream = stream;
    stream.on('data', (r: LeaderResponse) => this.received.push(r));
    stream.on('error', (e: ServiceError) => { this.ended = `error ${e.code}`; });
    stream.on('end', () => { this.ended ??= 'end'; });
  }

  async waitCount(n: number): Promise<void> {
    await waitFor(() => this.received.length >= n, { what: `${n} observations`, timeoutMs: callDeadlineMs });
  }

  cancel(): void {
    this.#stream.cancel();
  }
}
