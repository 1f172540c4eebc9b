/**
 * JSON for watch, lease and alarm output, as etcdctl marshals clientv3's own response structs: watch
 * responses use Go field names without tags, lease responses embed *pb.ResponseHeader (its fields sit at the
 * top level) and some of their fields have no omitempty.
 */
import { Event_EventType, type Event } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import type {
  AlarmMember,
  AlarmResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  ResponseHeader,
  WatchResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { array, headerJson, int, keyValueJson, object, type Field } from './go-json.js';
import { goJsonString } from './go-format.js';

/** The fields of an embedded *pb.ResponseHeader (none when it is nil). */
function headerFields(h: ResponseHeader | undefined): Field[] {
  if (h === undefined) return [];
  return [
    ['cluster_id', int(h.clusterId)],
    ['member_id', int(h.memberId)],
    ['revision', int(h.revision)],
    ['raft_term', int(h.raftTerm)],
  ];
}

function eventJson(e: Event): string {
  return object([
    ['type', e.type === Event_EventType.PUT ? undefined : String(e.type)],
    ['kv', e.kv === undefined ? undefined : keyValueJson(e.kv)],
    ['prev_kv', e.prevKv === undefined ? undefined : keyValueJson(e.prevKv)],
  ]);
}

/** clientv3.WatchResponse: the header is a value (so "{}" when empty) and Events is never nil. */
export function watchJson(r: WatchResponse): string {
  return object([
    ['Header', headerJson(r.header) ?? '{}'],
    ['Events', `[${r.events.map(eventJson).join(',')}]`],
    ['CompactRevision', r.compactRevision.toString()],
    ['Canceled', String(r.canceled)],
    ['Created', String(r.created)],
  ]);
}

export function grantJson(r: LeaseGrantResponse): string {
  return object([...headerFields(r.header), ['ID', r.ID.toString()], ['TTL', r.TTL.toString()], ['Error', goJsonString(r.error)]]);
}

export function keepAliveJson(r: LeaseKeepAliveResponse): string {
  return object([...headerFields(r.header), ['ID', r.ID.toString()], ['TTL', r.TTL.toString()]]);
}

export function timeToLiveJson(r: LeaseTimeToLiveResponse): string {
  const keys = r.keys.length === 0 ? 'null' : `[${r.keys.map((k) => `"${Buffer.from(k).toString('base64')}"`).join(',')}]`;
  return object([
    ...headerFields(r.header),
    ['id', r.ID.toString()],
    ['ttl', r.TTL.toString()],
    ['granted-ttl', r.grantedTTL.toString()],
    ['keys', keys],
  ]);
}

export function leasesJson(r: LeaseLeasesResponse): string {
  return object([...headerFields(r.header), ['leases', `[${r.leases.map((l) => object([['id', l.ID.toString()]])).join(',')}]`]]);
}

export function revokeJson(r: LeaseRevokeResponse): string {
  return object([['header', headerJson(r.header)]]);
}

function alarmMemberJson(a: AlarmMember): string {
  return object([
    ['memberID', int(a.memberID)],
    ['alarm', int(a.alarm)],
  ]);
}

export function alarmJson(r: AlarmResponse): string {
  return object([
    ['header', headerJson(r.header)],
    ['alarms', array(r.alarms, alarmMemberJson)],
  ]);
}

