/**
 * The in-memory index of every key: an ordered map from key to its generations (key-index.ts).
 *
 * Keys are latin1 strings: one char per byte, so JavaScript string order is byte order (what etcd's ranges
 * mean) and V8 stores them one byte per char; comparing them is ~2x faster and ~3x leaner than Buffers
 * (MEASUREMENTS.md).
 *
 * Two structures share the key strings: a hash map from key to its generations, which serves every point
 * operation (a put looks its key up twice), and a B+ tree (sorted-btree) holding only the keys, for ranges.
 * Measured here with 200k keys, a B+ tree lookup costs ~2.5 us against ~0.1 us for the map; the map costs
 * ~40 bytes per key more. The tree is touched only when a key appears or disappears.
 *
 * Range ends follow etcd's index: `undefined` is the single key, '' is "every key >= key" (what a request's
 * "\0" range_end means once the caller has mapped it), anything else is the half-open [key, end).
 */
import BTreeModule from 'sorted-btree';
import { assert } from '../base/assert.js';
import {
  type IndexHit,
  type KeyIndex,
  kiCompact,
  kiContains,
  kiGet,
  kiIsLive,
  kiKeep,
  kiNew,
  kiPut,
  kiRestore,
  kiSince,
  kiTombstone,
  newHit,
} from './key-index.js';

const BTree = BTreeModule.default;
type KeyTree = InstanceType<typeof BTree<string, undefined>>;

/** Greater than every latin1 string: the high end of a from-key range. */
const aboveAllKeys = '\u0100';

export type RangeEnd = string | undefined;

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class TreeIndex {
  readonly #keys = new Map<string, KeyIndex>();
  readonly #order: KeyTree = new BTree<string, undefined>(undefined, compareStrings);
  readonly #hit = newHit();
  /** Keys whose last generation is live (etcd_debugging_mvcc_keys_total); compaction never changes it. */
  #live = 0;

  /** Keys that exist now. */
  get liveKeys(): number {
    return this.#live;
  }

  /** Keys with any recorded revision (live or not yet compacted away). */
  get keyCount(): number {
    return this.#keys.size;
  }

  get(key: string, atRev: number, out: IndexHit): boolean {
    const ki = this.#keys.get(key);
    return ki !== undefined && kiGet(ki, atRev, out);
  }

  #insert(key: string, ki: KeyIndex): void {
    this.#keys.set(key, ki);
    this.#order.set(key, undefined);
  }

  put(key: string, main: number, sub: number): void {
    const ki = this.#keys.get(key);
    if (ki === undefined || !kiIsLive(ki)) this.#live++;
    if (ki === undefined) this.#insert(key, kiNew(main, sub));
    else this.#keys.set(key, kiPut(ki, main, sub));
  }

  /** Ends the key's live generation; false when the key is not live (nothing to delete). */
  tombstone(key: string, main: number, sub: number): boolean {
    const ki = this.#keys.get(key);
    if (ki === undefined) return false;
    const next = kiTombstone(ki, main, sub);
    if (next === undefined) return false;
    this.#keys.set(key, next);
    this.#live--;
    return true;
  }

  /**
   * Replays one backend record while restoring, in revision order, as etcd's restoreIntoIndex: the first
   * record of a key starts its generation from the record's created revision and version (older revisions
   * may have been compacted away); a tombstone for an unknown key is skipped.
   */
  restore(key: string, rec: { main: number; sub: number; tombstone: boolean; created: number; version: number }): void {
    const ki = this.#keys.get(key);
    if (ki === undefined) {
      if (rec.tombstone) return;
      this.#insert(key, kiRestore(rec));
      this.#live++;
      return;
    }
    const wasLive = kiIsLive(ki);
    const next = rec.tombstone ? kiTombstone(ki, rec.main, rec.sub) : kiPut(ki, rec.main, rec.sub);
    if (next === undefined) return;
    this.#keys.set(key, next);
    this.#live += (kiIsLive(next) ? 1 : 0) - (wasLive ? 1 : 0);
  }

  /**
   * Calls fn for every key in the range visible at atRev, in key order, with the revision found (the hit
   * object is reused: copy what you keep). fn returns false to stop.
   */
  visit(key: string, end: RangeEnd, atRev: number, fn: (key: string, hit: IndexHit) => boolean | void): void {
    const hit = this.#hit;
    if (end === undefined) {
      if (this.get(key, atRev, hit)) fn(key, hit);
      return;
    }
    const high = end === '' ? aboveAllKeys : end;
    if (high <= key) return;
    const keys = this.#keys;
    this.#order.editRange(key, high, false, (k) => {
      if (kiGet(keys.get(k)!, atRev, hit) && fn(k, hit) === false) return { break: 0 };
      return undefined;
    });
  }

  /**
   * The revisions of the keys visible at atRev: the first `limit` as (main, sub) pairs (limit <= 0: all),
   * and the total count, which etcd reports regardless of the limit.
   */
  revisions(key: string, end: RangeEnd, opts: { atRev: number; limit: number }): { revs: number[]; count: number } {
    const revs: number[] = [];
    const max = opts.limit > 0 ? opts.limit : Infinity;
    let count = 0;
    this.visit(key, end, opts.atRev, (_k, hit) => {
      if (count < max) revs.push(hit.main, hit.sub);
      count++;
    });
    return { revs, count };
  }

  /** The keys visible at atRev (what a delete range removes). */
  keys(key: string, end: RangeEnd, atRev: number): string[] {
    const out: string[] = [];
    this.visit(key, end, atRev, (k) => {
      out.push(k);
    });
    return out;
  }

  /** Whether the key still records (main, sub): after compaction, exactly what the backend must keep. */
  contains(key: string, main: number, sub: number): boolean {
    const ki = this.#keys.get(key);
    return ki !== undefined && kiContains(ki, main, sub);
  }

  /** The revision of this key that etcd's Keep(atRev) would hold, if any. */
  keep(key: string, atRev: number, out: { main: number; sub: number }): boolean {
    const ki = this.#keys.get(key);
    return ki !== undefined && kiKeep(ki, atRev, out);
  }

  /** Whether any key would be held by Keep(atRev) (etcd's hash treats an empty keep set specially). */
  anyKept(atRev: number): boolean {
    const out = { main: 0, sub: 0 };
    for (const ki of this.#keys.values()) if (kiKeep(ki, atRev, out)) return true;
    return false;
  }

  /**
   * Compacts up to maxKeys keys (or for about budgetMs) starting at fromKey (undefined: the first key) and
   * returns the key to continue from, or undefined when the whole tree is done. Chunks let a big index be compacted between
   * writes: a write in between only adds revisions above atRev, which compaction never touches.
   */
  compactChunk(atRev: number, opts: { fromKey: string | undefined; maxKeys: number; budgetMs?: number }): string | undefined {
    assert(opts.maxKeys > 0, 'compaction chunk must be positive');
    const low = opts.fromKey ?? this.#order.minKey();
    if (low === undefined) return undefined;
    const deadline = performance.now() + (opts.budgetMs ?? Infinity);
    let next: string | undefined;
    let done = 0;
    this.#order.editRange(low, aboveAllKeys, false, (k) => {
      if (done === opts.maxKeys || ((done & 31) === 31 && performance.now() > deadline)) {
        next = k;
        return { break: 0 };
      }
      done++;
      const after = kiCompact(this.#keys.get(k)!, atRev);
      if (after !== undefined) {
        this.#keys.set(k, after);
        return undefined;
      }
      this.#keys.delete(k);
      return { delete: true };
    });
    return next;
  }

  compact(atRev: number): void {
    let from: string | undefined;
    do from = this.compactChunk(atRev, { fromKey: from, maxKeys: 1 << 30 });
    while (from !== undefined);
  }

  /** Every (main, sub) with main >= rev of the keys in range, in revision order (watchers catching up). */
  rangeSince(key: string, end: RangeEnd, rev: number): number[] {
    const out: number[] = [];
    if (end === undefined) {
      const ki = this.#keys.get(key);
      if (ki !== undefined) kiSince(ki, rev, out);
      return out;
    }
    const high = end === '' ? aboveAllKeys : end;
    if (high <= key) return out;
    this.#order.editRange(key, high, false, (k) => {
      kiSince(this.#keys.get(k)!, rev, out);
    });
    return sortPairs(out);
  }
}

function sortPairs(flat: number[]): number[] {
  const idx = Array.from({ length: flat.length / 2 }, (_, i) => i);
  idx.sort((a, b) => flat[2 * a]! - flat[2 * b]! || flat[2 * a + 1]! - flat[2 * b + 1]!);
  const out: number[] = [];
  for (const i of idx) out.push(flat[2 * i]!, flat[2 * i + 1]!);
  return out;
}
