/**
 * The replicated state machine the simulator runs on every node: a map from a small key space to the id
 * of the last write, plus a rolling hash of every entry applied. Equal hashes at an index mean two nodes
 * applied exactly the same entries up to it; the hash travels inside snapshots so a node restored from
 * one can still be compared with the others.
 */
import type { Entry } from '../../src/raft/types.js';
import { EntryType } from '../../src/raft/types.js';
import { assert } from '../../src/base/assert.js';

const PUT_TAG = 0x50;
const PUT_BYTES = 6;

export interface PutCommand {
  readonly proposalId: number;
  readonly key: number;
}

export function encodePut(cmd: PutCommand): Uint8Array {
  assert(Number.isInteger(cmd.proposalId) && cmd.proposalId >= 0 && cmd.proposalId < 2 ** 32, 'kv: bad id');
  assert(Number.isInteger(cmd.key) && cmd.key >= 0 && cmd.key < 256, 'kv: bad key');
  const b = new Uint8Array(PUT_BYTES);
  b[0] = PUT_TAG;
  new DataView(b.buffer).setUint32(1, cmd.proposalId);
  b[5] = cmd.key;
  return b;
}

/** The put carried by a normal entry, or null for anything else (the leader's empty no-op entry). */
export function decodePut(entry: Entry): PutCommand | null {
  if (entry.type !== EntryType.Normal || entry.data.length === 0) return null;
  const d = entry.data;
  assert(d.length === PUT_BYTES && d[0] === PUT_TAG, () => `kv: undecodable entry at ${entry.index}`);
  const view = new DataView(d.buffer, d.byteOffset, d.byteLength);
  return { proposalId: view.getUint32(1), key: d[5] as number };
}

export function hashBytes(h0: number, bytes: Uint8Array): number {
  let h = h0 >>> 0;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193) >>> 0;
  return h;
}

function hashInt(h0: number, x: number): number {
  let h = Math.imul(h0 ^ (x >>> 0), 0x01000193) >>> 0;
  h = Math.imul(h ^ Math.floor(x / 2 ** 32), 0x01000193) >>> 0;
  return h;
}

/** A digest of one entry: index, term, type and payload. */
export function entryHash(e: Entry): number {
  let h = 0x811c9dc5;
  h = hashInt(h, e.index);
  h = hashInt(h, e.term);
  h = hashInt(h, e.type);
  return hashBytes(h, e.data);
}

export function chainHash(prev: number, e: Entry): number {
  return hashInt(Math.imul(prev ^ 0x5bd1e995, 0x01000193) >>> 0, entryHash(e));
}

export interface KvValue {
  readonly proposalId: number;
  /** Log index of the write that produced the value. */
  readonly index: number;
}

interface KvSnapshotData {
  readonly applied: number;
  readonly chain: number;
  readonly kv: readonly (readonly [number, number, number])[];
}

export class KvMachine {
  readonly #kv = new Map<number, KvValue>();
  #applied: number;
  #chain: number;

  private constructor(applied: number, chain: number) {
    this.#applied = applied;
    this.#chain = chain;
  }

  static empty(applied = 0): KvMachine {
    return new KvMachine(applied, 0);
  }

  get applied(): number {
    return this.#applied;
  }

  /** The rolling hash of every entry applied so far (0 before the first one). */
  get chain(): number {
    return this.#chain;
  }

  get(key: number): KvValue | undefined {
    return this.#kv.get(key);
  }

  /** Applies one committed entry; returns the put it carried, if any. */
  apply(entry: Entry): PutCommand | null {
    assert(entry.index === this.#applied + 1, () => `kv: apply ${entry.index} after ${this.#applied}`);
    this.#applied = entry.index;
    this.#chain = chainHash(this.#chain, entry);
    const put = decodePut(entry);
    if (put !== null) this.#kv.set(put.key, { proposalId: put.proposalId, index: entry.index });
    return put;
  }

  serialize(): Uint8Array {
    const kv = [...this.#kv].map(([k, v]) => [k, v.proposalId, v.index] as const);
    const data: KvSnapshotData = { applied: this.#applied, chain: this.#chain, kv };
    return new TextEncoder().encode(JSON.stringify(data));
  }

  static restore(bytes: Uint8Array): KvMachine {
    const data = JSON.parse(new TextDecoder().decode(bytes)) as KvSnapshotData;
    const m = new KvMachine(data.applied, data.chain);
    for (const [k, proposalId, index] of data.kv) m.#kv.set(k, { proposalId, index });
    return m;
  }
}
