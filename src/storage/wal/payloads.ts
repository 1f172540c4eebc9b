/**
 * Payloads of the WAL's own record types. Entries and hard state use the raft codec as they are.
 */
import { type ByteReader, type ByteWriter, CodecError } from '../../raftnode/codec.js';

/** The member's identity: every segment carries it, and it must agree across segments and with the caller. */
export interface WalMetadata {
  readonly memberId: bigint;
  readonly clusterId: bigint;
}

/** A snapshot marker: the WAL is read from the segment holding this snapshot's index on. */
export interface WalSnapshot {
  readonly index: number;
  readonly term: number;
}

/** "WAL1" little-endian: a segment of some other format or program is refused, not misread. */
const SEGMENT_MAGIC = 0x314c4157;
export const SEGMENT_FORMAT_VERSION = 1;

export interface SegmentHeader {
  readonly version: number;
  readonly seq: number;
  readonly startIndex: number;
}

export function writeSegmentHeader(w: ByteWriter, header: { seq: number; startIndex: number }): void {
  w.u32(SEGMENT_MAGIC);
  w.u8(SEGMENT_FORMAT_VERSION);
  w.varint(header.seq);
  w.varint(header.startIndex);
}

export function readSegmentHeader(r: ByteReader): SegmentHeader {
  const at = r.offset;
  if (r.u32() !== SEGMENT_MAGIC) throw new CodecError('not a WAL segment header', at);
  const version = r.u8();
  const seq = r.varint();
  const startIndex = r.varint();
  return { version, seq, startIndex };
}

export function writeMetadata(w: ByteWriter, md: WalMetadata): void {
  w.u64(md.memberId);
  w.u64(md.clusterId);
}

export function readMetadata(r: ByteReader): WalMetadata {
  const memberId = r.u64();
  const clusterId = r.u64();
  return { memberId, clusterId };
}

export function writeSnapshotMarker(w: ByteWriter, snap: WalSnapshot): void {
  w.varint(snap.index);
  w.varint(snap.term);
}

export function readSnapshotMarker(r: ByteReader): WalSnapshot {
  const index = r.varint();
  const term = r.varint();
  return { index, term };
}
