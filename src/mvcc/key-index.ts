/**
 * The revision history of one key: its generations, as etcd's keyIndex.
 *
 * A generation is the life of a key from its creation to its deletion: the revisions of every put, ending
 * with the tombstone's revision. Every generation but the last ends with a tombstone; the last one is live
 * (the key exists now) or empty (the key is deleted now).
 *
 * Memory is the point of the representation: the tree holds one of these per key, a million of them in the
 * target workload, so there is no object per generation or per revision.
 *  - A key written once (one live generation, one revision, created at that revision) is a single number:
 *    main * 2^21 + sub. V8 keeps it as one heap number (16 bytes) instead of an array (~96 bytes).
 *  - Anything else is a flat array of numbers, generations one after another, each laid out as
 *      [createdMain, version, n, main_1, sub_1, ..., main_n, sub_n]
 *    (n = 0 for the empty last generation). Small arrays are replaced rather than grown so they carry no
 *    spare capacity; large ones (hot keys between compactions) grow in place to keep puts O(1) amortized.
 *
 * All functions are pure over the value they are given, except that a large array may be extended in place;
 * callers always store the returned value back.
 */
import { assert } from '../base/assert.js';

export type KeyIndex = number | number[];

/** The revision a lookup found: what etcd's keyIndex.get returns. */
export interface IndexHit {
  main: number;
  sub: number;
  created: number;
  version: number;
}

export function newHit(): IndexHit {
  return { main: 0, sub: 0, created: 0, version: 0 };
}

const packSub = 2 ** 21;
const packMainLimit = 2 ** 32;
const gCreated = 0;
const gVersion = 1;
const gCount = 2;
const gRevs = 3;
/** Below this length an array is copied on write (exact size); above it, it grows in place. */
const copyOnWriteMaxLength = 64;

function canPack(main: number, sub: number): boolean {
  return sub < packSub && main < packMainLimit;
}

function unpackMain(v: number): number {
  return Math.floor(v / packSub);
}

function unpackSub(v: number): number {
  return v % packSub;
}

function toArray(ki: KeyIndex): number[] {
  if (typeof ki !== 'number') return ki;
  const main = unpackMain(ki);
  return [main, 1, 1, main, unpackSub(ki)];
}

/** The compact form of a generation list when it is a single fresh put; otherwise the array itself. */
function compress(a: number[]): KeyIndex {
  if (a.length === 5 && a[gCount] === 1 && a[gVersion] === 1 && a[gCreated] === a[gRevs]) {
    const main = a[gRevs]!;
    const sub = a[gRevs + 1]!;
    if (canPack(main, sub)) return main * packSub + sub;
  }
  return a;
}

function genEnd(a: number[], off: number): number {
  return off + gRevs + 2 * a[off + gCount]!;
}

function lastGenOffset(a: number[]): number {
  let off = 0;
  for (let next = genEnd(a, 0); next < a.length; next = genEnd(a, off)) off = next;
  return off;
}

function append(a: number[], items: number[]): number[] {
  if (a.length < copyOnWriteMaxLength) return a.concat(items);
  for (const x of items) a.push(x);
  return a;
}

/** A key's first put. */
export function kiNew(main: number, sub: number): KeyIndex {
  return canPack(main, sub) ? main * packSub + sub : [main, 1, 1, main, sub];
}

/** A key seen for the first time while restoring from the backend (its older revisions may be compacted). */
export function kiRestore(opts: { created: number; main: number; sub: number; version: number }): KeyIndex {
  return compress([opts.created, opts.version, 1, opts.main, opts.sub]);
}

/** The last revision (put or tombstone) recorded: etcd's keyIndex.modified. */
export function kiModified(ki: KeyIndex): { main: number; sub: number } {
  if (typeof ki === 'number') return { main: unpackMain(ki), sub: unpackSub(ki) };
  const off = lastGenOffset(ki);
  const at = ki[off + gCount] === 0 ? off - 2 : ki.length - 2;
  assert(at >= gRevs, 'key index without revisions');
  return { main: ki[at]!, sub: ki[at + 1]! };
}

function assertAfterModified(ki: KeyIndex, main: number, sub: number): void {
  const m = kiModified(ki);
  assert(main > m.main || (main === m.main && sub > m.sub), () => `put at ${main}.${sub} not after ${m.main}.${m.sub}`);
}

export function kiPut(ki: KeyIndex, main: number, sub: number): KeyIndex {
  assertAfterModified(ki, main, sub);
  const a = toArray(ki);
  const off = lastGenOffset(a);
  if (a[off + gCount] === 0) {
    return compress(off === 0 ? [main, 1, 1, main, sub] : a.slice(0, off).concat([main, 1, 1, main, sub]));
  }
  const b = append(a, [main, sub]);
  b[off + gVersion]!++;
  b[off + gCount]!++;
  return b;
}

/** Ends the live generation at (main, sub); undefined when the key is not live (etcd's ErrRevisionNotFound). */
export function kiTombstone(ki: KeyIndex, main: number, sub: number): KeyIndex | undefined {
  const a = toArray(ki);
  if (a[lastGenOffset(a) + gCount] === 0) return undefined;
  return append(toArray(kiPut(a, main, sub)), [0, 0, 0]);
}

/** Whether the key exists now (its last generation is live). */
export function kiIsLive(ki: KeyIndex): boolean {
  if (typeof ki === 'number') return true;
  return ki[lastGenOffset(ki) + gCount]! > 0;
}

/** The revision of the key visible at atRev (main revision), as etcd's keyIndex.get. */
export function kiGet(ki: KeyIndex, atRev: number, out: IndexHit): boolean {
  if (typeof ki === 'number') {
    const main = unpackMain(ki);
    if (main > atRev) return false;
    out.main = main;
    out.sub = unpackSub(ki);
    out.created = main;
    out.version = 1;
    return true;
  }
  let found = -1;
  for (let off = 0; off < ki.length; off = genEnd(ki, off)) {
    if (ki[off + gCount]! > 0 && ki[off + gRevs]! <= atRev) found = off;
  }
  if (found < 0) return false;
  const n = ki[found + gCount]!;
  const end = genEnd(ki, found);
  if (end !== ki.length && ki[end - 2]! <= atRev) return false;
  for (let i = n - 1; i >= 0; i--) {
    const at = found + gRevs + 2 * i;
    if (ki[at]! <= atRev) {
      out.main = ki[at]!;
      out.sub = ki[at + 1]!;
      out.created = ki[found + gCreated]!;
      out.version = ki[found + gVersion]! - (n - 1 - i);
      return true;
    }
  }
  return false;
}

/** etcd's doCompact: the generation that survives a compaction at atRev and the index of its newest rev <= atRev. */
function findCompactPoint(a: number[], atRev: number): { off: number; revIndex: number } {
  let off = 0;
  for (let end = genEnd(a, off); end < a.length; end = genEnd(a, off)) {
    if (a[end - 2]! > atRev) break;
    off = end;
  }
  let revIndex = -1;
  for (let i = a[off + gCount]! - 1; i >= 0; i--) {
    if (a[off + gRevs + 2 * i]! <= atRev) {
      revIndex = i;
      break;
    }
  }
  return { off, revIndex };
}

/**
 * Drops what no read at or after atRev needs, as etcd's keyIndex.compact: whole generations that ended at or
 * before atRev, and the revisions older than the newest one at or before atRev. undefined: nothing is left.
 */
export function kiCompact(ki: KeyIndex, atRev: number): KeyIndex | undefined {
  const a = toArray(ki);
  let { off, revIndex } = findCompactPoint(a, atRev);
  let out: number[];
  const n = a[off + gCount]!;
  if (n === 0) {
    out = a.slice(off);
  } else {
    const keepFrom = revIndex === -1 ? 0 : revIndex;
    const kept = n - keepFrom;
    const end = genEnd(a, off);
    if (kept === 1 && end !== a.length) {
      off = end;
      out = a.slice(off);
    } else {
      out = [a[off + gCreated]!, a[off + gVersion]!, kept];
      for (let i = off + gRevs + 2 * keepFrom; i < a.length; i++) out.push(a[i]!);
      out = out.slice();
    }
  }
  if (out.length === gRevs && out[gCount] === 0) return undefined;
  return compress(out);
}

/** The revision etcd's keyIndex.keep(atRev) retains for this key, if any: the newest put at or before atRev. */
export function kiKeep(ki: KeyIndex, atRev: number, out: { main: number; sub: number }): boolean {
  const a = toArray(ki);
  const { off, revIndex } = findCompactPoint(a, atRev);
  const n = a[off + gCount]!;
  if (n === 0 || revIndex === -1) return false;
  if (revIndex === n - 1 && genEnd(a, off) !== a.length) return false;
  out.main = a[off + gRevs + 2 * revIndex]!;
  out.sub = a[off + gRevs + 2 * revIndex + 1]!;
  return true;
}

/** Whether (main, sub) is still recorded: after compaction, exactly the revisions the backend must keep. */
export function kiContains(ki: KeyIndex, main: number, sub: number): boolean {
  if (typeof ki === 'number') return unpackMain(ki) === main && unpackSub(ki) === sub;
  for (let off = 0; off < ki.length; off = genEnd(ki, off)) {
    const n = ki[off + gCount]!;
    for (let i = 0; i < n; i++) {
      const at = off + gRevs + 2 * i;
      if (ki[at] === main && ki[at + 1] === sub) return true;
    }
  }
  return false;
}

/**
 * The revisions with main >= rev, one per main revision (the last sub wins), as etcd's keyIndex.since;
 * appended to out as (main, sub) pairs. Watchers catching up use it.
 */
export function kiSince(ki: KeyIndex, rev: number, out: number[]): void {
  const a = toArray(ki);
  const offs: number[] = [];
  for (let off = 0; off < a.length; off = genEnd(a, off)) offs.push(off);
  let gi = offs.length - 1;
  for (; gi > 0; gi--) {
    const off = offs[gi]!;
    if (a[off + gCount] === 0) continue;
    if (rev > a[off + gCreated]!) break;
  }
  let last = 0;
  for (; gi < offs.length; gi++) {
    const off = offs[gi]!;
    for (let i = 0; i < a[off + gCount]!; i++) {
      const main = a[off + gRevs + 2 * i]!;
      const sub = a[off + gRevs + 2 * i + 1]!;
      if (main < rev) continue;
      if (main === last) {
        out[out.length - 1] = sub;
        continue;
      }
      out.push(main, sub);
      last = main;
    }
  }
}

/** A readable form for tests and debugging. */
export interface Generation {
  created: number;
  version: number;
  revs: Array<[number, number]>;
}

export function kiGenerations(ki: KeyIndex): Generation[] {
  const a = toArray(ki);
  const gens: Generation[] = [];
  for (let off = 0; off < a.length; off = genEnd(a, off)) {
    const revs: Array<[number, number]> = [];
    for (let i = 0; i < a[off + gCount]!; i++) revs.push([a[off + gRevs + 2 * i]!, a[off + gRevs + 2 * i + 1]!]);
    gens.push({ created: a[off + gCreated]!, version: a[off + gVersion]!, revs });
  }
  return gens;
}
