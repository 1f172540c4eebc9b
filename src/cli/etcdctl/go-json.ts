/**
 * JSON as etcdctl writes it: Go's encoding/json over the gogoproto structs, so keys are the structs' json tags
 * in field order, zero values are omitted (omitempty), 64-bit integers are plain decimal numbers (unsigned
 * for uint64 fields), bytes are base64, and a oneof is {"Response":{"ResponsePut":{...}}}.
 */
import type { KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import type {
  DeleteRangeResponse,
  HashKVResponse,
  Member,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { goJsonString } from './go-format.js';

export type Field = readonly [string, string | undefined];

export function object(fields: readonly Field[]): string {
  const parts = fields.filter((f): f is readonly [string, string] => f[1] !== undefined).map(([k, v]) => `${goJsonString(k)}:${v}`);
  return `{${parts.join(',')}}`;
}

export const int = (v: bigint | number): string | undefined => (v === 0n || v === 0 ? undefined : v.toString());
export const bool = (v: boolean): string | undefined => (v ? 'true' : undefined);
export const str = (v: string): string | undefined => (v === '' ? undefined : goJsonString(v));
export const bytes = (v: Uint8Array): string | undefined => (v.length === 0 ? undefined : `"${Buffer.from(v).toString('base64')}"`);

export function array<T>(items: readonly T[], encode: (item: T) => string): string | undefined {
  return items.length === 0 ? undefined : `[${items.map(encode).join(',')}]`;
}

export function strings(items: readonly string[]): string | undefined {
  return array(items, goJsonString);
}

export function headerJson(h: ResponseHeader | undefined): string | undefined {
  if (h === undefined) return undefined;
  return object([
    ['cluster_id', int(h.clusterId)],
    ['member_id', int(h.memberId)],
    ['revision', int(h.revision)],
    ['raft_term', int(h.raftTerm)],
  ]);
}

export function keyValueJson(kv: KeyValue): string {
  return object([
    ['key', bytes(kv.key)],
    ['create_revision', int(kv.createRevision)],
    ['mod_revision', int(kv.modRevision)],
    ['version', int(kv.version)],
    ['value', bytes(kv.value)],
    ['lease', int(kv.lease)],
  ]);
}

export function rangeJson(r: RangeResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['kvs', array(r.kvs, keyValueJson)],
    ['more', bool(r.more)],
    ['count', int(r.count)],
  ]);
}

export function putJson(r: PutResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['prev_kv', r.prevKv === undefined ? undefined : keyValueJson(r.prevKv)],
  ]);
}

export function deleteJson(r: DeleteRangeResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['deleted', int(r.deleted)],
    ['prev_kvs', array(r.prevKvs, keyValueJson)],
  ]);
}

function responseOpJson(op: ResponseOp): string {
  const r = op.response;
  let inner: string;
  switch (r?.$case) {
    case undefined:
      return object([['Response', 'null']]);
    case 'responseRange':
      inner = object([['ResponseRange', rangeJson(r.value)]]);
      break;
    case 'responsePut':
      inner = object([['ResponsePut', putJson(r.value)]]);
      break;
    case 'responseDeleteRange':
      inner = object([['ResponseDeleteRange', deleteJson(r.value)]]);
      break;
    case 'responseTxn':
      inner = object([['ResponseTxn', txnJson(r.value)]]);
      break;
  }
  return object([['Response', inner]]);
}

export function txnJson(r: TxnResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['succeeded', bool(r.succeeded)],
    ['responses', array(r.responses, responseOpJson)],
  ]);
}

export function memberJson(m: Member): string {
  return object([
    ['ID', int(m.ID)],
    ['name', str(m.name)],
    ['peerURLs', strings(m.peerURLs)],
    ['clientURLs', strings(m.clientURLs)],
    ['isLearner', bool(m.isLearner)],
  ]);
}

/** Any of the member responses: header, then the added member (MemberAdd only), then the member list. */
export function membersJson(r: { header: ResponseHeader | undefined; member?: Member | undefined; members: Member[] }): string {
  return object([
    ['header', headerJson(r.header)],
    ['member', r.member === undefined ? undefined : memberJson(r.member)],
    ['members', array(r.members, memberJson)],
  ]);
}

export function statusJson(r: StatusResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['version', str(r.version)],
    ['dbSize', int(r.dbSize)],
    ['leader', int(r.leader)],
    ['raftIndex', int(r.raftIndex)],
    ['raftTerm', int(r.raftTerm)],
    ['raftAppliedIndex', int(r.raftAppliedIndex)],
    ['errors', strings(r.errors)],
    ['dbSizeInUse', int(r.dbSizeInUse)],
    ['isLearner', bool(r.isLearner)],
  ]);
}

export function hashKVJson(r: HashKVResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['hash', int(r.hash)],
    ['compact_revision', int(r.compactRevision)],
  ]);
}

export interface EpHealth {
  readonly ep: string;
  readonly health: boolean;
  readonly took: string;
  readonly error: string;
}

export interface EpStatus {
  readonly ep: string;
  readonly resp: StatusResponse;
}

export interface EpHashKV {
  readonly ep: string;
  readonly resp: HashKVResponse;
}

export function epHealthListJson(list: readonly EpHealth[]): string {
  const one = (h: EpHealth): string =>
    object([
      ['endpoint', goJsonString(h.ep)],
      ['health', h.health ? 'true' : 'false'],
      ['took', goJsonString(h.took)],
      ['error', str(h.error)],
    ]);
  return `[${list.map(one).join(',')}]`;
}

export function epStatusListJson(list: readonly EpStatus[]): string {
  return `[${list.map((s) => object([['Endpoint', goJsonString(s.ep)], ['Status', statusJson(s.resp)]])).join(',')}]`;
}

export function epHashKVListJson(list: readonly EpHashKV[]): string {
  return `[${list.map((s) => object([['Endpoint', goJsonString(s.ep)], ['HashKV', hashKVJson(s.resp)]])).join(',')}]`;
}
