/**
 * The v3 gRPC services, thin: decode (grpc-js did it), check, hand to the server, map errors.
 * The server-side contract each service needs is declared here, by the consumer.
 */
import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import {
  ClusterService,
  type ClusterServer,
  type KVServer,
  type MaintenanceServer,
  KVService,
  MaintenanceService,
  type AlarmRequest, type AlarmResponse,
  type CompactionRequest, type CompactionResponse,
  type DefragmentRequest, type DefragmentResponse,
  type DeleteRangeRequest, type DeleteRangeResponse,
  type HashKVRequest, type HashKVResponse,
  type HashRequest, type HashResponse,
  type MemberAddRequest, type MemberAddResponse,
  type MemberListRequest, type MemberListResponse,
  type MemberPromoteRequest, type MemberPromoteResponse,
  type MemberRemoveRequest, type MemberRemoveResponse,
  type MemberUpdateRequest, type MemberUpdateResponse,
  type MoveLeaderRequest, type MoveLeaderResponse,
  type PutRequest, type PutResponse,
  type RangeRequest, type RangeResponse,
  type StatusRequest, type StatusResponse,
  type TxnRequest, type TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { unary } from './unary.js';
import { snapshotHandler, type SnapshotSource } from './snapshot-service.js';
import type { StreamedMessage } from '../h2/streamed-message.js';

export interface KvApi {
  range(request: RangeRequest): Promise<RangeResponse>;
  /** range() that may answer a huge range with a StreamedMessage; used where the transport can write one. */
  rangeStreamed?(request: RangeRequest): Promise<RangeResponse | StreamedMessage>;
  put(request: PutRequest): Promise<PutResponse>;
  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  txn(request: TxnRequest): Promise<TxnResponse>;
  compact(request: CompactionRequest): Promise<CompactionResponse>;
}

export interface MaintenanceApi {
  alarm(request: AlarmRequest): Promise<AlarmResponse>;
  status(request: StatusRequest): Promise<StatusResponse>;
  defragment(request: DefragmentRequest): Promise<DefragmentResponse>;
  hash(request: HashRequest): Promise<HashResponse>;
  hashKV(request: HashKVRequest): Promise<HashKVResponse>;
  moveLeader(request: MoveLeaderRequest): Promise<MoveLeaderResponse>;
  /** A point-in-time copy of the backend; without it the Snapshot method is left unimplemented. */
  snapshot?(): Promise<SnapshotSource>;
}

export interface ClusterApi {
  memberAdd(request: MemberAddRequest): Promise<MemberAddResponse>;
  memberRemove(request: MemberRemoveRequest): Promise<MemberRemoveResponse>;
  memberUpdate(request: MemberUpdateRequest): Promise<MemberUpdateResponse>;
  memberList(request: MemberListRequest): Promise<MemberListResponse>;
  memberPromote(request: MemberPromoteRequest): Promise<MemberPromoteResponse>;
}

export interface ServiceRegistration {
  readonly definition: ServiceDefinition;
  readonly implementation: UntypedServiceImplementation;
}

/** Calls served by src/api/h2 say they can write a StreamedMessage; grpc-js's cannot. */
function acceptsStreamedResponses(call: object): boolean {
  return (call as { streamedResponses?: unknown }).streamedResponses === true;
}

export function kvService(api: KvApi, log: Logger): ServiceRegistration {
  return {
    definition: KVService,
    implementation: {
      range: unary('Range', log, (r: RangeRequest, call: object) =>
        (api.rangeStreamed !== undefined && acceptsStreamedResponses(call) ? api.rangeStreamed(r) : api.range(r))),
      put: unary('Put', log, (r: PutRequest) => api.put(r)),
      deleteRange: unary('DeleteRange', log, (r: DeleteRangeRequest) => api.deleteRange(r)),
      txn: unary('Txn', log, (r: TxnRequest) => api.txn(r)),
      compact: unary('Compact', log, (r: CompactionRequest) => api.compact(r)),
    } satisfies Partial<Record<keyof KVServer, unknown>>,
  };
}

export function maintenanceService(api: MaintenanceApi, log: Logger): ServiceRegistration {
  return {
    definition: MaintenanceService,
    implementation: {
      alarm: unary('Alarm', log, (r: AlarmRequest) => api.alarm(r)),
      status: unary('Status', log, (r: StatusRequest) => api.status(r)),
      defragment: unary('Defragment', log, (r: DefragmentRequest) => api.defragment(r)),
      hash: unary('Hash', log, (r: HashRequest) => api.hash(r)),
      hashKv: unary('HashKV', log, (r: HashKVRequest) => api.hashKV(r)),
      moveLeader: unary('MoveLeader', log, (r: MoveLeaderRequest) => api.moveLeader(r)),
      ...(api.snapshot ? { snapshot: snapshotHandler({ snapshot: () => api.snapshot!() }, log) } : {}),
    } satisfies Partial<Record<keyof MaintenanceServer, unknown>>,
  };
}

export function clusterService(api: ClusterApi, log: Logger): ServiceRegistration {
  return {
    definition: ClusterService,
    implementation: {
      memberAdd: unary('MemberAdd', log, (r: MemberAddRequest) => api.memberAdd(r)),
      memberRemove: unary('MemberRemove', log, (r: MemberRemoveRequest) => api.memberRemove(r)),
      memberUpdate: unary('MemberUpdate', log, (r: MemberUpdateRequest) => api.memberUpdate(r)),
      memberList: unary('MemberList', log, (r: MemberListRequest) => api.memberList(r)),
      memberPromote: unary('MemberPromote', log, (r: MemberPromoteRequest) => api.memberPromote(r)),
    } satisfies Partial<Record<keyof ClusterServer, unknown>>,
  };
}
