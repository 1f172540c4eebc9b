/**
 * The WAL record frame. Each record starts at an 8-byte aligned offset:
 *
 *   u32 crc      CRC-32C of the 8 header bytes after it and the payload
 *   u32 length   payload bytes
 *   u8  type     RecordType; then 3 zero bytes
 *   payload      `length` bytes
 *   padding      zeros up to the next multiple of 8
 *
 * A CRC per record (rather than etcd's chain) lets recovery tell a torn tail from damage in the middle: an
 * intact record after a bad one proves the bad one is not the tail. Stale records from earlier runs cannot
 * be mistaken for live ones because segments are zero-filled when created and everything after the last
 * valid record is zeroed again on open. An all-zero header is the end of the data (preallocated space).
 */
import { ByteWriter } from '../../raftnode/codec.js';
import { crc32c } from './crc32c.js';
import { WalError } from './wal-error.js';

export const RecordType = {
  SegmentHeader: 1,
  Metadata: 2,
  Entry: 3,
  HardState: 4,
  SnapshotMarker: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];
const RECORD_TYPE_MAX = RecordType.SnapshotMarker;

export const RECORD_HEADER_BYTES = 12;
export const RECORD_ALIGN_BYTES = 8;
/** As etcd's maxWALEntrySizeLimit: raft messages are capped well below, so a bigger length is damage. */
export const RECORD_PAYLOAD_BYTES_MAX = 10 * 1024 * 1024;
/** Torn writes lose whole sectors; the smallest sector size is the grain for spotting one. */
const SECTOR_BYTES = 512;
/** Zero runs shorter than this inside a damaged region may be padding or data, not a lost sector. */
const ZERO_CHUNK_BYTES_MIN = 16;

/** Reused for every CRC on the write path. */
const writeSpan = { start: 0, end: 0 };

export const alignUp = (n: number): number => Math.ceil(n / RECORD_ALIGN_BYTES) * RECORD_ALIGN_BYTES;

/** Append one framed record whose payload `writePayload` writes into the same buffer. */
export function writeRecord(w: ByteWriter, type: RecordType, writePayload: (w: ByteWriter) => void): void {
  const start = w.length;
  w.zeros(RECORD_HEADER_BYTES);
  writePayload(w);
  const payloadBytes = w.length - start - RECORD_HEADER_BYTES;
  if (payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
    throw new WalError('record-too-large', `${payloadBytes} bytes > ${RECORD_PAYLOAD_BYTES_MAX}`);
  }
  w.patchU32(start + 4, payloadBytes);
  w.patchU32(start + 8, type);
  writeSpan.start = start + 4;
  writeSpan.end = w.length;
  w.patchU32(start, crc32c(w.view(), writeSpan));
  w.zeros(alignUp(RECORD_HEADER_BYTES + payloadBytes) - RECORD_HEADER_BYTES - payloadBytes);
}

export type RecordRead =
  | {
      readonly status: 'ok';
      readonly type: RecordType;
      readonly payloadStart: number;
      readonly payloadEnd: number;
      /** Where the next record starts (past the padding). */
      readonly next: number;
    }
  | { readonly status: 'end' }
  | { readonly status: 'bad'; readonly reason: string };

const END: RecordRead = { status: 'end' };
/** Reused for every CRC on the read path. */
const span = { start: 0, end: 0 };

/** Decode the frame at `at`. Never reads outside `buf`. */
export function readRecordAt(buf: Buffer, at: number): RecordRead {
  if (at >= buf.length || isZero(buf, at, Math.min(buf.length, at + RECORD_HEADER_BYTES))) return END;
  if (buf.length - at < RECORD_HEADER_BYTES) return bad('truncated record header');
  const typeWord = buf.readUInt32LE(at + 8);
  if (typeWord < 1 || typeWord > RECORD_TYPE_MAX) return bad(`bad record type word ${typeWord}`);
  const length = buf.readUInt32LE(at + 4);
  if (length > RECORD_PAYLOAD_BYTES_MAX) return bad(`record length ${length} over the limit`);
  const payloadStart = at + RECORD_HEADER_BYTES;
  const payloadEnd = payloadStart + length;
  if (payloadEnd > buf.length) {
    return bad(`truncated record: ${length} payload bytes, ${buf.length - payloadStart} left`);
  }
  span.start = at + 4;
  span.end = payloadEnd;
  const crc = crc32c(buf, span);
  if (crc !== buf.readUInt32LE(at)) return bad('record crc mismatch');
  const next = at + alignUp(RECORD_HEADER_BYTES + length);
  // Padding is written as zeros; checking it leaves no byte of a record unchecked.
  if (!isZero(buf, payloadEnd, Math.min(next, buf.length))) return bad('non-zero record padding');
  return { status: 'ok', type: typeWord as RecordType, payloadStart, payloadEnd, next };
}

function bad(reason: string): RecordRead {
  return { status: 'bad', reason };
}

export function isZero(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

const ZERO_BLOCK = Buffer.alloc(64 * 1024);

/** The offset just past the last non-zero byte at or after `from` (`from` itself when all zero). */
export function dirtyEnd(buf: Buffer, from: number): number {
  let last = from;
  for (let start = from; start < buf.length; start += ZERO_BLOCK.length) {
    const end = Math.min(buf.length, start + ZERO_BLOCK.length);
    if (buf.compare(ZERO_BLOCK, 0, end - start, start, end) !== 0) last = end;
  }
  while (last > from && buf[last - 1] === 0) last--;
  return last;
}

/** The first aligned offset in (from, end) where an intact record starts, or null. */
export function nextIntactRecord(buf: Buffer, from: number, end: number): number | null {
  for (let at = from + RECORD_ALIGN_BYTES; at + RECORD_HEADER_BYTES <= end; at += RECORD_ALIGN_BYTES) {
    const typeWord = buf.readUInt32LE(at + 8);
    if (typeWord < 1 || typeWord > RECORD_TYPE_MAX) continue;
    if (readRecordAt(buf, at).status === 'ok') return at;
  }
  return null;
}

/**
 * Whether [start, end) holds a sector-aligned chunk of zeros: the mark of a write the disk never finished
 * (a lost sector reads back as the zeros the segment was preallocated with), as opposed to bit rot.
 */
export function hasLostSector(buf: Buffer, start: number, end: number): boolean {
  let chunkStart = start;
  while (chunkStart < end) {
    const chunkEnd = Math.min(end, (Math.floor(chunkStart / SECTOR_BYTES) + 1) * SECTOR_BYTES);
    if (chunkEnd - chunkStart >= ZERO_CHUNK_BYTES_MIN && isZero(buf, chunkStart, chunkEnd)) return true;
    chunkStart = chunkEnd;
  }
  return false;
}
