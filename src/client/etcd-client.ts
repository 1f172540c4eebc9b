/**
 * A thin, promise-based client for etcd's v3 API. Requests and responses are the generated protobuf types
 * (bigint for 64-bit fields, Buffer for bytes); keys and values may also be given as strings.
 */
import {
  AlarmRequest,
  AlarmRequest_AlarmAction,
  AuthenticateRequest,
  CompactionRequest,
  DeleteRangeRequest,
  HashKVRequest,
  LeaseGrantRequest,
  LeaseRevokeRequest,
  LeaseTimeToLiveRequest,
  MemberAddRequest,
  MemberPromoteRequest,
  MemberRemoveRequest,
  MemberUpdateRequest,
  MoveLeaderRequest,
  PutRequest,
  RangeRequest,
  TxnRequest,
  type AlarmResponse,
  type CompactionResponse,
  type DefragmentResponse,
  type DeleteRangeResponse,
  type HashKVResponse,
  type LeaseGrantResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveResponse,
  type MemberAddResponse,
  type MemberListResponse,
  type MemberPromoteResponse,
  type MemberRemoveResponse,
  type MemberUpdateResponse,
  type MoveLeaderResponse,
  type PutResponse,
  type RangeResponse,
  type SnapshotResponse,
  type StatusResponse,
  type TxnResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Connection } from './connection.js';
import { ConnectionPool } from './connection-pool.js';
import { ClientError, isClientError } from './errors.js';
import { Invoker, type AttemptFailure, type CallOptions, type UnaryPlan } from './invoker.js';
import { GrpcCode } from '../base/errors.js';
import { Elections, KeepAlives, Locks, Watcher } from './streams.js';
import { AuthApi } from './auth-api.js';

export type Bytes = Buffer | Uint8Array | string;

export interface EtcdClientOptions {
  endpoints: readonly string[];
  /** How long one endpoint may take to accept a connection before the next one is tried. Default 2000. */
  dialTimeoutMs?: number;
  /** Deadline of each call, covering connecting, failover and retries. Default 5000. */
  requestTimeoutMs?: number;
  username?: string;
  password?: string;
  /** Observes every failed attempt, including ones that are retried on another endpoint. */
  onAttemptFailed?: (failure: AttemptFailure) => void;
}

export const dialTimeoutMsDefault = 2000;
export const requestTimeoutMsDefault = 5000;

type WithBytes<T, K extends keyof T> = Partial<Omit<T, K>> & { [P in K]?: Bytes };
export type RangeInput = WithBytes<RangeRequest, 'key' | 'rangeEnd'> & { key: Bytes };
export type PutInput = WithBytes<PutRequest, 'key' | 'value'> & { key: Bytes };
export type DeleteRangeInput = WithBytes<DeleteRangeRequest, 'key' | 'rangeEnd'> & { key: Bytes };

export function toBuffer(bytes: Bytes | undefined): Buffer {
  if (bytes === undefined) return Buffer.alloc(0);
  if (typeof bytes === 'string') return Buffer.from(bytes, 'utf8');
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function plan<Res>(mutable: boolean, send: UnaryPlan<Res>['send']): UnaryPlan<Res> {
  return { mutable, send };
}

export class KV {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  range(input: RangeInput, options?: CallOptions): Promise<RangeResponse> {
    const req: RangeRequest = { ...RangeRequest.create(), ...input, key: toBuffer(input.key), rangeEnd: toBuffer(input.rangeEnd) };
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.kv.range(req, md, o, cb)), options);
  }

  put(input: PutInput, options?: CallOptions): Promise<PutResponse> {
    const req: PutRequest = { ...PutRequest.create(), ...input, key: toBuffer(input.key), value: toBuffer(input.value) };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.kv.put(req, md, o, cb)), options);
  }

  deleteRange(input: DeleteRangeInput, options?: CallOptions): Promise<DeleteRangeResponse> {
    const req: DeleteRangeRequest = {
      ...DeleteRangeRequest.create(),
      ...input,
      key: toBuffer(input.key),
      rangeEnd: toBuffer(input.rangeEnd),
    };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.kv.deleteRange(req, md, o, cb)), options);
  }

  txn(input: Partial<TxnRequest>, options?: CallOptions): Promise<TxnResponse> {
    const req: TxnRequest = { ...TxnRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.kv.txn(req, md, o, cb)), options);
  }

  compact(input: Partial<CompactionRequest>, options?: CallOptions): Promise<CompactionResponse> {
    const req: CompactionRequest = { ...CompactionRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.kv.compact(req, md, o, cb)), options);
  }
}

export class Maintenance {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  status(options?: CallOptions): Promise<StatusResponse> {
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.maintenance.status({}, md, o, cb)), options);
  }

  hashKV(input: Partial<HashKVRequest> = {}, options?: CallOptions): Promise<HashKVResponse> {
    const req: HashKVRequest = { ...HashKVRequest.create(), ...input };
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.maintenance.hashKv(req, md, o, cb)), options);
  }

  alarm(input: Partial<AlarmRequest> = {}, options?: CallOptions): Promise<AlarmResponse> {
    const req: AlarmRequest = { ...AlarmRequest.create(), ...input };
    // Only listing alarms is safe to resend.
    const mutable = req.action !== AlarmRequest_AlarmAction.GET;
    return this.#invoker.call(plan(mutable, (c, md, o, cb) => c.maintenance.alarm(req, md, o, cb)), options);
  }

  defragment(options?: CallOptions): Promise<DefragmentResponse> {
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.maintenance.defragment({}, md, o, cb)), options);
  }

  /**
   * The member's backend as etcd streams it (Maintenance.Snapshot): chunks of the database, then its
   * sha256 as the last message. From the first endpoint only; no timeout unless one is given.
   */
  async *snapshot(options: { timeoutMs?: number } = {}): AsyncGenerator<SnapshotResponse> {
    const call = await this.#invoker.openStream((c, md, o) => c.maintenance.snapshot({}, md, o), options);
    try {
      for await (const message of call) yield message as SnapshotResponse;
    } catch (err) {
      const e = err as Partial<ServiceError>;
      if (typeof e.code === 'number' && typeof e.details === 'string') throw new ClientError(e.code, e.details, {});
      throw err;
    } finally {
      call.cancel();
    }
  }

  moveLeader(input: Partial<MoveLeaderRequest>, options?: CallOptions): Promise<MoveLeaderResponse> {
    const req: MoveLeaderRequest = { ...MoveLeaderRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.maintenance.moveLeader(req, md, o, cb)), options);
  }
}

export class Cluster {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  memberList(options?: CallOptions): Promise<MemberListResponse> {
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.cluster.memberList({}, md, o, cb)), options);
  }

  memberAdd(input: Partial<MemberAddRequest>, options?: CallOptions): Promise<MemberAddResponse> {
    const req: MemberAddRequest = { ...MemberAddRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.cluster.memberAdd(req, md, o, cb)), options);
  }

  memberRemove(input: Partial<MemberRemoveRequest>, options?: CallOptions): Promise<MemberRemoveResponse> {
    const req: MemberRemoveRequest = { ...MemberRemoveRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.cluster.memberRemove(req, md, o, cb)), options);
  }

  memberUpdate(input: Partial<MemberUpdateRequest>, options?: CallOptions): Promise<MemberUpdateResponse> {
    const req: MemberUpdateRequest = { ...MemberUpdateRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.cluster.memberUpdate(req, md, o, cb)), options);
  }

  memberPromote(input: Partial<MemberPromoteRequest>, options?: CallOptions): Promise<MemberPromoteResponse> {
    const req: MemberPromoteRequest = { ...MemberPromoteRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.cluster.memberPromote(req, md, o, cb)), options);
  }
}

export class Lease {
  #invoker: Invoker;

  constructor(invoker: Invoker) {
    this.#invoker = invoker;
  }

  grant(input: Partial<LeaseGrantRequest>, options?: CallOptions): Promise<LeaseGrantResponse> {
    const req: LeaseGrantRequest = { ...LeaseGrantRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.lease.leaseGrant(req, md, o, cb)), options);
  }

  revoke(input: Partial<LeaseRevokeRequest>, options?: CallOptions): Promise<LeaseRevokeResponse> {
    const req: LeaseRevokeRequest = { ...LeaseRevokeRequest.create(), ...input };
    return this.#invoker.call(plan(true, (c, md, o, cb) => c.lease.leaseRevoke(req, md, o, cb)), options);
  }

  timeToLive(input: Partial<LeaseTimeToLiveRequest>, options?: CallOptions): Promise<LeaseTimeToLiveResponse> {
    const req: LeaseTimeToLiveRequest = { ...LeaseTimeToLiveRequest.create(), ...input };
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.lease.leaseTimeToLive(req, md, o, cb)), options);
  }

  leases(options?: CallOptions): Promise<LeaseLeasesResponse> {
    return this.#invoker.call(plan(false, (c, md, o, cb) => c.lease.leaseLeases({}, md, o, cb)), options);
  }
}

export class EtcdClient {
  readonly kv: KV;
  readonly maintenance: Maintenance;
  readonly cluster: Cluster;
  readonly lease: Lease;
  readonly watcher: Watcher;
  readonly keepAlives: KeepAlives;
  readonly locks: Locks;
  readonly elections: Elections;
  readonly auth: AuthApi;
  #pool: ConnectionPool;
  #invoker: Invoker;

  constructor(options: EtcdClientOptions) {
    this.#pool = new ConnectionPool(options.endpoints);
    const dialTimeoutMs = positive(options.dialTimeoutMs ?? dialTimeoutMsDefault, 'dialTimeoutMs');
    const requestTimeoutMs = positive(options.requestTimeoutMs ?? requestTimeoutMsDefault, 'requestTimeoutMs');
    this.#invoker = new Invoker(this.#pool, {
      dialTimeoutMs,
      requestTimeoutMs,
      ...(options.username !== undefined && options.username !== ''
        ? { authenticate: authenticator(options.username, options.password ?? '') }
        : {}),
      ...(options.onAttemptFailed !== undefined ? { onAttemptFailed: options.onAttemptFailed } : {}),
    });
    this.kv = new KV(this.#invoker);
    this.maintenance = new Maintenance(this.#invoker);
    this.cluster = new Cluster(this.#invoker);
    this.lease = new Lease(this.#invoker);
    this.watcher = new Watcher(this.#invoker);
    this.keepAlives = new KeepAlives(this.#invoker);
    this.locks = new Locks(this.#invoker);
    this.elections = new Elections(this.#invoker);
    this.auth = new AuthApi(this.#invoker);
  }

  /** Closes every channel; calls in flight fail and later calls are refused. */
  close(): void {
    this.#invoker.close();
    this.#pool.closeAll();
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new ClientError(GrpcCode.InvalidArgument, `${name} must be a positive number, got ${value}`, { sent: false });
  }
  return value;
}

/** Gets a token as clientv3 does; a cluster without auth enabled needs none. */
function authenticator(name: string, password: string): (conn: Connection, deadlineMs: number) => Promise<string | undefined> {
  const req: AuthenticateRequest = { name, password };
  return (conn, deadlineMs) =>
    new Promise((resolve, reject) => {
      conn.auth.authenticate(req, new Metadata(), { deadline: new Date(deadlineMs) }, (err, res) => {
        if (err === null) {
          resolve(res.token);
          return;
        }
        const error = new ClientError(err.code, err.details, { endpoint: conn.endpoint.raw });
        if (isClientError(error, 'AuthNotEnabled')) resolve(undefined);
        else reject(error);
      });
    });
}
