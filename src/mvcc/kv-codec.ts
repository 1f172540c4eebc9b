/**
 * The backend value of a revision: an mvccpb.KeyValue in protobuf wire format, byte for byte what etcd
 * stores (fields in number order, zero values omitted), so HashKV over our backend equals etcd's.
 *
 * Hand-written rather than the generated codec because it runs on every put and every read of the store:
 * it sizes the buffer once and writes it without a growing writer, and the restore path can read a
 * record's key and counters without copying its value.
 */
import { AssertionError, assert } from '../base/assert.js';
import type { KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';

const tagKey = 0x0a;
const tagCreate = 0x10;
const tagMod = 0x18;
const tagVersion = 0x20;
const tagValue = 0x2a;
const tagLease = 0x30;
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes of a protobuf varint for a non-negative safe integer. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes a protobuf varint at pos; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** An int64 as the unsigned varint protobuf writes: numbers when safe, two's complement bigint otherwise. */
function int64Parts(v: bigint): number | bigint {
  return v >= 0n && v <= maxSafe ? Number(v) : BigInt.asUintN(64, v);
}

function bigVarintSize(v: bigint): number {
  let size = 1;
  while (v >= 128n) {
    v >>= 7n;
    size++;
  }
  return size;
}

function writeBigVarint(buf: Buffer, pos: number, v: bigint): number {
  while (v >= 128n) {
    buf[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

function intFieldSize(v: number | bigint): number {
  return 1 + (typeof v === 'number' ? varintSize(v) : bigVarintSize(v));
}

function writeIntField(buf: Buffer, pos: number, tag: number, v: number | bigint): number {
  buf[pos++] = tag;
  return typeof v === 'number' ? writeVarint(buf, pos, v) : writeBigVarint(buf, pos, v);
}

/** The length encodeKeyValue(kv) would have, without encoding it. */
export function keyValueSize(kv: KeyValue): number {
  let size = 0;
  if (kv.key.length > 0) size += 1 + varintSize(kv.key.length) + kv.key.length;
  if (kv.createRevision !== 0n) size += intFieldSize(int64Parts(kv.createRevision));
  if (kv.modRevision !== 0n) size += intFieldSize(int64Parts(kv.modRevision));
  if (kv.version !== 0n) size += intFieldSize(int64Parts(kv.version));
  if (kv.value.length > 0) size += 1 + varintSize(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) size += intFieldSize(int64Parts(kv.lease));
  return size;
}

export function encodeKeyValue(kv: KeyValue): Buffer {
  const size = keyValueSize(kv);
  const buf = Buffer.allocUnsafe(size);
  assert(writeKeyValue(kv, buf, 0) === size, 'KeyValue encoding size mismatch');
  return buf;
}

/** Writes the encoding of kv into buf at pos (room for keyValueSize(kv) bytes); returns the end. */
export function writeKeyValue(kv: KeyValue, buf: Buffer, at: number): number {
  const create = int64Parts(kv.createRevision);
  const mod = int64Parts(kv.modRevision);
  const version = int64Parts(kv.version);
  const lease = int64Parts(kv.lease);
  let pos = at;
  if (kv.key.length > 0) {
    buf[pos++] = tagKey;
    pos = writeVarint(buf, pos, kv.key.length);
    pos += kv.key.copy(buf, pos);
  }
  if (create !== 0) pos = writeIntField(buf, pos, tagCreate, create);
  if (mod !== 0) pos = writeIntField(buf, pos, tagMod, mod);
  if (version !== 0) pos = writeIntField(buf, pos, tagVersion, version);
  if (kv.value.length > 0) {
    buf[pos++] = tagValue;
    pos = writeVarint(buf, pos, kv.value.length);
    pos += kv.value.copy(buf, pos);
  }
  if (lease !== 0) pos = writeIntField(buf, pos, tagLease, lease);
  return pos;
}

/** A cursor over one record; `pos` advances as fields are read. */
class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  /** A varint as a number when it is a safe integer (exact: every term is a small int times 2^(7i)). */
  varint(): bigint | number {
    const buf = this.buf;
    const start = this.pos;
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      assert(this.pos < buf.length, 'truncated varint in KeyValue');
      const b = buf[this.pos++]!;
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n <= Number.MAX_SAFE_INTEGER ? n : this.#bigVarint(start);
      mul *= 128;
    }
    throw new AssertionError('varint longer than 10 bytes in KeyValue');
  }

  #bigVarint(start: number): bigint {
    let big = 0n;
    let shift = 0n;
    for (let pos = start; pos < this.pos; pos++) {
      big |= BigInt(this.buf[pos]! & 0x7f) << shift;
      shift += 7n;
    }
    return BigInt.asUintN(64, big);
  }

  int64(): bigint {
    const v = this.varint();
    return typeof v === 'number' ? BigInt(v) : BigInt.asIntN(64, v);
  }

  safeInt(): number {
    const v = this.varint();
    assert(typeof v === 'number' && Number.isSafeInteger(v), 'KeyValue counter beyond 2^53');
    return v;
  }

  bytes(): Buffer {
    const len = this.safeInt();
    assert(this.pos + len <= this.buf.length, 'truncated bytes in KeyValue');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.bytes();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 5) this.pos += 4;
    else assert(false, `unsupported wire type ${wireType} in KeyValue`);
  }
}

/** Decodes a stored record; key and value are views into buf (callers pass a buffer they own). */
export function decodeKeyValue(buf: Buffer): KeyValue {
  const r = new Reader(buf);
  const kv: KeyValue = { key: emptyBuffer, createRevision: 0n, modRevision: 0n, version: 0n, value: emptyBuffer, lease: 0n };
  while (r.pos < buf.length) {
    const tag = buf[r.pos++]!;
    if (tag === tagKey) kv.key = r.bytes();
    else if (tag === tagCreate) kv.createRevision = r.int64();
    else if (tag === tagMod) kv.modRevision = r.int64();
    else if (tag === tagVersion) kv.version = r.int64();
    else if (tag === tagValue) kv.value = r.bytes();
    else if (tag === tagLease) kv.lease = r.int64();
    else r.skip(tag & 7);
  }
  return kv;
}

const emptyBuffer = Buffer.alloc(0);

/** What restore needs from a record, without copying its value: the key (latin1) and its counters. */
export interface KeyValueMeta {
  key: string;
  createRevision: number;
  version: number;
  lease: bigint;
}

export function decodeKeyValueMeta(buf: Buffer): KeyValueMeta {
  const r = new Reader(buf);
  const meta: KeyValueMeta = { key: '', createRevision: 0, version: 0, lease: 0n };
  while (r.pos < buf.length) {
    const tag = buf[r.pos++]!;
    if (tag === tagKey) meta.key = r.bytes().toString('latin1');
    else if (tag === tagCreate) meta.createRevision = r.safeInt();
    else if (tag === tagVersion) meta.version = r.safeInt();
    else if (tag === tagLease) meta.lease = r.int64();
    else r.skip(tag & 7);
  }
  return meta;
}

/** Only the key of a record, as latin1 (compaction and hashing look records up in the index). */
export function decodeKeyOf(buf: Buffer): string {
  const r = new Reader(buf);
  while (r.pos < buf.length) {
    const tag = buf[r.pos++]!;
    if (tag === tagKey) return r.bytes().toString('latin1');
    r.skip(tag & 7);
  }
  return '';
}
