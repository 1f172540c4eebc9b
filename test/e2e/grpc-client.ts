/**
 * A thin promise wrapper over the generated grpc-js clients, for tests that need exact gRPC status codes
 * and messages or request fields etcdctl 3.4 cannot express (count_only, min/max revisions, lease and
 * range compares, nested txn).
 */
import { credentials, type ServiceError, type ClientUnaryCall, type CallOptions, Metadata } from '@grpc/grpc-js';
import {
  ClusterClient, KVClient, LeaseClient, MaintenanceClient,
  CompactionRequest, DeleteRangeRequest, LeaseGrantRequest, LeaseRevokeRequest, MemberListRequest, PutRequest,
  RangeRequest, StatusRequest, TxnRequest,
  type CompactionResponse, type DeleteRangeResponse, type LeaseGrantResponse, type LeaseRevokeResponse,
  type MemberListResponse, type PutResponse, type RangeResponse, type StatusResponse, type TxnResponse,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

export const rpcDeadlineMs = 10_000;

/** What a failed call looks like, reduced to what etcd's wire contract fixes. */
export interface RpcFailure {
  code: number;
  details: string;
}

export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === 'number';
}

type Unary<Req, Res> = (req: Req, md: Metadata, options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void) => ClientUnaryCall;

function call<Req, Res>(fn: Unary<Req, Res>, self: object, req: Req): Promise<Res> {
  return new Promise((ok, fail) => {
    fn.call(self, req, new Metadata(), { deadline: Date.now() + rpcDeadlineMs }, (err, res) => {
      if (err !== null) fail(err);
      else ok(res);
    });
  });
}

type Builtin = Date | Function | Uint8Array | string | number | boolean | bigint | undefined;
/** Request literals as ts-proto's fromPartial takes them: every field optional, 64-bit ints as bigint. */
export type DeepPartial<T> = T extends Builtin ? T
  : T extends Array<infer U> ? Array<DeepPartial<U>>
  : T extends { $case: string; value: unknown } ? { $case: T['$case']; value: DeepPartial<T['value']> }
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> }
  : T;

/** One connection to one member, with the calls the e2e tests use. */
export class EtcdRpc {
  readonly kvClient: KVClient;
  readonly #lease: LeaseClient;
  readonly #cluster: ClusterClient;
  readonly #maintenance: MaintenanceClient;

  constructor(endpoint: string) {
    const creds = credentials.createInsecure();
    this.kvClient = new KVClient(endpoint, creds);
    // All clients share one channel, as etcd's own clientv3 does.
    const channelOverride = this.kvClient.getChannel();
    this.#lease = new LeaseClient(endpoint, creds, { channelOverride });
    this.#cluster = new ClusterClient(endpoint, creds, { channelOverride });
    this.#maintenance = new MaintenanceClient(endpoint, creds, { channelOverride });
  }

  range(req: DeepPartial<RangeRequest>): Promise<RangeResponse> {
    return call(this.kvClient.range as Unary<RangeRequest, RangeResponse>, this.kvClient, RangeRequest.fromPartial(req));
  }
  put(req: DeepPartial<PutRequest>): Promise<PutResponse> {
    return call(this.kvClient.put as Unary<PutRequest, PutResponse>, this.kvClient, PutRequest.fromPartial(req));
  }
  deleteRange(req: DeepPartial<DeleteRangeRequest>): Promise<DeleteRangeResponse> {
    return call(this.kvClient.deleteRange as Unary<DeleteRangeRequest, DeleteRangeResponse>, this.kvClient,
      DeleteRangeRequest.fromPartial(req));
  }
  txn(req: DeepPartial<TxnRequest>): Promise<TxnResponse> {
    return call(this.kvClient.txn as Unary<TxnRequest, TxnResponse>, this.kvClient, TxnRequest.fromPartial(req));
  }
  compact(req: DeepPartial<CompactionRequest>): Promise<CompactionResponse> {
    return call(this.kvClient.compact as Unary<CompactionRequest, CompactionResponse>, this.kvClient,
      CompactionRequest.fromPartial(req));
  }
  leaseGrant(req: DeepPartial<LeaseGrantRequest>): Promise<LeaseGrantResponse> {
    return call(this.#lease.leaseGrant as Unary<LeaseGrantRequest, LeaseGrantResponse>, this.#lease,
      LeaseGrantRequest.fromPartial(req));
  }
  leaseRevoke(req: DeepPartial<LeaseRevokeRequest>): Promise<LeaseRevokeResponse> {
    return call(this.#lease.leaseRevoke as Unary<LeaseRevokeRequest, LeaseRevokeResponse>, this.#lease,
      LeaseRevokeRequest.fromPartial(req));
  }
  memberList(): Promise<MemberListResponse> {
    return call(this.#cluster.memberList as Unary<MemberListRequest, MemberListResponse>, this.#cluster,
      MemberListRequest.fromPartial({}));
  }
  status(): Promise<StatusResponse> {
    return call(this.#maintenance.status as Unary<StatusRequest, StatusResponse>, this.#maintenance,
      StatusRequest.fromPartial({}));
  }

  close(): void {
    this.kvClient.close();
  }
}

/** Runs `body` and returns its gRPC failure; fails if it succeeded or threw something else. */
export async function rpcFailure(body: () => Promise<unknown>): Promise<RpcFailure> {
  try {
    await body();
  } catch (e) {
    if (isServiceError(e)) return { code: e.code, details: e.details };
    throw e;
  }
  throw new Error('expected the call to fail, it succeeded');
}
