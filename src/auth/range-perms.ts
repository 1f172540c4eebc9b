/**
 * A user's key permissions merged into sorted, disjoint byte intervals, one set for reading and one for
 * writing (etcd's unified range permission cache). A request is allowed when ONE merged interval covers
 * all of it, so permissions that touch or overlap combine ([a, b) and [b, c) allow [a, c)), and no
 * range_end trick can reach a key outside what was granted.
 *
 * Interval ends: `null` is +infinity (a from-key permission, range_end "\0"); a single-key permission
 * `k` is [k, k + "\0").
 */
import { Permission_Type, type Permission } from '../gen/etcd/auth/authpb/auth.js';

export interface ByteInterval {
  readonly begin: Buffer;
  /** Exclusive; null is +infinity. */
  readonly end: Buffer | null;
}

/** etcd's convention for a permission or request's range_end: empty is one key, "\0" is "to the end". */
export function toInterval(key: Buffer, rangeEnd: Buffer): ByteInterval {
  if (rangeEnd.length === 0) return { begin: key, end: Buffer.concat([key, Buffer.from([0])]) };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { begin: key, end: null };
  return { begin: key, end: rangeEnd };
}

function endCompare(a: Buffer | null, b: Buffer | null): number {
  if (a === null) return b === null ? 0 : 1;
  if (b === null) return -1;
  return Buffer.compare(a, b);
}

/** Sorted, merged intervals; contains() is a binary search. */
export class IntervalSet {
  readonly #ivs: ByteInterval[];

  constructor(intervals: readonly ByteInterval[]) {
    // Empty or reversed intervals grant nothing (etcd's interval tree never matches them).
    const sorted = intervals.filter((iv) => iv.end === null || Buffer.compare(iv.begin, iv.end) < 0)
      .sort((a, b) => Buffer.compare(a.begin, b.begin));
    const merged: ByteInterval[] = [];
    for (const iv of sorted) {
      const last = merged[merged.length - 1];
      if (last && (last.end === null || Buffer.compare(iv.begin, last.end) <= 0)) {
        if (endCompare(iv.end, last.end) > 0) merged[merged.length - 1] = { begin: last.begin, end: iv.end };
      } else {
        merged.push(iv);
      }
    }
    this.#ivs = merged;
  }

  get size(): number {
    return this.#ivs.length;
  }

  /** The merged interval holding `key`, if any. */
  #holding(key: Buffer): ByteInterval | undefined {
    let lo = 0;
    let hi = this.#ivs.length - 1;
    let found: ByteInterval | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const iv = this.#ivs[mid]!;
      if (Buffer.compare(iv.begin, key) <= 0) {
        found = iv;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found && (found.end === null || Buffer.compare(key, found.end) < 0)) return found;
    return undefined;
  }

  containsKey(key: Buffer): boolean {
    return this.#holding(key) !== undefined;
  }

  /** Whether one merged interval covers [begin, end) entirely. */
  containsRange(iv: ByteInterval): boolean {
    const holder = this.#holding(iv.begin);
    if (!holder) return false;
    return endCompare(iv.end, holder.end) <= 0 || (iv.end !== null && Buffer.compare(iv.end, iv.begin) <= 0);
  }
}

export interface UnifiedPerms {
  readonly read: IntervalSet;
  readonly write: IntervalSet;
}

export function mergePerms(perms: readonly Permission[]): UnifiedPerms {
  const read: ByteInterval[] = [];
  const write: ByteInterval[] = [];
  for (const p of perms) {
    const iv = toInterval(p.key, p.rangeEnd);
    if (p.permType === Permission_Type.READ || p.permType === Permission_Type.READWRITE) read.push(iv);
    if (p.permType === Permission_Type.WRITE || p.permType === Permission_Type.READWRITE) write.push(iv);
  }
  return { read: new IntervalSet(read), write: new IntervalSet(write) };
}

export type PermKind = 'read' | 'write';

/** A key, or a range with etcd's range_end conventions (requests and compares have this shape). */
export interface KeyRange {
  readonly key: Buffer;
  readonly rangeEnd: Buffer;
}

/** A request on a key or range against a user's merged permissions. */
export function permits(perms: UnifiedPerms, op: KeyRange & { readonly kind: PermKind }): boolean {
  const set = op.kind === 'read' ? perms.read : perms.write;
  if (op.rangeEnd.length === 0) return set.containsKey(op.key);
  return set.containsRange(toInterval(op.key, op.rangeEnd));
}
