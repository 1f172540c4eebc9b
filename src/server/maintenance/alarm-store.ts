/**
 * The cluster's alarms (etcd's v3alarm store): which member raised which alarm. Changed only by applying
 * replicated AlarmRequests, so every member holds the same set; persisted in the backend's "alarm" bucket
 * (key: the encoded AlarmMember, as etcd stores it; value empty) in the apply batch, so the consistent
 * index covers it and it survives restarts and travels with backend snapshots.
 */
import {
  AlarmMember,
  AlarmRequest_AlarmAction,
  AlarmType,
  type AlarmRequest,
  type AlarmResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { Logger } from '../../base/logger.js';

/** The backend bucket as the alarm store needs it. */
export interface AlarmRecords {
  forEach(fn: (key: Buffer) => void): void;
  put(key: Buffer): void;
  delete(key: Buffer): void;
}

/**
 * etcd's text for an alarm: Go's compact proto text, fields in order, each followed by a space, and
 * fields at their zero value left out ("alarm:CORRUPT " for the member id 0 a corruption check raises).
 */
export function alarmText(m: AlarmMember): string {
  const id = m.memberID === 0n ? '' : `memberID:${m.memberID} `;
  const alarm = m.alarm === AlarmType.NONE ? '' : `alarm:${AlarmType[m.alarm] ?? m.alarm} `;
  return id + alarm;
}

function keyOf(memberId: bigint, alarm: AlarmType): string {
  return `${alarm}/${memberId}`;
}

export class AlarmStore {
  #records: AlarmRecords;
  readonly #log: Logger;
  readonly #alarms = new Map<string, AlarmMember>();
  readonly #onChange: () => void;

  constructor(records: AlarmRecords, opts: { log: Logger; onChange?: () => void }) {
    this.#records = records;
    this.#log = opts.log;
    this.#onChange = opts.onChange ?? (() => {});
    this.#load();
  }

  /** The backend was replaced (a leader's snapshot): the alarms are the ones it holds. */
  reload(records: AlarmRecords): void {
    this.#records = records;
    this.#alarms.clear();
    this.#load();
    this.#onChange();
  }

  #load(): void {
    this.#records.forEach((key) => {
      const m = AlarmMember.decode(key);
      this.#alarms.set(keyOf(m.memberID, m.alarm), m);
    });
  }

  /** Alarms of one type (NONE: all), ordered by type then member id so every member lists them alike. */
  get(alarm: AlarmType = AlarmType.NONE): AlarmMember[] {
    const all = [...this.#alarms.values()].filter((m) => alarm === AlarmType.NONE || m.alarm === alarm);
    return all.sort((a, b) => a.alarm - b.alarm || (a.memberID < b.memberID ? -1 : a.memberID > b.memberID ? 1 : 0));
  }

  has(alarm: AlarmType): boolean {
    for (const m of this.#alarms.values()) if (m.alarm === alarm) return true;
    return false;
  }

  /** Applies a replicated AlarmRequest (etcd's applier Alarm); the response carries no header, as etcd's. */
  apply(req: AlarmRequest): AlarmResponse {
    switch (req.action) {
      case AlarmRequest_AlarmAction.GET:
        return { header: undefined, alarms: this.get(req.alarm) };
      case AlarmRequest_AlarmAction.ACTIVATE:
        return { header: undefined, alarms: [this.#activate(req.memberID, req.alarm)] };
      case AlarmRequest_AlarmAction.DEACTIVATE: {
        const m = this.#deactivate(req.memberID, req.alarm);
        return { header: undefined, alarms: m ? [m] : [] };
      }
      default:
        return { header: undefined, alarms: [] };
    }
  }

  #activate(memberId: bigint, alarm: AlarmType): AlarmMember {
    const k = keyOf(memberId, alarm);
    const existing = this.#alarms.get(k);
    if (existing) return existing;
    const m: AlarmMember = { memberID: memberId, alarm };
    const first = !this.has(alarm);
    this.#alarms.set(k, m);
    const key = Buffer.from(AlarmMember.encode(m).finish());
    // Member 0 with alarm NONE encodes to nothing, which no backend key can be (bolt refuses it too).
    if (key.length > 0) this.#records.put(key);
    if (first) this.#log.warn('alarm raised', { alarm: AlarmType[alarm] ?? String(alarm), from: memberId.toString(16) });
    this.#onChange();
    return m;
  }

  #deactivate(memberId: bigint, alarm: AlarmType): AlarmMember | undefined {
    const k = keyOf(memberId, alarm);
    const m = this.#alarms.get(k);
    if (!m) return undefined;
    this.#alarms.delete(k);
    const key = Buffer.from(AlarmMember.encode(m).finish());
    if (key.length > 0) this.#records.delete(key);
    if (!this.has(alarm)) this.#log.warn('alarm disarmed', { alarm: AlarmType[alarm] ?? String(alarm), from: memberId.toString(16) });
    this.#onChange();
    return m;
  }
}
