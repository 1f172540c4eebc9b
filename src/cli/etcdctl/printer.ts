/**
 * The output formats of etcdctl (-w simple|fields|json|protobuf|table). Each command hands its response to
 * the printer; a format that has no rendering for that response stops with etcdctl's
 * "<format> not supported as output format" (exit code 4).
 */
import type {
  AlarmResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  WatchResponse,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteResponse,
  MemberRemoveResponse,
  MemberUpdateResponse,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { EpHashKV, EpHealth, EpStatus } from './go-json.js';
import { humanizeBytes } from './go-format.js';
import { Exit, ExitError, type Io } from './io.js';

export interface Printer {
  readonly format: OutputFormat;
  get(r: RangeResponse): void;
  put(r: PutResponse): void;
  del(r: DeleteRangeResponse): void;
  txn(r: TxnResponse): void;
  memberList(r: MemberListResponse): void;
  memberAdd(r: MemberAddResponse): void;
  memberRemove(id: bigint, r: MemberRemoveResponse): void;
  memberUpdate(id: bigint, r: MemberUpdateResponse): void;
  memberPromote(id: bigint, r: MemberPromoteResponse): void;
  endpointHealth(list: readonly EpHealth[]): void;
  endpointStatus(list: readonly EpStatus[]): void;
  endpointHashKV(list: readonly EpHashKV[]): void;
  watch(r: WatchResponse): void;
  grant(r: LeaseGrantResponse): void;
  revoke(id: bigint, r: LeaseRevokeResponse): void;
  keepAlive(r: LeaseKeepAliveResponse): void;
  timeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void;
  leases(r: LeaseLeasesResponse): void;
  alarm(r: AlarmResponse): void;
}

export type OutputFormat = 'simple' | 'fields' | 'json' | 'protobuf' | 'table';

export interface PrinterOptions {
  hex: boolean;
  /** get --print-value-only: keys are left out in the simple format. */
  valueOnly: boolean;
}

/** Every method refuses; formats override what they can render. */
export class UnsupportedPrinter implements Printer {
  readonly format: OutputFormat;
  protected readonly io: Io;

  constructor(format: OutputFormat, io: Io) {
    this.format = format;
    this.io = io;
  }

  protected unsupported(): never {
    throw new ExitError(Exit.BadFeature, `${this.format} not supported as output format`);
  }

  get(_r: RangeResponse): void {
    this.unsupported();
  }
  put(_r: PutResponse): void {
    this.unsupported();
  }
  del(_r: DeleteRangeResponse): void {
    this.unsupported();
  }
  txn(_r: TxnResponse): void {
    this.unsupported();
  }
  memberList(_r: MemberListResponse): void {
    this.unsupported();
  }
  memberAdd(_r: MemberAddResponse): void {
    this.unsupported();
  }
  memberRemove(_id: bigint, _r: MemberRemoveResponse): void {
    this.unsupported();
  }
  memberUpdate(_id: bigint, _r: MemberUpdateResponse): void {
    this.unsupported();
  }
  memberPromote(_id: bigint, _r: MemberPromoteResponse): void {
    this.unsupported();
  }
  endpointHealth(_list: readonly EpHealth[]): void {
    this.unsupported();
  }
  endpointStatus(_list: readonly EpStatus[]): void {
    this.unsupported();
  }
  endpointHashKV(_list: readonly EpHashKV[]): void {
    this.unsupported();
  }
  watch(_r: WatchResponse): void {
    this.unsupported();
  }
  grant(_r: LeaseGrantResponse): void {
    this.unsupported();
  }
  revoke(_id: bigint, _r: LeaseRevokeResponse): void {
    this.unsupported();
  }
  keepAlive(_r: LeaseKeepAliveResponse): void {
    this.unsupported();
  }
  timeToLive(_r: LeaseTimeToLiveResponse, _keys: boolean): void {
    this.unsupported();
  }
  leases(_r: LeaseLeasesResponse): void {
    this.unsupported();
  }
  alarm(_r: AlarmResponse): void {
    this.unsupported();
  }
}

/** fmt's %016x of an int64 lease id (a negative one keeps its sign inside the width). */
export function leaseHex(id: bigint): string {
  const signed = BigInt.asIntN(64, id);
  const digits = (signed < 0n ? -signed : signed).toString(16);
  return signed < 0n ? `-${digits.padStart(15, '0')}` : digits.padStart(16, '0');
}

/** gogoproto's compact text of a message, as fmt's %v prints it: "name:value " per set field. */
export function protoText(fields: readonly (readonly [string, bigint | number | string])[]): string {
  return fields
    .filter(([, v]) => v !== 0n && v !== 0 && v !== '')
    .map(([k, v]) => `${k}:${v} `)
    .join('');
}

/** The rows etcdctl's simple and table formats share. */
export function memberListRows(r: MemberListResponse): { header: string[]; rows: string[][] } {
  const header = ['ID', 'Status', 'Name', 'Peer Addrs', 'Client Addrs', 'Is Learner'];
  const rows = r.members.map((m) => [
    m.ID.toString(16),
    m.name.length === 0 ? 'unstarted' : 'started',
    m.name,
    m.peerURLs.join(','),
    m.clientURLs.join(','),
    m.isLearner ? 'true' : 'false',
  ]);
  return { header, rows };
}

export function endpointHealthRows(list: readonly EpHealth[]): { header: string[]; rows: string[][] } {
  return {
    header: ['endpoint', 'health', 'took', 'error'],
    rows: list.map((h) => [h.ep, h.health ? 'true' : 'false', h.took, h.error]),
  };
}

export function endpointHashKVRows(list: readonly EpHashKV[]): { header: string[]; rows: string[][] } {
  return { header: ['endpoint', 'hash'], rows: list.map((h) => [h.ep, h.resp.hash.toString()]) };
}

export function endpointStatusRows(list: readonly EpStatus[]): { header: string[]; rows: string[][] } {
  const header = ['endpoint', 'ID', 'version', 'db size', 'is leader', 'is learner', 'raft term', 'raft index', 'raft applied index', 'errors'];
  const rows = list.map(({ ep, resp }) => {
    const memberId = resp.header?.memberId ?? 0n;
    return [
      ep,
      memberId.toString(16),
      resp.version,
      humanizeBytes(BigInt.asUintN(64, resp.dbSize)),
      resp.leader === memberId ? 'true' : 'false',
      resp.isLearner ? 'true' : 'false',
      resp.raftTerm.toString(),
      resp.raftIndex.toString(),
      resp.raftAppliedIndex.toString(),
      resp.errors.join(', '),
    ];
  });
  return { header, rows };
}
