/**
 * A compact binary codec for raft's data: log entries, hard state, configuration, snapshots, messages and
 * conf changes. Used by the WAL (entries, hard state), the snapshotter (snapshots) and the peer transport
 * (messages), so every byte read from disk or the network passes through one checked decoder.
 *
 * Layout: little-endian; node ids as fixed 8-byte unsigned (they are random 64-bit numbers, a varint would
 * be longer); indexes, terms, counts and lengths as unsigned LEB128 varints (small in practice), decoded
 * only when they are safe integers. Malformed input throws CodecError, never a RangeError or a partial value.
 * No version byte here: the containers (WAL segment header, snap file header, transport handshake) carry it.
 */
import { assert } from '../base/assert.js';
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  type ConfChangeSingle,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type Snapshot,
  type SnapshotMetadata,
} from '../raft/types.js';

/** Input that is not a valid encoding: truncated, out of range, or with trailing bytes. */
export class CodecError extends Error {
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`raft codec: ${message} at offset ${offset}`);
    this.name = 'CodecError';
    this.offset = offset;
  }
}

const U64_MAX = (1n << 64n) - 1n;
/** A safe integer needs at most 8 varint bytes (8 * 7 = 56 bits). */
const VARINT_BYTES_MAX = 8;
const ENTRY_TYPE_MAX = EntryType.ConfChangeV2;
const MESSAGE_TYPE_MAX = MessageType.PreVoteResp;
const CONF_CHANGE_TYPE_MAX = ConfChangeType.AddLearnerNode;
const TRANSITION_MAX = ConfChangeTransition.JointExplicit;
/** The fewest bytes an encoded entry takes (type, term, index, data length): bounds decoded counts. */
const ENTRY_BYTES_MIN = 4;
const MESSAGE_FLAG_REJECT = 1;
const MESSAGE_FLAG_SNAPSHOT = 2;

/** A growable output buffer. Reuse one across encodings (reset()) to avoid allocating per value. */
export class ByteWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;

  constructor(initialBytes = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialBytes));
    this.#view = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#pos;
  }

  get capacity(): number {
    return this.#buf.length;
  }

  reset(): void {
    this.#pos = 0;
  }

  /** The bytes written so far, without copying: valid until the next write or reset. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** A copy of the bytes written so far. */
  copy(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }

  reserve(bytes: number): void {
    const need = this.#pos + bytes;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.#buf[this.#pos++] = value;
  }

  u32(value: number): void {
    this.reserve(4);
    this.#view.setUint32(this.#pos, value, true);
    this.#pos += 4;
  }

  u64(value: bigint): void {
    assert(value >= 0n && value <= U64_MAX, () => `not a u64: ${value}`);
    this.reserve(8);
    this.#view.setBigUint64(this.#pos, value, true);
    this.#pos += 8;
  }

  varint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `not a safe unsigned integer: ${value}`);
    this.reserve(VARINT_BYTES_MAX);
    const buf = this.#buf;
    let v = value;
    while (v >= 0x80000000) {
      // Above 31 bits the bitwise operators would truncate: peel 7 bits off with arithmetic.
      buf[this.#pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    while (v >= 0x80) {
      buf[this.#pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[this.#pos++] = v;
  }

  raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** Overwrite 4 bytes already written (a header filled in once its payload is known). */
  patchU32(at: number, value: number): void {
    assert(at >= 0 && at + 4 <= this.#pos, () => `patch outside written bytes: ${at}`);
    this.#view.setUint32(at, value, true);
  }

  /** Append `count` zero bytes. */
  zeros(count: number): void {
    this.reserve(count);
    this.#buf.fill(0, this.#pos, this.#pos + count);
    this.#pos += count;
  }
}

/**
 * Small copied byte fields are carved out of shared slabs, as Buffer's pool does: a fresh ArrayBuffer per
 * field costs ~4 us here, a slab slice ~0.2 us. The price: a retained field keeps its slab alive.
 */
const SLAB_BYTES = 32 * 1024;
const SLAB_FIELD_BYTES_MAX = 2 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;

function copyOut(field: Uint8Array): Uint8Array {
  const n = field.length;
  if (n > SLAB_FIELD_BYTES_MAX) {
    // Not field.slice(): on a Buffer that would alias the input.
    const out = new Uint8Array(n);
    out.set(field);
    return out;
  }
  if (slabUsed + n > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + n);
  slabUsed += (n + 7) & ~7;
  out.set(field);
  return out;
}

export interface ByteReaderOptions {
  readonly start?: number;
  readonly end?: number;
  /** Decoded byte fields share memory with the input instead of being copied (faster; keeps it alive). */
  readonly alias?: boolean;
}

/** A bounds-checked cursor over input bytes; every overrun is a CodecError. */
export class ByteReader {
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #end: number;
  readonly #alias: boolean;
  #pos: number;

  constructor(buf: Uint8Array, options: ByteReaderOptions = {}) {
    const start = options.start ?? 0;
    const end = options.end ?? buf.length;
    assert(start >= 0 && start <= end && end <= buf.length, () => `bad reader bounds [${start}, ${end})`);
    // A plain Uint8Array view even over a Buffer: its subarray() is the engine's, not Buffer's slower one.
    this.#buf = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.#pos = start;
    this.#end = end;
    this.#alias = options.alias ?? false;
  }

  get offset(): number {
    return this.#pos;
  }

  /** Point the reader at [start, end) of the same input: one reader serves many records. */
  reset(start: number, end: number): void {
    assert(start >= 0 && start <= end && end <= this.#buf.length, () => `bad reader bounds [${start}, ${end})`);
    this.#pos = start;
    this.#end = end;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(bytes: number, what: string): void {
    if (this.#end - this.#pos < bytes) throw new CodecError(`truncated ${what}`, this.#pos);
  }

  u8(): number {
    this.#need(1, 'byte');
    return this.#buf[this.#pos++] as number;
  }

  u32(): number {
    this.#need(4, 'u32');
    const value = this.#view.getUint32(this.#pos, true);
    this.#pos += 4;
    return value;
  }

  u64(): bigint {
    this.#need(8, 'u64');
    const value = this.#view.getBigUint64(this.#pos, true);
    this.#pos += 8;
    return value;
  }

  varint(): number {
    const start = this.#pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_BYTES_MAX; i++) {
      if (this.#pos >= this.#end) throw new CodecError('truncated varint', start);
      const byte = this.#buf[this.#pos++] as number;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(result)) throw new CodecError('varint above 2^53', start);
        return result;
      }
      scale *= 128;
    }
    throw new CodecError('varint too long', start);
  }

  bool(): boolean {
    const at = this.#pos;
    const byte = this.u8();
    if (byte > 1) throw new CodecError(`bad boolean ${byte}`, at);
    return byte === 1;
  }

  /** A count of items each at least `itemBytesMin` long: bounded by what is left, so no huge allocation. */
  count(itemBytesMin: number): number {
    const at = this.#pos;
    const n = this.varint();
    if (n * itemBytesMin > this.remaining) throw new CodecError(`count ${n} exceeds the input`, at);
    return n;
  }

  raw(length: number): Uint8Array {
    this.#need(length, 'bytes');
    const start = this.#pos;
    this.#pos += length;
    const field = this.#buf.subarray(start, this.#pos);
    return this.#alias ? field : copyOut(field);
  }

  /** Length-prefixed bytes. */
  bytes(): Uint8Array {
    const at = this.#pos;
    const length = this.varint();
    if (length > this.remaining) throw new CodecError(`length ${length} exceeds the input`, at);
    return this.raw(length);
  }

  /** An enum value in [0, max]. */
  enumValue(max: number, what: string): number {
    const at = this.#pos;
    const value = this.u8();
    if (value > max) throw new CodecError(`bad ${what} ${value}`, at);
    return value;
  }

  expectEnd(): void {
    if (this.#pos !== this.#end) throw new CodecError(`${this.#end - this.#pos} trailing bytes`, this.#pos);
  }
}

// ---- Entry ----

export function writeEntry(w: ByteWriter, entry: Entry): void {
  w.u8(entry.type);
  w.varint(entry.term);
  w.varint(entry.index);
  w.bytes(entry.data);
}

export function readEntry(r: ByteReader): Entry {
  const type = r.enumValue(ENTRY_TYPE_MAX, 'entry type') as EntryType;
  const term = r.varint();
  const index = r.varint();
  const data = r.bytes();
  return { term, index, type, data };
}

// ---- HardState ----

export function writeHardState(w: ByteWriter, hs: HardState): void {
  w.varint(hs.term);
  w.u64(hs.vote);
  w.varint(hs.commit);
}

export function readHardState(r: ByteReader): HardState {
  const term = r.varint();
  const vote = r.u64();
  const commit = r.varint();
  return { term, vote, commit };
}

// ---- ConfState ----

function writeIds(w: ByteWriter, ids: readonly NodeId[]): void {
  w.varint(ids.length);
  for (const id of ids) w.u64(id);
}

function readIds(r: ByteReader): NodeId[] {
  const n = r.count(8);
  const ids: NodeId[] = new Array<NodeId>(n);
  for (let i = 0; i < n; i++) ids[i] = r.u64();
  return ids;
}

export function writeConfState(w: ByteWriter, cs: ConfState): void {
  writeIds(w, cs.voters);
  writeIds(w, cs.learners);
  writeIds(w, cs.votersOutgoing);
  writeIds(w, cs.learnersNext);
  w.u8(cs.autoLeave ? 1 : 0);
}

export function readConfState(r: ByteReader): ConfState {
  const voters = readIds(r);
  const learners = readIds(r);
  const votersOutgoing = readIds(r);
  const learnersNext = readIds(r);
  const autoLeave = r.bool();
  return { voters, learners, votersOutgoing, learnersNext, autoLeave };
}

// ---- Snapshot ----

export function writeSnapshotMetadata(w: ByteWriter, md: SnapshotMetadata): void {
  writeConfState(w, md.confState);
  w.varint(md.index);
  w.varint(md.term);
}

export function readSnapshotMetadata(r: ByteReader): SnapshotMetadata {
  const confState = readConfState(r);
  const index = r.varint();
  const term = r.varint();
  return { confState, index, term };
}

export function writeSnapshot(w: ByteWriter, snap: Snapshot): void {
  writeSnapshotMetadata(w, snap.metadata);
  w.bytes(snap.data);
}

export function readSnapshot(r: ByteReader): Snapshot {
  const metadata = readSnapshotMetadata(r);
  const data = r.bytes();
  return { data, metadata };
}

// ---- ConfChangeV2 ----

export function writeConfChangeV2(w: ByteWriter, cc: ConfChangeV2): void {
  w.u8(cc.transition);
  w.varint(cc.changes.length);
  for (const change of cc.changes) {
    w.u8(change.type);
    w.u64(change.nodeId);
  }
  w.bytes(cc.context);
}

export function readConfChangeV2(r: ByteReader): ConfChangeV2 {
  const transition = r.enumValue(TRANSITION_MAX, 'conf change transition') as ConfChangeTransition;
  const n = r.count(9);
  const changes: ConfChangeSingle[] = new Array<ConfChangeSingle>(n);
  for (let i = 0; i < n; i++) {
    const type = r.enumValue(CONF_CHANGE_TYPE_MAX, 'conf change type') as ConfChangeType;
    changes[i] = { type, nodeId: r.u64() };
  }
  const context = r.bytes();
  return { transition, changes, context };
}

// ---- Message ----

export function writeMessage(w: ByteWriter, m: Message): void {
  w.u8(m.type);
  w.u64(m.to);
  w.u64(m.from);
  w.varint(m.term);
  w.varint(m.logTerm);
  w.varint(m.index);
  w.varint(m.commit);
  w.varint(m.rejectHint);
  w.u8((m.reject ? MESSAGE_FLAG_REJECT : 0) | (m.snapshot !== null ? MESSAGE_FLAG_SNAPSHOT : 0));
  w.varint(m.entries.length);
  for (const entry of m.entries) writeEntry(w, entry);
  if (m.snapshot !== null) writeSnapshot(w, m.snapshot);
  w.bytes(m.context);
}

export function readMessage(r: ByteReader): Message {
  const type = r.enumValue(MESSAGE_TYPE_MAX, 'message type') as MessageType;
  const to = r.u64();
  const from = r.u64();
  const term = r.varint();
  const logTerm = r.varint();
  const index = r.varint();
  const commit = r.varint();
  const rejectHint = r.varint();
  const flagsAt = r.offset;
  const flags = r.u8();
  if ((flags & ~(MESSAGE_FLAG_REJECT | MESSAGE_FLAG_SNAPSHOT)) !== 0) {
    throw new CodecError(`bad message flags ${flags}`, flagsAt);
  }
  const n = r.count(ENTRY_BYTES_MIN);
  const entries: Entry[] = new Array<Entry>(n);
  for (let i = 0; i < n; i++) entries[i] = readEntry(r);
  const snapshot = (flags & MESSAGE_FLAG_SNAPSHOT) !== 0 ? readSnapshot(r) : null;
  const context = r.bytes();
  const reject = (flags & MESSAGE_FLAG_REJECT) !== 0;
  return { type, to, from, term, logTerm, index, entries, commit, snapshot, reject, rejectHint, context };
}

// ---- Whole-buffer helpers: encode to a fresh copy; decode exactly one value, no trailing bytes ----

/** One scratch buffer for the whole-value encoders (synchronous, never nested); dropped if it grew big. */
const SCRATCH_BYTES = 64 * 1024;
const SCRATCH_BYTES_KEPT_MAX = 1024 * 1024;
let scratch = new ByteWriter(SCRATCH_BYTES);

function encodeWith<T>(write: (w: ByteWriter, value: T) => void, value: T): Uint8Array {
  scratch.reset();
  write(scratch, value);
  const out = copyOut(scratch.view());
  if (scratch.capacity > SCRATCH_BYTES_KEPT_MAX) scratch = new ByteWriter(SCRATCH_BYTES);
  return out;
}

function decodeWith<T>(read: (r: ByteReader) => T, bytes: Uint8Array, options: DecodeOptions): T {
  const r = new ByteReader(bytes, options.alias === undefined ? {} : { alias: options.alias });
  const value = read(r);
  r.expectEnd();
  return value;
}

export interface DecodeOptions {
  /** Share memory with the input for byte fields (see ByteReaderOptions.alias). Default: copy. */
  readonly alias?: boolean;
}

export const encodeEntry = (e: Entry): Uint8Array => encodeWith(writeEntry, e);
export const decodeEntry = (b: Uint8Array, o: DecodeOptions = {}): Entry => decodeWith(readEntry, b, o);
export const encodeHardState = (hs: HardState): Uint8Array => encodeWith(writeHardState, hs);
export const decodeHardState = (b: Uint8Array, o: DecodeOptions = {}): HardState =>
  decodeWith(readHardState, b, o);
export const encodeConfState = (cs: ConfState): Uint8Array => encodeWith(writeConfState, cs);
export const decodeConfState = (b: Uint8Array, o: DecodeOptions = {}): ConfState =>
  decodeWith(readConfState, b, o);
export const encodeSnapshotMetadata = (md: SnapshotMetadata): Uint8Array =>
  encodeWith(writeSnapshotMetadata, md);
export const decodeSnapshotMetadata = (b: Uint8Array, o: DecodeOptions = {}): SnapshotMetadata =>
  decodeWith(readSnapshotMetadata, b, o);
export const encodeSnapshot = (s: Snapshot): Uint8Array => encodeWith(writeSnapshot, s);
export const decodeSnapshot = (b: Uint8Array, o: DecodeOptions = {}): Snapshot => decodeWith(readSnapshot, b, o);
export const encodeConfChangeV2 = (cc: ConfChangeV2): Uint8Array =>
  encodeWith(writeConfChangeV2, cc);
export const decodeConfChangeV2 = (b: Uint8Array, o: DecodeOptions = {}): ConfChangeV2 =>
  decodeWith(readConfChangeV2, b, o);
export const encodeMessage = (m: Message): Uint8Array => encodeWith(writeMessage, m);
export const decodeMessage = (b: Uint8Array, o: DecodeOptions = {}): Message => decodeWith(readMessage, b, o);
