/** etcdctl's "fields" format: one `"Name" : value` line per field, strings quoted as Go's %q. */
import { Event_EventType, type KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import {
  alarmTypeToJSON,
  type AlarmResponse,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveResponse,
  type WatchResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type {
  DeleteRangeResponse,
  MemberListResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { goQuote, goStringSlice } from './go-format.js';
import type { EpHashKV, EpHealth, EpStatus } from './go-json.js';
import { ExitError, goPanicExitCode, type Io } from './io.js';
import { UnsupportedPrinter } from './printer.js';

export class FieldsPrinter extends UnsupportedPrinter {
  constructor(io: Io) {
    super('fields', io);
  }

  #line(text: string): void {
    this.io.stdout(`${text}\n`);
  }

  #kv(prefix: string, kv: KeyValue): void {
    this.#line(`"${prefix}Key" : ${goQuote(kv.key)}`);
    this.#line(`"${prefix}CreateRevision" : ${kv.createRevision}`);
    this.#line(`"${prefix}ModRevision" : ${kv.modRevision}`);
    this.#line(`"${prefix}Version" : ${kv.version}`);
    this.#line(`"${prefix}Value" : ${goQuote(kv.value)}`);
    this.#line(`"${prefix}Lease" : ${kv.lease}`);
  }

  #header(h: ResponseHeader | undefined): void {
    this.#line(`"ClusterID" : ${h?.clusterId ?? 0n}`);
    this.#line(`"MemberID" : ${h?.memberId ?? 0n}`);
    this.#line(`"Revision" : ${h?.revision ?? 0n}`);
    this.#line(`"RaftTerm" : ${h?.raftTerm ?? 0n}`);
  }

  override get(r: RangeResponse): void {
    this.#header(r.header);
    for (const kv of r.kvs) this.#kv('', kv);
    this.#line(`"More" : ${r.more}`);
    this.#line(`"Count" : ${r.count}`);
  }

  override put(r: PutResponse): void {
    this.#header(r.header);
    if (r.prevKv !== undefined) this.#kv('Prev', r.prevKv);
  }

  override del(r: DeleteRangeResponse): void {
    this.#header(r.header);
    this.#line(`"Deleted" : ${r.deleted}`);
    for (const kv of r.prevKvs) this.#kv('Prev', kv);
  }

  override txn(r: TxnResponse): void {
    this.#header(r.header);
    this.#line(`"Succeeded" : ${r.succeeded}`);
    for (const op of r.responses) {
      const response = op.response;
      if (response?.$case === 'responseDeleteRange') this.del(response.value);
      else if (response?.$case === 'responsePut') this.put(response.value);
      else if (response?.$case === 'responseRange') this.get(response.value);
      else this.#line(`"Unknown" : ${goQuote(response?.$case ?? '<nil>')}`);
    }
  }

  override memberList(r: MemberListResponse): void {
    this.#header(r.header);
    for (const m of r.members) {
      this.#line(`"ID" : ${m.ID}`);
      this.#line(`"Name" : ${goQuote(m.name)}`);
      for (const u of m.peerURLs) this.#line(`"PeerURL" : ${goQuote(u)}`);
      for (const u of m.clientURLs) this.#line(`"ClientURL" : ${goQuote(u)}`);
      this.#line(`"IsLearner" : ${m.isLearner}`);
      this.#line('');
    }
  }

  override endpointHealth(list: readonly EpHealth[]): void {
    for (const h of list) {
      this.#line(`"Endpoint" : ${goQuote(h.ep)}`);
      this.#line(`"Health" : ${h.health}`);
      this.#line(`"Took" : ${h.took}`);
      this.#line(`"Error" : ${h.error}`);
      this.#line('');
    }
  }

  override endpointStatus(list: readonly EpStatus[]): void {
    for (const { ep, resp } of list) {
      this.#header(resp.header);
      this.#line(`"Version" : ${goQuote(resp.version)}`);
      this.#line(`"DBSize" : ${resp.dbSize}`);
      this.#line(`"Leader" : ${resp.leader}`);
      this.#line(`"IsLearner" : ${resp.isLearner}`);
      this.#line(`"RaftIndex" : ${resp.raftIndex}`);
      this.#line(`"RaftTerm" : ${resp.raftTerm}`);
      this.#line(`"RaftAppliedIndex" : ${resp.raftAppliedIndex}`);
      this.#line(`"Errors" : ${goStringSlice(resp.errors)}`);
      this.#line(`"Endpoint" : ${goQuote(ep)}`);
      this.#line('');
    }
  }

  override endpointHashKV(list: readonly EpHashKV[]): void {
    for (const { ep, resp } of list) {
      this.#header(resp.header);
      this.#line(`"Endpoint" : ${goQuote(ep)}`);
      this.#line(`"Hash" : ${resp.hash}`);
      this.#line('');
    }
  }

  override watch(r: WatchResponse): void {
    this.#header(r.header);
    for (const e of r.events) {
      this.#line(`"Type" : ${e.type === Event_EventType.DELETE ? 'DELETE' : 'PUT'}`);
      if (e.prevKv !== undefined) this.#kv('Prev', e.prevKv);
      if (e.kv !== undefined) this.#kv('', e.kv);
    }
  }

  override grant(r: LeaseGrantResponse): void {
    this.#header(r.header);
    this.#line(`"ID" : ${r.ID}`);
    this.#line(`"TTL" : ${r.TTL}`);
  }

  override revoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.#header(r.header);
  }

  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.grant({ ...r, error: '' });
  }

  override timeToLive(r: LeaseTimeToLiveResponse, _keys: boolean): void {
    this.#header(r.header);
    this.#line(`"ID" : ${r.ID}`);
    this.#line(`"TTL" : ${r.TTL}`);
    this.#line(`"GrantedTTL" : ${r.grantedTTL}`);
    for (const k of r.keys) this.#line(`"Key" : ${goQuote(k)}`);
  }

  override leases(r: LeaseLeasesResponse): void {
    this.#header(r.header);
    for (const l of r.leases) this.#line(`"ID" : ${l.ID}`);
  }

  override alarm(r: AlarmResponse): void {
    // alarm disarm's response has no header, which etcdctl dereferences.
    if (r.header === undefined) throw new ExitError(goPanicExitCode, undefined, 'panic: runtime error: invalid memory address or nil pointer dereference\n');
    this.#header(r.header);
    for (const a of r.alarms) {
      this.#line(`"MemberID" : ${a.memberID}`);
      this.#line(`"AlarmType" : ${alarmTypeToJSON(a.alarm)}`);
      this.#line('');
    }
  }
}
