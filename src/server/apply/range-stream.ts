/**
 * A Range response encoded incrementally, for ranges too large to hold in memory (issue 7).
 *
 * The wire format of RangeResponse is header (field 1), kvs (field 2, repeated), more (3), count (4), in
 * that order, and each kv is exactly the record the store keeps for its revision (kv-codec.ts writes the
 * canonical encoding). So once a plan (range-plan.ts) fixes which revisions are returned, the response's
 * length is the sum of their record lengths plus the framing: a first pass peeks at every record (no
 * copy kept), then the payload is produced chunk by chunk, copying each record once into the chunk that
 * carries it. The plan's revision is pinned for the whole time, so compaction cannot delete a record
 * between the two passes (records of a revision never change otherwise).
 *
 * Small responses (under streamBytesMin) are returned as ordinary RangeResponse objects: the first pass
 * keeps copies of their records while they fit, so a small range reads each record once, as before.
 */
import { assert } from '../../base/assert.js';
import { RangeResponse, ResponseHeader } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { decodeKeyValue, keyValueSize, varintSize, writeKeyValue, writeVarint } from '../../mvcc/kv-codec.js';
import type { StreamedMessage } from '../../api/h2/streamed-message.js';
import type { RangePlan } from './range-plan.js';

/** The store as a streamed range reads it (the MVCC store's peekRecord / pinRevision). */
export interface RecordSource {
  peekRecord(main: number, sub: number): Buffer;
  pinRevision(atRev: number): () => void;
}

export interface RangeStreamOptions {
  /** Responses at least this long are streamed; shorter ones are materialised. */
  streamBytesMin: number;
  /** Payload bytes per chunk handed to HTTP/2 (a record longer than this gets a chunk of its own). */
  chunkBytes?: number;
  /** Longest synchronous stretch of the sizing pass before it yields to the event loop. */
  sliceMs?: number;
}

export const defaultStreamBytesMin = 1024 * 1024;
const defaultChunkBytes = 256 * 1024;
const defaultSliceMs = 5;
const freeChunksMax = 4;
const tagHeader = 0x0a;
const tagKv = 0x12;
const tagMore = 0x18;
const tagCount = 0x20;

const emptyBuffer = Buffer.alloc(0);

/** The KeyValue a record stands for in the response: the record itself, or without its value (keys_only). */
function kvSize(record: Buffer, keysOnly: boolean): number {
  return keysOnly ? keyValueSize({ ...decodeKeyValue(record), value: emptyBuffer }) : record.length;
}

function fieldSize(payload: number): number {
  return 1 + varintSize(payload) + payload;
}

/** The bytes after the kvs: more and count, omitted when false / zero as ts-proto does. */
function trailerOf(plan: RangePlan): Buffer {
  const out = Buffer.allocUnsafe(2 + 1 + varintSize(plan.count));
  let pos = 0;
  if (plan.more) {
    out[pos++] = tagMore;
    out[pos++] = 1;
  }
  if (plan.count !== 0) {
    out[pos++] = tagCount;
    pos = writeVarint(out, pos, plan.count);
  }
  return out.subarray(0, pos);
}

function leadOf(header: ResponseHeader): Buffer {
  const h = ResponseHeader.encode(header).finish();
  const out = Buffer.allocUnsafe(fieldSize(h.length));
  out[0] = tagHeader;
  const pos = writeVarint(out, 1, h.length);
  out.set(h, pos);
  return out;
}

function pause(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The response of a planned range: a RangeResponse when short, else a StreamedMessage that holds the
 * plan's revision pinned until it is closed. The sizing pass yields every sliceMs, so a range over
 * millions of keys does not hold the event loop for its whole length.
 */
export async function rangeResponseOf(
  source: RecordSource,
  plan: RangePlan,
  opts: RangeStreamOptions & { header: ResponseHeader },
): Promise<RangeResponse | StreamedMessage> {
  const release = source.pinRevision(plan.atRev);
  try {
    let kvBytes = 0;
    let kept: Buffer[] | undefined = [];
    const sliceMs = opts.sliceMs ?? defaultSliceMs;
    let sliceEnd = performance.now() + sliceMs;
    for (let i = 0; i < plan.revs.length; i += 2) {
      if ((i & 255) === 254 && performance.now() > sliceEnd) {
        await pause();
        sliceEnd = performance.now() + sliceMs;
      }
      const record = source.peekRecord(plan.revs[i]!, plan.revs[i + 1]!);
      kvBytes += fieldSize(kvSize(record, plan.keysOnly));
      if (kept !== undefined && kvBytes < opts.streamBytesMin) kept.push(Buffer.from(record));
      else kept = undefined;
    }
    if (kept !== undefined) {
      release();
      const kvs = kept.map((r) => (plan.keysOnly ? { ...decodeKeyValue(r), value: emptyBuffer } : decodeKeyValue(r)));
      return { header: opts.header, kvs, more: plan.more, count: BigInt(plan.count) };
    }
    // Header, more and count are a few dozen bytes: the threshold above ignores them.
    const lead = leadOf(opts.header);
    const tail = trailerOf(plan);
    const byteLength = lead.length + kvBytes + tail.length;
    return new RangeResponseStream(source, plan, { lead, tail, byteLength, release, chunkBytes: opts.chunkBytes ?? defaultChunkBytes });
  } catch (err) {
    release();
    throw err;
  }
}

interface StreamParts {
  lead: Buffer;
  tail: Buffer;
  byteLength: number;
  release: () => void;
  chunkBytes: number;
}

/** The chunks of one encoded RangeResponse: lead (header field), kvs in plan order, tail (more, count). */
export class RangeResponseStream implements StreamedMessage {
  readonly byteLength: number;
  readonly #source: RecordSource;
  readonly #plan: RangePlan;
  readonly #parts: StreamParts;
  /** Index into plan.revs of the next record; -1 before the lead went out. */
  #next = -1;
  #emitted = 0;
  #done = false;
  #closed = false;
  /** Chunks HTTP/2 gave back, reused so a long stream allocates a handful of chunks, not one per chunk. */
  #free: Buffer[] = [];

  constructor(source: RecordSource, plan: RangePlan, parts: StreamParts) {
    assert(parts.chunkBytes >= 64, 'chunkBytes must leave room for the framing');
    this.#source = source;
    this.#plan = plan;
    this.#parts = parts;
    this.byteLength = parts.byteLength;
  }

  next(): Buffer | undefined {
    assert(!this.#closed, 'next() on a closed range stream');
    if (this.#done) return undefined;
    const chunk = this.#free.pop() ?? Buffer.allocUnsafe(this.#parts.chunkBytes);
    let pos = 0;
    if (this.#next < 0) {
      pos = this.#parts.lead.copy(chunk, 0);
      this.#next = 0;
    }
    const revs = this.#plan.revs;
    let out = chunk;
    while (this.#next < revs.length) {
      const record = this.#source.peekRecord(revs[this.#next]!, revs[this.#next + 1]!);
      const size = kvSize(record, this.#plan.keysOnly);
      const need = fieldSize(size);
      if (pos + need > out.length) {
        if (pos > 0) break;
        out = Buffer.allocUnsafe(need); // one record longer than a chunk
      }
      out[pos++] = tagKv;
      pos = writeVarint(out, pos, size);
      const end = this.#plan.keysOnly ? writeKeyValue({ ...decodeKeyValue(record), value: emptyBuffer }, out, pos) : pos + record.copy(out, pos);
      assert(end - pos === size, 'range stream: record size changed while streaming');
      pos = end;
      this.#next += 2;
    }
    if (this.#next >= revs.length && pos + this.#parts.tail.length <= out.length) {
      pos += this.#parts.tail.copy(out, pos);
      this.#done = true;
    }
    this.#emitted += pos;
    assert(this.#emitted <= this.byteLength, 'range stream longer than its size');
    if (this.#done) assert(this.#emitted === this.byteLength, () => `range stream ended at ${this.#emitted} of ${this.byteLength} bytes`);
    return out.subarray(0, pos);
  }

  recycle(chunk: Buffer): void {
    const size = this.#parts.chunkBytes;
    if (this.#closed || this.#free.length >= freeChunksMax || chunk.byteOffset !== 0 || chunk.buffer.byteLength !== size) return;
    this.#free.push(Buffer.from(chunk.buffer, 0, size));
  }

  close(): void {
    if (this.#closed) return;
    this.#free = [];
    this.#closed = true;
    this.#parts.release();
  }
}
