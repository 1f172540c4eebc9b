/**
 * The cluster's members as the applied log says they are. Changed only by applying committed entries
 * (conf changes, attribute publications), so every member holds the same list at the same index.
 */
import { MemberInfo } from '../gen/etcdts/internal.js';
import type { Member } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';

export interface MemberRecord {
  readonly id: bigint;
  readonly name: string;
  readonly peerUrls: readonly string[];
  readonly clientUrls: readonly string[];
  readonly isLearner: boolean;
}

/** Where the member list is kept durably (a backend bucket), written within the apply batch. */
export interface MemberPersistence {
  saveMember(id: bigint, encoded: Uint8Array): void;
  deleteMember(id: bigint): void;
  loadMembers(): Uint8Array[];
}

/** Told of every change so the peer transport can follow the member list. */
export interface MembershipObserver {
  onUpsert(m: MemberRecord): void;
  onRemove(id: bigint): void;
}

export class Membership {
  readonly #members = new Map<bigint, MemberRecord>();
  #observer: MembershipObserver | null = null;
  readonly #removed = new Set<bigint>();
  readonly #store: MemberPersistence;
  #clusterId: bigint;

  constructor(store: MemberPersistence, options: { clusterId: bigint }) {
    this.#store = store;
    this.#clusterId = options.clusterId;
    this.#load();
  }

  #load(): void {
    for (const bytes of this.#store.loadMembers()) {
      const m = fromInfo(MemberInfo.decode(bytes));
      this.#members.set(m.id, m);
    }
  }

  /** Re-reads the list from a replaced backend, telling the observer what appeared and went away. */
  reload(): void {
    const before = new Set(this.#members.keys());
    this.#members.clear();
    this.#load();
    for (const m of this.#members.values()) this.#observer?.onUpsert(m);
    for (const id of before) if (!this.#members.has(id)) this.#observer?.onRemove(id);
  }

  get clusterId(): bigint {
    return this.#clusterId;
  }

  get(id: bigint): MemberRecord | undefined {
    return this.#members.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.#removed.has(id);
  }

  /** Members in ascending id order, as etcd lists them. */
  list(): MemberRecord[] {
    return [...this.#members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  voterIds(): bigint[] {
    return this.list().filter((m) => !m.isLearner).map((m) => m.id);
  }

  observe(observer: MembershipObserver): void {
    this.#observer = observer;
  }

  upsert(m: MemberRecord): void {
    this.#members.set(m.id, m);
    this.#store.saveMember(m.id, encodeMember(m));
    this.#observer?.onUpsert(m);
  }

  remove(id: bigint): void {
    this.#members.delete(id);
    this.#removed.add(id);
    this.#store.deleteMember(id);
    this.#observer?.onRemove(id);
  }

  setAttributes(id: bigint, attrs: { name: string; clientUrls: readonly string[] }): void {
    const m = this.#members.get(id);
    if (!m) return;
    this.upsert({ ...m, name: attrs.name, clientUrls: [...attrs.clientUrls] });
  }
}

export function encodeMember(m: MemberRecord): Uint8Array {
  return MemberInfo.encode({ id: m.id, name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner, requestId: 0n }).finish();
}

export function fromInfo(info: MemberInfo): MemberRecord {
  return { id: info.id, name: info.name, peerUrls: info.peerUrls, clientUrls: info.clientUrls, isLearner: info.isLearner };
}

export function toPbMember(m: MemberRecord): Member {
  return { ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner };
}
