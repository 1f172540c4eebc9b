/**
 * gRPC calls for the cluster tests, each with its own deadline: a failover or partition test must tell "the
 * server refused" from "the server did not answer in time", and must not wait the 10 s of grpc-client.ts
 * for an answer a member on the minority side will never give.
 */
import { credentials, Metadata, type CallOptions, type ClientUnaryCall, type ServiceError } from '@grpc/grpc-js';
import {
  ClusterClient, HashKVRequest, KVClient, MaintenanceClient, MemberListRequest, PutRequest, RangeRequest,
  StatusRequest,
  type HashKVResponse, type MemberListResponse, type PutResponse, type RangeResponse, type StatusResponse,
} from '../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { isServiceError } from '../grpc-client.js';

export const rpcLimits = {
  defaultDeadlineMs: 5_000,
} as const;

type Unary<Req, Res> = (req: Req, md: Metadata, options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void) => ClientUnaryCall;

function unary<Req, Res>(fn: Unary<Req, Res>, options: { self: object; req: Req; deadlineMs: number }): Promise<Res> {
  return new Promise((ok, fail) => {
    fn.call(options.self, options.req, new Metadata(), { deadline: Date.now() + options.deadlineMs }, (err, res) => {
      if (err !== null) fail(err);
      else ok(res);
    });
  });
}

export interface CallLimit {
  deadlineMs?: number;
}

export interface RangeOptions extends CallLimit {
  rangeEnd?: string;
  /** Local read without ReadIndex: what a member knows, leader or not. */
  serializable?: boolean;
  keysOnly?: boolean;
}

/** One channel to one member. */
export class MemberRpc {
  readonly endpoint: string;
  readonly #kv: KVClient;
  readonly #maintenance: MaintenanceClient;
  readonly #cluster: ClusterClient;

  constructor(endpoint: string) {
    this.endpoint = endpoint;
    const creds = credentials.createInsecure();
    this.#kv = new KVClient(endpoint, creds);
    const channelOverride = this.#kv.getChannel();
    this.#maintenance = new MaintenanceClient(endpoint, creds, { channelOverride });
    this.#cluster = new ClusterClient(endpoint, creds, { channelOverride });
  }

  put(key: string, value: string, limit: CallLimit = {}): Promise<PutResponse> {
    return unary(this.#kv.put as Unary<PutRequest, PutResponse>, { self: this.#kv,
      req: PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from(value) }), deadlineMs: deadline(limit) });
  }

  range(key: string, options: RangeOptions = {}): Promise<RangeResponse> {
    const req = RangeRequest.fromPartial({
      key: Buffer.from(key),
      ...(options.rangeEnd !== undefined ? { rangeEnd: Buffer.from(options.rangeEnd) } : {}),
      serializable: options.serializable ?? false,
      keysOnly: options.keysOnly ?? false,
    });
    return unary(this.#kv.range as Unary<RangeRequest, RangeResponse>, { self: this.#kv, req, deadlineMs: deadline(options) });
  }

  status(limit: CallLimit = {}): Promise<StatusResponse> {
    return unary(this.#maintenance.status as Unary<StatusRequest, StatusResponse>, { self: this.#maintenance,
      req: StatusRequest.fromPartial({}), deadlineMs: deadline(limit) });
  }

  hashKV(revision: bigint, limit: CallLimit = {}): Promise<HashKVResponse> {
    return unary(this.#maintenance.hashKv as Unary<HashKVRequest, HashKVResponse>, { self: this.#maintenance,
      req: HashKVRequest.fromPartial({ revision }), deadlineMs: deadline(limit) });
  }

  memberList(limit: CallLimit = {}): Promise<MemberListResponse> {
    return unary(this.#cluster.memberList as Unary<MemberListRequest, MemberListResponse>, { self: this.#cluster,
      req: MemberListRequest.fromPartial({}), deadlineMs: deadline(limit) });
  }

  close(): void {
    this.#kv.close();
  }
}

function deadline(limit: CallLimit): number {
  return limit.deadlineMs ?? rpcLimits.defaultDeadlineMs;
}

/** A failed call reduced to what etcd's wire contract fixes; anything that is not a gRPC error is rethrown. */
export function failureOf(e: unknown): { code: number; details: string } {
  if (isServiceError(e)) return { code: e.code, details: e.details };
  throw e;
}

/** Runs one call with a fresh channel and closes it after. */
export async function withRpc<T>(endpoint: string, body: (rpc: MemberRpc) => Promise<T>): Promise<T> {
  const rpc = new MemberRpc(endpoint);
  try {
    return await body(rpc);
  } finally {
    rpc.close();
  }
}
