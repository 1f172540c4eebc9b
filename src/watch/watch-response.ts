/**
 * WatchResponse bytes assembled from parts: the head (header, watch id, flags) encoded per response and
 * the events' pre-encoded field bytes (shared-event.ts). Fields come in field-number order with zero values
 * omitted, as etcd's encoder writes them, so the bytes equal the generated codec's.
 */
import { assert } from '../base/assert.js';

export interface ResponseHead {
  /** An encoded etcdserverpb.ResponseHeader (the message, without its field tag). */
  readonly header: Uint8Array;
  readonly watchId: bigint;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compactRevision?: bigint;
  readonly cancelReason?: string;
  readonly fragment?: boolean;
}

const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);

/** An int64 as protobuf writes it: a varint of its two's complement (10 bytes when negative). */
function int64Size(v: bigint): number {
  if (v >= 0n && v <= maxSafe) return uintSize(Number(v));
  let u = BigInt.asUintN(64, v);
  let n = 1;
  while (u >= 128n) {
    u >>= 7n;
    n++;
  }
  return n;
}

function uintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeUint(buf: Buffer, pos: number, n: number): number {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

function writeInt64(buf: Buffer, pos: number, v: bigint): number {
  if (v >= 0n && v <= maxSafe) return writeUint(buf, pos, Number(v));
  let u = BigInt.asUintN(64, v);
  while (u >= 128n) {
    buf[pos++] = Number(u & 0x7fn) | 0x80;
    u >>= 7n;
  }
  buf[pos++] = Number(u);
  return pos;
}

/**
 * Written by hand rather than with a protobuf writer: a put seen by 10,000 watchers encodes 10,000 heads,
 * which differ only in the watch id.
 */
function headSize(h: ResponseHead): number {
  let n = 1 + uintSize(h.header.length) + h.header.length;
  if (h.watchId !== 0n) n += 1 + int64Size(h.watchId);
  if (h.created === true) n += 2;
  if (h.canceled === true) n += 2;
  if (h.compactRevision !== undefined && h.compactRevision !== 0n) n += 1 + int64Size(h.compactRevision);
  if (h.cancelReason !== undefined && h.cancelReason !== '') {
    const len = Buffer.byteLength(h.cancelReason);
    n += 1 + uintSize(len) + len;
  }
  if (h.fragment === true) n += 2;
  return n;
}

function writeHead(buf: Buffer, h: ResponseHead): number {
  buf[0] = 0x0a;
  let pos = writeUint(buf, 1, h.header.length);
  buf.set(h.header, pos);
  pos += h.header.length;
  if (h.watchId !== 0n) {
    buf[pos++] = 0x10;
    pos = writeInt64(buf, pos, h.watchId);
  }
  if (h.created === true) pos = writeUint(buf, writeUint(buf, pos, 0x18), 1);
  if (h.canceled === true) pos = writeUint(buf, writeUint(buf, pos, 0x20), 1);
  if (h.compactRevision !== undefined && h.compactRevision !== 0n) {
    buf[pos++] = 0x28;
    pos = writeInt64(buf, pos, h.compactRevision);
  }
  if (h.cancelReason !== undefined && h.cancelReason !== '') {
    buf[pos++] = 0x32;
    pos = writeUint(buf, pos, Buffer.byteLength(h.cancelReason));
    pos += buf.write(h.cancelReason, pos, 'utf8');
  }
  if (h.fragment === true) pos = writeUint(buf, writeUint(buf, pos, 0x38), 1);
  return pos;
}

export function encodeHead(h: ResponseHead): Buffer {
  return encodeResponse(h, []);
}

/** Field 1 (the header) of a response, framed: shared by every response at one revision. */
export function encodeHeaderField(header: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(1 + uintSize(header.length) + header.length);
  writeHead(out, { header, watchId: 0n });
  return out;
}

/** Field 2 (the watch id) framed; empty for id 0, which protobuf omits. */
export function encodeWatchIdField(watchId: bigint): Buffer {
  if (watchId === 0n) return Buffer.alloc(0);
  const out = Buffer.allocUnsafe(1 + int64Size(watchId));
  out[0] = 0x10;
  writeInt64(out, 1, watchId);
  return out;
}

/**
 * An event response from pre-framed parts (header field, watch id field, event fields): the hot path of
 * a fan-out, one allocation and copies.
 */
export function joinFields(parts: readonly Buffer[]): Buffer {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const p of parts) pos += p.copy(out, pos);
  return out;
}

/** The response bytes: the head, then the events' field bytes, in one allocation. */
export function encodeResponse(head: ResponseHead, events: readonly Buffer[] = []): Buffer {
  let size = headSize(head);
  for (const e of events) size += e.length;
  const out = Buffer.allocUnsafe(size);
  let pos = writeHead(out, head);
  for (const e of events) pos += e.copy(out, pos);
  assert(pos === size, () => `watch response sized ${size}, written ${pos}`);
  return out;
}

function sizeOf(events: readonly Buffer[], from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += events[i]!.length;
  return n;
}

/**
 * etcd's sendFragments: a response of at least maxBytes with two or more events is cut into responses
 * marked fragment (all but the last), each filled greedily while under maxBytes, each with at least one
 * event. The client joins them back into one; the events of a revision stay one logical response.
 */
export function fragmentResponse(head: ResponseHead, events: readonly Buffer[], { maxBytes }: { maxBytes: number }): Buffer[] {
  if (headSize(head) + sizeOf(events, 0, events.length) < maxBytes || events.length < 2) return [encodeResponse(head, events)];
  const fragSize = headSize({ ...head, fragment: true });
  const out: Buffer[] = [];
  let idx = 0;
  while (idx < events.length) {
    const start = idx;
    let size = fragSize;
    for (; idx < events.length; idx++) {
      const next = size + events[idx]!.length;
      if (idx > start && next >= maxBytes) break;
      size = next;
    }
    out.push(encodeResponse({ ...head, fragment: idx < events.length }, events.slice(start, idx)));
  }
  return out;
}

/**
 * gRPC's length prefix (a compressed flag, then the length as a big-endian uint32): a stream hands its
 * responses to the transport already framed, many in one buffer (see WatchStream).
 */
export const framePrefixBytes = 5;

function writeFramePrefix(out: Buffer, at: number, length: number): void {
  out[at] = 0;
  out.writeUInt32BE(length, at + 1);
}

/** One response framed on its own. */
export function frameResponse(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(framePrefixBytes + message.length);
  writeFramePrefix(out, 0, message.length);
  out.set(message, framePrefixBytes);
  return out;
}

/** An event response framed from its pre-encoded fields (header, watch id, events): one allocation. */
export function frameFields(header: Buffer, id: Buffer, events: Buffer | readonly Buffer[]): Buffer {
  const out = Buffer.allocUnsafe(framePrefixBytes + header.length + id.length + bodySize(events));
  const end = writeFramed(out, 0, header, id, events);
  assert(end === out.length, 'framed response mis-sized');
  return out;
}

export function bodySize(events: Buffer | readonly Buffer[]): number {
  if (Buffer.isBuffer(events)) return events.length;
  let n = 0;
  for (const e of events) n += e.length;
  return n;
}

/** Writes prefix, header, id and events at `at`; returns the end. The caller sized `out`. */
export function writeFramed(out: Buffer, at: number, header: Buffer, id: Buffer, events: Buffer | readonly Buffer[]): number {
  let pos = copySmall(out, at + framePrefixBytes, header);
  pos = copySmall(out, pos, id);
  if (Buffer.isBuffer(events)) {
    out.set(events, pos);
    pos += events.length;
  } else {
    for (const e of events) {
      out.set(e, pos);
      pos += e.length;
    }
  }
  writeFramePrefix(out, at, pos - at - framePrefixBytes);
  return pos;
}

/** A fan-out writes a header field and a watch id per watcher: a loop beats a native copy at these sizes. */
function copySmall(out: Buffer, pos: number, src: Buffer): number {
  const n = src.length;
  if (n > 64) {
    out.set(src, pos);
    return pos + n;
  }
  for (let i = 0; i < n; i++) out[pos + i] = src[i]!;
  return pos + n;
}

/** The responses in framed bytes (for sinks that want them one by one, and for tests). */
export function splitFramed(framed: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < framed.length) {
    assert(at + framePrefixBytes <= framed.length, 'truncated frame prefix');
    const len = framed.readUInt32BE(at + 1);
    out.push(framed.subarray(at + framePrefixBytes, at + framePrefixBytes + len));
    at += framePrefixBytes + len;
  }
  assert(at === framed.length, 'truncated framed response');
  return out;
}
