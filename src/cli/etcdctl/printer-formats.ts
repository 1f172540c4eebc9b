/** The json, protobuf and table formats, and the choice of printer from -w. */
import {
  AlarmResponse,
  ResponseHeader,
  WatchResponse,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveResponse,
  DeleteRangeResponse,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import {
  deleteJson,
  epHashKVListJson,
  epHealthListJson,
  epStatusListJson,
  membersJson,
  putJson,
  rangeJson,
  txnJson,
  type EpHashKV,
  type EpHealth,
  type EpStatus,
} from './go-json.js';
import { alarmJson, grantJson, keepAliveJson, leasesJson, revokeJson, timeToLiveJson, watchJson } from './go-json-streams.js';
import { Exit, ExitError, type Io } from './io.js';
import { FieldsPrinter } from './printer-fields.js';
import { SimplePrinter } from './printer-simple.js';
import {
  UnsupportedPrinter,
  endpointHashKVRows,
  endpointHealthRows,
  endpointStatusRows,
  memberListRows,
  protoText,
  type Printer,
  type PrinterOptions,
} from './printer.js';
import { renderTable } from './table.js';

export class JsonPrinter extends UnsupportedPrinter {
  constructor(io: Io) {
    super('json', io);
  }

  #print(json: string): void {
    this.io.stdout(`${json}\n`);
  }

  override get(r: RangeResponse): void {
    this.#print(rangeJson(r));
  }
  override put(r: PutResponse): void {
    this.#print(putJson(r));
  }
  override del(r: DeleteRangeResponse): void {
    this.#print(deleteJson(r));
  }
  override txn(r: TxnResponse): void {
    this.#print(txnJson(r));
  }
  override memberList(r: MemberListResponse): void {
    this.#print(membersJson(r));
  }
  override memberAdd(r: MemberAddResponse): void {
    this.#print(membersJson(r));
  }
  override memberRemove(_id: bigint, r: MemberRemoveResponse): void {
    this.#print(membersJson(r));
  }
  override memberUpdate(_id: bigint, r: MemberUpdateResponse): void {
    this.#print(membersJson(r));
  }
  override memberPromote(_id: bigint, r: MemberPromoteResponse): void {
    this.#print(membersJson(r));
  }
  override endpointHealth(list: readonly EpHealth[]): void {
    this.#print(epHealthListJson(list));
  }
  override endpointStatus(list: readonly EpStatus[]): void {
    this.#print(epStatusListJson(list));
  }
  override endpointHashKV(list: readonly EpHashKV[]): void {
    this.#print(epHashKVListJson(list));
  }
  override watch(r: WatchResponse): void {
    this.#print(watchJson(r));
  }
  override grant(r: LeaseGrantResponse): void {
    this.#print(grantJson(r));
  }
  override revoke(_id: bigint, r: LeaseRevokeResponse): void {
    this.#print(revokeJson(r));
  }
  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.#print(keepAliveJson(r));
  }
  override timeToLive(r: LeaseTimeToLiveResponse, _keys: boolean): void {
    this.#print(timeToLiveJson(r));
  }
  override leases(r: LeaseLeasesResponse): void {
    this.#print(leasesJson(r));
  }
  override alarm(r: AlarmResponse): void {
    this.#print(alarmJson(r));
  }
}

/** The response's protobuf encoding, raw, with no newline: what etcdctl -w protobuf writes. */
export class ProtobufPrinter extends UnsupportedPrinter {
  constructor(io: Io) {
    super('protobuf', io);
  }

  override get(r: RangeResponse): void {
    this.io.stdout(RangeResponse.encode(r).finish());
  }
  override put(r: PutResponse): void {
    this.io.stdout(PutResponse.encode(r).finish());
  }
  override del(r: DeleteRangeResponse): void {
    this.io.stdout(DeleteRangeResponse.encode(r).finish());
  }
  override txn(r: TxnResponse): void {
    this.io.stdout(TxnResponse.encode(r).finish());
  }
  override memberList(r: MemberListResponse): void {
    this.io.stdout(MemberListResponse.encode(r).finish());
  }
  override memberAdd(r: MemberAddResponse): void {
    this.io.stdout(MemberAddResponse.encode(r).finish());
  }
  override memberRemove(_id: bigint, r: MemberRemoveResponse): void {
    this.io.stdout(MemberRemoveResponse.encode(r).finish());
  }
  override memberUpdate(_id: bigint, r: MemberUpdateResponse): void {
    this.io.stdout(MemberUpdateResponse.encode(r).finish());
  }
  override memberPromote(_id: bigint, r: MemberPromoteResponse): void {
    this.io.stdout(MemberPromoteResponse.encode(r).finish());
  }
  /** clientv3's WatchResponse has no watch id or fragment flag: only these fields are re-encoded. */
  override watch(r: WatchResponse): void {
    const { header, events, compactRevision, canceled, created } = r;
    this.io.stdout(WatchResponse.encode({ ...WatchResponse.create(), header, events, compactRevision, canceled, created }).finish());
  }
  // clientv3's lease responses embed *pb.ResponseHeader, whose Marshal method is the one etcdctl finds.
  override grant(r: LeaseGrantResponse): void {
    this.#header(r.header);
  }
  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.#header(r.header);
  }
  override timeToLive(r: LeaseTimeToLiveResponse, _keys: boolean): void {
    this.#header(r.header);
  }
  override leases(r: LeaseLeasesResponse): void {
    this.#header(r.header);
  }
  /** etcdctl hands over the revoke response by value, which has no Marshal method. */
  override revoke(_id: bigint, r: LeaseRevokeResponse): void {
    const h = r.header;
    const text = h === undefined ? '<nil>' : protoText([['cluster_id', h.clusterId], ['member_id', h.memberId], ['revision', h.revision], ['raft_term', h.raftTerm]]);
    throw new ExitError(Exit.BadFeature, `marshal unsupported for type clientv3.LeaseRevokeResponse ({${text}})`);
  }
  override alarm(r: AlarmResponse): void {
    this.io.stdout(AlarmResponse.encode(r).finish());
  }

  #header(h: ResponseHeader | undefined): void {
    this.io.stdout(ResponseHeader.encode(h ?? ResponseHeader.create()).finish());
  }
}

export class TablePrinter extends UnsupportedPrinter {
  constructor(io: Io) {
    super('table', io);
  }

  #render(t: { header: string[]; rows: string[][] }): void {
    this.io.stdout(renderTable(t.header, t.rows));
  }

  override memberList(r: MemberListResponse): void {
    this.#render(memberListRows(r));
  }
  override endpointHealth(list: readonly EpHealth[]): void {
    this.#render(endpointHealthRows(list));
  }
  override endpointStatus(list: readonly EpStatus[]): void {
    this.#render(endpointStatusRows(list));
  }
  override endpointHashKV(list: readonly EpHashKV[]): void {
    this.#render(endpointHashKVRows(list));
  }
}

/** The printer for -w, or undefined for a format etcdctl does not know. */
export function newPrinter(format: string, io: Io, options: PrinterOptions): Printer | undefined {
  switch (format) {
    case 'simple':
      return new SimplePrinter(io, options);
    case 'fields':
      return new FieldsPrinter(io);
    case 'json':
      return new JsonPrinter(io);
    case 'protobuf':
      return new ProtobufPrinter(io);
    case 'table':
      return new TablePrinter(io);
    default:
      return undefined;
  }
}
