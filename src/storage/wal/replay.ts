/**
 * Reading segments back: walking the records of one segment (and deciding what a bad record means), and
 * folding the records of consecutive segments into the state the WAL was left in.
 */
import { ByteReader, CodecError, readEntry, readHardState } from '../../raftnode/codec.js';
import type { Entry, HardState } from '../../raft/types.js';
import {
  type WalMetadata,
  type WalSnapshot,
  SEGMENT_FORMAT_VERSION,
  readMetadata,
  readSegmentHeader,
  readSnapshotMarker,
} from './payloads.js';
import { RecordType, dirtyEnd, hasLostSector, nextIntactRecord, readRecordAt } from './record.js';
import type { SegmentName } from './segment.js';
import { WalError } from './wal-error.js';

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: 0n, commit: 0 });

export interface TornTail {
  readonly offset: number;
  /** Bytes after `offset` that are not zero and will be cleared. */
  readonly bytes: number;
  readonly reason: string;
}

export interface SegmentScan {
  /** Where the valid records end: the next record goes here. */
  readonly validEnd: number;
  readonly torn: TornTail | null;
}

export type RecordVisitor = (type: RecordType, payload: ByteReader, offset: number) => void;

/**
 * Visit every record of a segment. A bad record in the last segment is a torn tail when no intact record
 * follows it, or when the damage shows a lost sector; anything else bad is corruption, reported with file
 * and offset. A segment that is not the last was synced and truncated when it was cut: it must be whole.
 */
export function scanSegment(buf: Buffer, file: string, isLast: boolean, visit: RecordVisitor): SegmentScan {
  let at = 0;
  const payload = new ByteReader(buf);
  for (;;) {
    const rec = readRecordAt(buf, at);
    if (rec.status === 'ok') {
      payload.reset(rec.payloadStart, rec.payloadEnd);
      try {
        visit(rec.type, payload, at);
      } catch (err) {
        throw asCorrupt(err, file, at);
      }
      at = rec.next;
      continue;
    }
    if (at >= buf.length) return { validEnd: at, torn: null };
    const reason = rec.status === 'end' ? 'zeros where a record should start' : rec.reason;
    if (!isLast) throw new WalError('corrupt', reason, { file, offset: at });
    const dirty = dirtyEnd(buf, at);
    if (dirty <= at) return { validEnd: at, torn: null };
    if (rec.status === 'bad') {
      const intact = nextIntactRecord(buf, at, dirty);
      if (intact !== null && !hasLostSector(buf, at, intact)) {
        throw new WalError('corrupt', `${reason}; an intact record follows at offset ${intact}`, { file, offset: at });
      }
    }
    return { validEnd: at, torn: { offset: at, bytes: dirty - at, reason } };
  }
}

function asCorrupt(err: unknown, file: string, offset: number): unknown {
  // The CRC matched, so the bytes are what was written: a payload that does not decode is a format bug or
  // a foreign file, never a torn write.
  if (!(err instanceof CodecError)) return err;
  return new WalError('corrupt', `bad record payload: ${err.message}`, { file, offset });
}

export interface ReplayOptions {
  /** Entries at or below this snapshot's index are skipped; its marker must be found. */
  readonly snapshot: WalSnapshot;
  readonly collectEntries: boolean;
  readonly expectedMetadata: WalMetadata | null;
}

/** The state folded from the records of consecutive segments, in order. */
export class Replay {
  metadata: WalMetadata | null = null;
  hardState: HardState = EMPTY_HARD_STATE;
  readonly entries: Entry[] = [];
  /** Every snapshot marker seen, in order. */
  readonly markers: WalSnapshot[] = [];
  /** What the next segment is named after: the last entry index written, raised by snapshot markers. */
  lastIndex = 0;
  snapshotFound = false;
  readonly #options: ReplayOptions;
  #segment: SegmentName | null = null;
  #file = '';
  #recordNo = 0;

  constructor(options: ReplayOptions) {
    this.#options = options;
  }

  beginSegment(segment: SegmentName, file: string): void {
    this.#segment = segment;
    this.#file = file;
    this.#recordNo = 0;
    this.lastIndex = Math.max(this.lastIndex, segment.startIndex - 1);
  }

  endSegment(): void {
    if (this.#recordNo < 2) this.#fail('corrupt', 'segment lacks its header and metadata records', 0);
  }

  readonly visit: RecordVisitor = (type, r, offset) => {
    const recordNo = this.#recordNo++;
    const expected = recordNo === 0 ? RecordType.SegmentHeader : recordNo === 1 ? RecordType.Metadata : null;
    if (expected !== null ? type !== expected : type === RecordType.SegmentHeader || type === RecordType.Metadata) {
      this.#fail('corrupt', `unexpected record type ${type} as record ${recordNo}`, offset);
    }
    switch (type) {
      case RecordType.SegmentHeader:
        return this.#header(r, offset);
      case RecordType.Metadata:
        return this.#metadata(r, offset);
      case RecordType.Entry:
        return this.#entry(readEntryChecked(r), offset);
      case RecordType.HardState:
        this.hardState = readHardState(r);
        return r.expectEnd();
      case RecordType.SnapshotMarker: {
        const marker = readSnapshotMarker(r);
        r.expectEnd();
        return this.#marker(marker, offset);
      }
    }
  };

  #header(r: ByteReader, offset: number): void {
    const header = readSegmentHeader(r);
    r.expectEnd();
    const seg = this.#segment;
    if (header.version !== SEGMENT_FORMAT_VERSION) {
      this.#fail('corrupt', `segment format version ${header.version}, expected ${SEGMENT_FORMAT_VERSION}`, offset);
    }
    if (seg === null || header.seq !== seg.seq || header.startIndex !== seg.startIndex) {
      this.#fail('corrupt', `segment header says ${header.seq}-${header.startIndex}: not this file`, offset);
    }
  }

  #metadata(r: ByteReader, offset: number): void {
    const md = readMetadata(r);
    r.expectEnd();
    const known = this.metadata ?? this.#options.expectedMetadata;
    if (known !== null && (known.memberId !== md.memberId || known.clusterId !== md.clusterId)) {
      this.#fail('metadata-mismatch', `member ${hex(md.memberId)} of cluster ${hex(md.clusterId)}, ` +
        `expected member ${hex(known.memberId)} of cluster ${hex(known.clusterId)}`, offset);
    }
    this.metadata = md;
  }

  #entry(entry: Entry, offset: number): void {
    this.lastIndex = entry.index;
    const snap = this.#options.snapshot;
    if (!this.#options.collectEntries || entry.index <= snap.index) return;
    // A later entry with an index already seen replaces it and everything after it, as raft's log does.
    const position = entry.index - snap.index - 1;
    if (position > this.entries.length) {
      this.#fail('corrupt', `entry ${entry.index} leaves a gap after ${snap.index + this.entries.length}`, offset);
    }
    this.entries.length = position;
    this.entries.push(entry);
  }

  #marker(marker: WalSnapshot, offset: number): void {
    this.markers.push(marker);
    this.lastIndex = Math.max(this.lastIndex, marker.index);
    const snap = this.#options.snapshot;
    if (marker.index !== snap.index) return;
    if (marker.term !== snap.term) {
      const detail = `marker at index ${marker.index} has term ${marker.term}, not ${snap.term}`;
      this.#fail('snapshot-mismatch', detail, offset);
    }
    this.snapshotFound = true;
  }

  #fail(kind: 'corrupt' | 'metadata-mismatch' | 'snapshot-mismatch', detail: string, offset: number): never {
    throw new WalError(kind, detail, { file: this.#file, offset });
  }
}

function readEntryChecked(r: ByteReader): Entry {
  const entry = readEntry(r);
  r.expectEnd();
  if (entry.index < 1) throw new CodecError(`entry index ${entry.index}`, 0);
  return entry;
}

const hex = (id: bigint): string => id.toString(16);
