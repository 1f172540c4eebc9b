/**
 * Revisions and their backend key encoding.
 *
 * A revision is (main, sub): main is the store revision of one write txn, sub orders the changes inside it.
 * Backend keys are etcd's 17 bytes: main as 8 bytes big-endian, '_', sub as 8 bytes big-endian; a tombstone
 * appends 't'. Big-endian unsigned encoding makes byte order equal revision order, so a key-ordered scan of
 * the backend walks history in revision order (restore and compaction rely on that).
 *
 * Revisions are JS numbers inside the process; every value crossing a boundary is checked to be a safe
 * non-negative integer, so the 8-byte encoding never loses precision.
 */
import { assert } from '../base/assert.js';

export const revBytesLen = 17;
export const markedRevBytesLen = 18;
const separator = 0x5f; // '_'
const tombstoneMark = 0x74; // 't'
const twoTo32 = 0x1_0000_0000;

export interface Revision {
  readonly main: number;
  readonly sub: number;
}

export function checkRevisionNumber(n: number, what: string): void {
  assert(Number.isSafeInteger(n) && n >= 0, () => `${what} must be a safe non-negative integer, got ${n}`);
}

/** -1, 0 or 1 as (aMain, aSub) is less than, equal to or greater than (bMain, bSub). */
export function compareRevision(aMain: number, aSub: number, bMain: number, bSub: number): number {
  if (aMain !== bMain) return aMain < bMain ? -1 : 1;
  if (aSub !== bSub) return aSub < bSub ? -1 : 1;
  return 0;
}

function writeUint64(buf: Buffer, offset: number, n: number): void {
  buf.writeUInt32BE(Math.floor(n / twoTo32), offset);
  buf.writeUInt32BE(n % twoTo32, offset + 4);
}

function readUint64(buf: Buffer, offset: number): number {
  const hi = buf.readUInt32BE(offset);
  assert(hi < 0x20_0000, 'revision above 2^53 in backend key');
  return hi * twoTo32 + buf.readUInt32BE(offset + 4);
}

/** The backend key of a revision; `tombstone` appends etcd's 't' marker. */
export function revisionKey(main: number, sub: number, tombstone = false): Buffer {
  checkRevisionNumber(main, 'revision main');
  checkRevisionNumber(sub, 'revision sub');
  const buf = Buffer.allocUnsafe(tombstone ? markedRevBytesLen : revBytesLen);
  writeUint64(buf, 0, main);
  buf[8] = separator;
  writeUint64(buf, 9, sub);
  if (tombstone) buf[revBytesLen] = tombstoneMark;
  return buf;
}

export function isRevisionKey(key: Uint8Array): boolean {
  if (key.length !== revBytesLen && key.length !== markedRevBytesLen) return false;
  if (key[8] !== separator) return false;
  return key.length === revBytesLen || key[revBytesLen] === tombstoneMark;
}

export function isTombstoneKey(key: Uint8Array): boolean {
  return key.length === markedRevBytesLen && key[revBytesLen] === tombstoneMark;
}

export function revisionOfKey(key: Buffer): Revision {
  assert(isRevisionKey(key), () => `not a revision key: ${key.toString('hex')}`);
  return { main: readUint64(key, 0), sub: readUint64(key, 9) };
}

/** The main revision of a backend key, without allocating a Revision. */
export function mainOfKey(key: Buffer): number {
  assert(isRevisionKey(key), () => `not a revision key: ${key.toString('hex')}`);
  return readUint64(key, 0);
}

export function subOfKey(key: Buffer): number {
  return readUint64(key, 9);
}
