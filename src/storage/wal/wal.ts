/**
 * The write-ahead log of raft entries and hard state (member/wal), laid out like etcd's: a run of segment
 * files %016x-%016x.wal (sequence, first index), each opening with a header, the member's identity and the
 * current hard state, then entries, hard states and snapshot markers as raft produced them.
 *
 * One save() is one write and, when raft says so, one fdatasync: the batch is the unit of durability.
 * Segments are preallocated (zero-filled) so appends and fdatasyncs never change file metadata, and cut to a
 * new segment when the next batch does not fit. I/O is synchronous: the raft loop waits for it anyway.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { assert } from '../../base/assert.js';
import { ByteWriter, writeEntry, writeHardState } from '../../raftnode/codec.js';
import type { Entry, HardState } from '../../raft/types.js';
import {
  type WalMetadata,
  type WalSnapshot,
  writeMetadata,
  writeSegmentHeader,
  writeSnapshotMarker,
} from './payloads.js';
import { RecordType, writeRecord } from './record.js';
import { EMPTY_HARD_STATE, Replay, type SegmentScan, scanSegment } from './replay.js';
import {
  type SegmentName,
  createSegment,
  fsyncDir,
  listSegments,
  segmentName,
  writeFully,
  zeroFill,
} from './segment.js';
import { WalError } from './wal-error.js';

export type { WalMetadata, WalSnapshot } from './payloads.js';
export { WalError, type WalErrorKind } from './wal-error.js';

/** etcd's SegmentSizeBytes. */
export const WAL_SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
/** etcd's --max-wals default: released segments are deleted only beyond this many files. */
export const WAL_SEGMENT_FILES_MAX_DEFAULT = 5;
/** Smallest segment that still holds its preamble and some records; tests use small ones. */
const WAL_SEGMENT_BYTES_MIN = 4096;
const WRITER_INITIAL_BYTES = 64 * 1024;

/** pino's (fields, message) shape, so the server can pass its logger as is. */
export interface WalLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

/** What the WAL reports: each fdatasync's duration (etcd_disk_wal_fsync_duration_seconds). */
export interface WalMetrics {
  fsyncSeconds(seconds: number): void;
}

const noWalMetrics: WalMetrics = { fsyncSeconds: () => {} };

export interface WalOptions {
  /** Preallocated size of each segment (default 64 MiB). */
  readonly segmentBytes?: number;
  /** Segment files kept even once released (etcd's --max-wals; default 5; Infinity: never delete). */
  readonly segmentFilesMax?: number;
  readonly logger?: WalLogger;
}

export interface WalCreateOptions extends WalOptions {
  readonly metadata: WalMetadata;
}

export interface WalOpenOptions extends WalOptions {
  /** The snapshot the state machine is restored from ({0, 0} for none); its marker must be in the WAL. */
  readonly snapshot: WalSnapshot;
  /** When given, the WAL must belong to this member of this cluster. */
  readonly metadata?: WalMetadata;
}

export interface WalOpenResult {
  readonly wal: Wal;
  readonly metadata: WalMetadata;
  /** The last hard state saved ({0, 0n, 0} if none). */
  readonly hardState: HardState;
  /** The entries after the snapshot, with any overwritten tail already replaced. */
  readonly entries: Entry[];
}

export interface WalSaveBatch {
  readonly hardState?: HardState | null;
  readonly entries?: readonly Entry[];
  /** fdatasync before returning (raft's Ready.mustSync). */
  readonly mustSync: boolean;
}

interface WalState {
  readonly dir: string;
  readonly fd: number;
  readonly offset: number;
  readonly segments: SegmentName[];
  readonly metadata: WalMetadata;
  readonly hardState: HardState;
  readonly lastIndex: number;
  readonly options: WalOptions;
}

export class Wal {
  #syncInFlight = false;
  readonly #dir: string;
  readonly #metadata: WalMetadata;
  readonly #segmentBytes: number;
  readonly #segmentFilesMax: number;
  readonly #logger: WalLogger;
  #metrics: WalMetrics = noWalMetrics;
  readonly #writer = new ByteWriter(WRITER_INITIAL_BYTES);
  #fd: number;
  #offset: number;
  #segments: SegmentName[];
  #hardState: HardState;
  #lastIndex: number;
  #releaseIndex = 0;
  /** Whether the tail segment holds anything after its preamble (unknown after open: assume so). */
  #segmentHasRecords = true;
  #closed = false;

  private constructor(state: WalState) {
    this.#dir = state.dir;
    this.#fd = state.fd;
    this.#offset = state.offset;
    this.#segments = state.segments;
    this.#metadata = state.metadata;
    this.#hardState = state.hardState;
    this.#lastIndex = state.lastIndex;
    this.#segmentBytes = checkedSegmentBytes(state.options.segmentBytes);
    this.#segmentFilesMax = state.options.segmentFilesMax ?? WAL_SEGMENT_FILES_MAX_DEFAULT;
    this.#logger = state.options.logger ?? stderrLogger;
    assert(this.#segmentFilesMax >= 1, 'segmentFilesMax must be at least 1');
  }

  /** Whether `dir` holds a WAL (at least one segment file). */
  static exists(dir: string): boolean {
    return fs.existsSync(dir) && listSegments(dir, { removeTemporary: false }).length > 0;
  }

  /**
   * Create a new WAL in `dir` (absent or empty). It is built in `dir.tmp` and renamed into place, so a crash
   * midway leaves no half-made WAL behind. The first segment holds the metadata and the {0, 0} marker.
   */
  static create(dir: string, options: WalCreateOptions): Wal {
    if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) throw new WalError('exists', `${dir} is not empty`);
    const segmentBytes = checkedSegmentBytes(options.segmentBytes);
    const tmpDir = `${dir}.tmp`;
    fs.rmSync(tmpDir, { recursive: true, force: true });
    fs.mkdirSync(tmpDir, { recursive: true });
    const seg = segmentName(0, 0);
    const w = new ByteWriter();
    writePreamble(w, seg, options.metadata, EMPTY_HARD_STATE);
    writeRecord(w, RecordType.SnapshotMarker, (p) => writeSnapshotMarker(p, { index: 0, term: 0 }));
    fs.closeSync(createSegment(tmpDir, seg, w.view(), segmentBytes));
    fs.renameSync(tmpDir, dir);
    fsyncDir(path.dirname(path.resolve(dir)));
    const fd = fs.openSync(path.join(dir, seg.name), 'r+');
    const state = { dir, fd, offset: w.length, segments: [seg], hardState: EMPTY_HARD_STATE, lastIndex: 0 };
    return new Wal({ ...state, metadata: options.metadata, options });
  }

  /**
   * Open the WAL in `dir` for appending, reading it from the segment that holds `options.snapshot` on.
   * A torn tail of the last segment is cleared (and logged); damage anywhere else is a WalError naming the
   * file and offset.
   */
  static open(dir: string, options: WalOpenOptions): WalOpenResult {
    const segments = existingSegments(dir, true);
    const first = segmentFor(segments, options.snapshot.index);
    const expectedMetadata = options.metadata ?? null;
    const replay = new Replay({ snapshot: options.snapshot, collectEntries: true, expectedMetadata });
    const tail = replaySegments(dir, segments.slice(first), replay);
    if (!replay.snapshotFound) {
      const { index, term } = options.snapshot;
      throw new WalError('snapshot-not-found', `no marker for snapshot at index ${index}, term ${term}`);
    }
    const last = segments[segments.length - 1] as SegmentName;
    const fd = fs.openSync(path.join(dir, last.name), 'r+');
    try {
      if (tail.torn !== null) clearTornTail(fd, path.join(dir, last.name), tail.torn, options.logger ?? stderrLogger);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
    const metadata = replay.metadata as WalMetadata;
    const state = { dir, fd, offset: tail.validEnd, segments, metadata, hardState: replay.hardState };
    const wal = new Wal({ ...state, lastIndex: replay.lastIndex, options });
    return { wal, metadata, hardState: replay.hardState, entries: replay.entries };
  }

  /**
   * The snapshot markers a restart may start from: those at or below the last saved commit index (a marker
   * above it names a snapshot whose entries this member may not have). Read-only; tolerates a torn tail.
   * For the snapshotter's loadNewestAvailable.
   */
  static readSnapshotMarkers(dir: string): WalSnapshot[] {
    const segments = existingSegments(dir, false);
    const replay = new Replay({ snapshot: { index: 0, term: 0 }, collectEntries: false, expectedMetadata: null });
    replaySegments(dir, segments, replay);
    return replay.markers.filter((m) => m.index <= replay.hardState.commit);
  }

  get lastIndex(): number {
    return this.#lastIndex;
  }

  /** Where to report from now on; the server wires it once the member's metrics exist. */
  reportTo(metrics: WalMetrics): void {
    this.#metrics = metrics;
  }

  get hardState(): HardState {
    return this.#hardState;
  }

  get metadata(): WalMetadata {
    return this.#metadata;
  }

  /** Segment file names, oldest first. */
  get segmentNames(): string[] {
    return this.#segments.map((s) => s.name);
  }

  /** Append a batch: entries first, then the hard state, in one write; one fdatasync when mustSync. */
  save(batch: WalSaveBatch): void {
    this.#checkOpen();
    const entries = batch.entries ?? [];
    const hardState = batch.hardState ?? null;
    if (entries.length === 0 && hardState === null) {
      if (batch.mustSync) this.#sync();
      return;
    }
    checkEntries(entries, this.#lastIndex);
    const w = this.#writer;
    w.reset();
    for (const entry of entries) writeRecord(w, RecordType.Entry, (p) => writeEntry(p, entry));
    if (hardState !== null) writeRecord(w, RecordType.HardState, (p) => writeHardState(p, hardState));
    this.#append(w.view(), batch.mustSync);
    const lastEntry = entries[entries.length - 1];
    if (lastEntry !== undefined) this.#lastIndex = lastEntry.index;
    if (hardState !== null) this.#hardState = hardState;
  }

  /**
   * save() whose fdatasync runs on libuv's thread pool, so the event loop keeps serving while the disk
   * works. At most one may be in flight: the caller waits for it before the next save (a segment cut
   * closes the file the sync would be running on).
   */
  saveAsync(batch: WalSaveBatch): Promise<void> {
    assert(!this.#syncInFlight, 'a WAL sync is already in flight');
    this.save({ ...batch, mustSync: false });
    if (!batch.mustSync) return Promise.resolve();
    this.#syncInFlight = true;
    const fd = this.#fd;
    const startMs = performance.now();
    return new Promise<void>((resolve, reject) => {
      fs.fdatasync(fd, (err) => {
        this.#syncInFlight = false;
        this.#metrics.fsyncSeconds((performance.now() - startMs) / 1000);
        if (err) reject(err);
        else resolve();
      });
    });
  }

  /** Record that a snapshot at (index, term) was saved, durably: open() can then start from it. */
  saveSnapshotMarker(snapshot: WalSnapshot): void {
    this.#checkOpen();
    assert(Number.isSafeInteger(snapshot.index) && snapshot.index >= 0, 'snapshot index');
    const w = this.#writer;
    w.reset();
    writeRecord(w, RecordType.SnapshotMarker, (p) => writeSnapshotMarker(p, snapshot));
    this.#append(w.view(), true);
    // Entries after a snapshot start above its index, so the next segment may be named after it.
    this.#lastIndex = Math.max(this.#lastIndex, snapshot.index);
  }

  /**
   * The WAL is no longer needed below `index` (a snapshot's, durable in the snap dir and marked here):
   * segments wholly before the one open() would start from at `index` are released, and released segments
   * are deleted while more than segmentFilesMax files remain. Returns the deleted file names.
   */
  releaseBefore(index: number): string[] {
    this.#checkOpen();
    this.#releaseIndex = Math.max(this.#releaseIndex, index);
    return this.#purge();
  }

  /** Sync and close. Further calls fail with WalError 'closed'; closing twice is allowed. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#sync();
    } finally {
      fs.closeSync(this.#fd);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new WalError('closed', 'the WAL is closed');
  }

  #append(bytes: Uint8Array, mustSync: boolean): void {
    // A batch larger than a whole segment goes into a fresh one, which then grows past its preallocation.
    if (this.#offset + bytes.length > this.#segmentBytes && this.#segmentHasRecords) this.#cut();
    writeFully(this.#fd, bytes, this.#offset);
    this.#offset += bytes.length;
    this.#segmentHasRecords = true;
    if (mustSync) this.#sync();
  }

  /** etcd times every sync of the WAL file: on save, on a segment cut, on close. */
  #sync(): void {
    const startMs = performance.now();
    fs.fdatasyncSync(this.#fd);
    this.#metrics.fsyncSeconds((performance.now() - startMs) / 1000);
  }

  /** Seal the full segment (trim its unused space, sync) and continue in a new one. */
  #cut(): void {
    fs.ftruncateSync(this.#fd, this.#offset);
    const startMs = performance.now();
    fs.fsyncSync(this.#fd);
    this.#metrics.fsyncSeconds((performance.now() - startMs) / 1000);
    const prev = this.#segments[this.#segments.length - 1] as SegmentName;
    const seg = segmentName(prev.seq + 1, this.#lastIndex + 1);
    const w = new ByteWriter();
    writePreamble(w, seg, this.#metadata, this.#hardState);
    const fd = createSegment(this.#dir, seg, w.view(), this.#segmentBytes);
    fs.closeSync(this.#fd);
    this.#fd = fd;
    this.#offset = w.length;
    this.#segmentHasRecords = false;
    this.#segments.push(seg);
    this.#logger.info({ path: path.join(this.#dir, seg.name) }, 'created a new WAL segment');
    this.#purge();
  }

  #purge(): string[] {
    const keepFrom = segmentForOrNone(this.#segments, this.#releaseIndex);
    const excess = this.#segments.length - this.#segmentFilesMax;
    const count = Math.min(keepFrom, Math.max(0, excess));
    if (count <= 0) return [];
    const removed = this.#segments.splice(0, count).map((s) => s.name);
    for (const name of removed) fs.rmSync(path.join(this.#dir, name));
    fsyncDir(this.#dir);
    this.#logger.info({ dir: this.#dir, removed }, 'removed released WAL segments');
    return removed;
  }
}

function checkedSegmentBytes(segmentBytes: number | undefined): number {
  const bytes = segmentBytes ?? WAL_SEGMENT_BYTES_DEFAULT;
  assert(Number.isSafeInteger(bytes) && bytes >= WAL_SEGMENT_BYTES_MIN, () => `segmentBytes ${bytes}`);
  return bytes;
}

function writePreamble(w: ByteWriter, seg: SegmentName, metadata: WalMetadata, hardState: HardState): void {
  writeRecord(w, RecordType.SegmentHeader, (p) => writeSegmentHeader(p, seg));
  writeRecord(w, RecordType.Metadata, (p) => writeMetadata(p, metadata));
  writeRecord(w, RecordType.HardState, (p) => writeHardState(p, hardState));
}

/** Raft hands over runs of consecutive entries that may replace a tail but never skip past the end. */
function checkEntries(entries: readonly Entry[], lastIndex: number): void {
  const first = entries[0];
  if (first === undefined) return;
  assert(first.index >= 1 && first.index <= lastIndex + 1, () => `entry ${first.index} after last index ${lastIndex}`);
  for (let i = 1; i < entries.length; i++) {
    assert((entries[i] as Entry).index === first.index + i, 'entries of a batch must be consecutive');
  }
}

function existingSegments(dir: string, removeTemporary: boolean): SegmentName[] {
  if (!fs.existsSync(dir)) throw new WalError('not-found', `no WAL directory ${dir}`);
  const segments = listSegments(dir, { removeTemporary });
  if (segments.length === 0) throw new WalError('not-found', `no WAL segments in ${dir}`);
  return segments;
}

/** Index in `segments` of the last one that may hold entries right after `index`; -1 if none. */
function segmentForOrNone(segments: readonly SegmentName[], index: number): number {
  let found = -1;
  for (let i = 0; i < segments.length && (segments[i] as SegmentName).startIndex <= index; i++) found = i;
  return found;
}

function segmentFor(segments: readonly SegmentName[], index: number): number {
  const i = segmentForOrNone(segments, index);
  if (i < 0) throw new WalError('snapshot-not-found', `no segment holds index ${index}: they were released`);
  return i;
}

/** Replay `segments` in order; returns the scan of the last one. */
function replaySegments(dir: string, segments: readonly SegmentName[], replay: Replay): SegmentScan {
  let scan: SegmentScan = { validEnd: 0, torn: null };
  segments.forEach((seg, i) => {
    const file = path.join(dir, seg.name);
    replay.beginSegment(seg, file);
    scan = scanSegment(fs.readFileSync(file), file, i === segments.length - 1, replay.visit);
    replay.endSegment();
  });
  return scan;
}

function clearTornTail(fd: number, file: string, torn: SegmentScan['torn'] & object, logger: WalLogger): void {
  zeroFill(fd, torn.offset, torn.offset + torn.bytes);
  fs.fdatasyncSync(fd);
  logger.warn({ path: file, offset: torn.offset, bytes: torn.bytes, reason: torn.reason },
    'discarded a torn record at the tail of the WAL');
}

const stderrLogger: WalLogger = {
  info: (fields, msg) => writeLogLine('info', fields, msg),
  warn: (fields, msg) => writeLogLine('warn', fields, msg),
};

function writeLogLine(level: string, fields: Record<string, unknown>, msg: string): void {
  process.stderr.write(`${JSON.stringify({ level, ts: new Date().toISOString(), caller: 'wal', msg, ...fields })}\n`);
}
