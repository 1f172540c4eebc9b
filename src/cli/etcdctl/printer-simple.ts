/** etcdctl's default "simple" format: keys and values on their own lines, rows as comma-separated text. */
import type { KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import { Event_EventType } from '../../gen/etcd/mvcc/mvccpb/kv.js';
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
import type { Io } from './io.js';
import {
  UnsupportedPrinter,
  endpointHashKVRows,
  endpointStatusRows,
  leaseHex,
  memberListRows,
  protoText,
  type PrinterOptions,
} from './printer.js';

/** "\x61\x62": how --hex shows bytes. */
export function hexEscaped(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += `\\x${b.toString(16).padStart(2, '0')}`;
  return out;
}

/** fmt's %16x: lower-case hex right-aligned in 16 columns. */
function hex16(id: bigint): string {
  return id.toString(16).padStart(16, ' ');
}

export class SimplePrinter extends UnsupportedPrinter {
  #options: PrinterOptions;

  constructor(io: Io, options: PrinterOptions) {
    super('simple', io);
    this.#options = options;
  }

  /** get --print-value-only: etcdctl switches it on after the response arrived. */
  setValueOnly(): void {
    this.#options = { ...this.#options, valueOnly: true };
  }

  #kv(kv: KeyValue): void {
    const { hex, valueOnly } = this.#options;
    if (!valueOnly) this.#line(hex ? hexEscaped(kv.key) : kv.key);
    this.#line(hex ? hexEscaped(kv.value) : kv.value);
  }

  #line(data: string | Uint8Array): void {
    this.io.stdout(data);
    this.io.stdout('\n');
  }

  override get(r: RangeResponse): void {
    for (const kv of r.kvs) this.#kv(kv);
  }

  override put(r: PutResponse): void {
    this.#line('OK');
    if (r.prevKv !== undefined) this.#kv(r.prevKv);
  }

  override del(r: DeleteRangeResponse): void {
    this.#line(r.deleted.toString());
    for (const kv of r.prevKvs) this.#kv(kv);
  }

  override txn(r: TxnResponse): void {
    this.#line(r.succeeded ? 'SUCCESS' : 'FAILURE');
    for (const op of r.responses) {
      this.#line('');
      const response = op.response;
      if (response?.$case === 'responseDeleteRange') this.del(response.value);
      else if (response?.$case === 'responsePut') this.put(response.value);
      else if (response?.$case === 'responseRange') this.get(response.value);
      // etcdctl cannot build nested txns, so it has no rendering for their results either.
      else this.#line(`unexpected response ${response?.$case ?? 'nil'}`);
    }
  }

  override memberList(r: MemberListResponse): void {
    for (const row of memberListRows(r).rows) this.#line(row.join(', '));
  }

  override memberAdd(r: MemberAddResponse): void {
    this.#line(`Member ${hex16(r.member?.ID ?? 0n)} added to cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  override memberRemove(id: bigint, r: MemberRemoveResponse): void {
    this.#line(`Member ${hex16(id)} removed from cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  override memberUpdate(id: bigint, r: MemberUpdateResponse): void {
    this.#line(`Member ${hex16(id)} updated in cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  override memberPromote(id: bigint, r: MemberPromoteResponse): void {
    this.#line(`Member ${hex16(id)} promoted in cluster ${hex16(r.header?.clusterId ?? 0n)}`);
  }

  override endpointHealth(list: readonly EpHealth[]): void {
    for (const h of list) {
      if (h.error === '') this.io.stderr(`${h.ep} is healthy: successfully committed proposal: took = ${h.took}\n`);
      else this.io.stderr(`${h.ep} is unhealthy: failed to commit proposal: ${h.error}\n`);
    }
  }

  override endpointStatus(list: readonly EpStatus[]): void {
    for (const row of endpointStatusRows(list).rows) this.#line(row.join(', '));
  }

  override endpointHashKV(list: readonly EpHashKV[]): void {
    for (const row of endpointHashKVRows(list).rows) this.#line(row.join(', '));
  }

  override watch(r: WatchResponse): void {
    for (const e of r.events) {
      this.#line(e.type === Event_EventType.DELETE ? 'DELETE' : 'PUT');
      if (e.prevKv !== undefined) this.#kv(e.prevKv);
      // A nil kv is a nil-pointer panic in etcdctl; servers always send one.
      if (e.kv !== undefined) this.#kv(e.kv);
    }
  }

  override grant(r: LeaseGrantResponse): void {
    this.#line(`lease ${leaseHex(r.ID)} granted with TTL(${r.TTL}s)`);
  }

  override revoke(id: bigint, _r: LeaseRevokeResponse): void {
    this.#line(`lease ${leaseHex(id)} revoked`);
  }

  override keepAlive(r: LeaseKeepAliveResponse): void {
    this.#line(`lease ${leaseHex(r.ID)} keepalived with TTL(${r.TTL})`);
  }

  override timeToLive(r: LeaseTimeToLiveResponse, keys: boolean): void {
    if (r.grantedTTL === 0n && r.TTL === -1n) {
      this.#line(`lease ${leaseHex(r.ID)} already expired`);
      return;
    }
    const text = `lease ${leaseHex(r.ID)} granted with TTL(${r.grantedTTL}s), remaining(${r.TTL}s)`;
    if (!keys) {
      this.#line(text);
      return;
    }
    // The keys are written as raw bytes, like fmt's %v of a []string.
    const parts: Buffer[] = [];
    r.keys.forEach((k, i) => parts.push(...(i === 0 ? [] : [Buffer.from(' ')]), Buffer.from(k)));
    this.#line(Buffer.concat([Buffer.from(`${text}, attached keys([`), ...parts, Buffer.from('])')]));
  }

  override leases(r: LeaseLeasesResponse): void {
    this.#line(`found ${r.leases.length} leases`);
    for (const l of r.leases) this.#line(leaseHex(l.ID));
  }

  override alarm(r: AlarmResponse): void {
    for (const a of r.alarms) {
      this.#line(protoText([['memberID', a.memberID], ['alarm', a.alarm === 0 ? '' : alarmTypeToJSON(a.alarm)]]));
    }
  }
}
