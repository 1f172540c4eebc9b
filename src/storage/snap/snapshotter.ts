/**
 * The snapshotter (member/snap), laid out as etcd lays it out: one file %016x-%016x.snap (term-index) per
 * raft snapshot, holding the snapshot's metadata and its small data payload. The state machine's own
 * snapshot (the backend database) is a separate file the server manages; this directory only says which
 * raft index and configuration it stands for.
 *
 * File: u32 magic "SNP1", u32 CRC-32C of the payload, u32 payload length, u32 zero, then the payload (the
 * raft codec's Snapshot). Written to a .tmp file, synced, renamed, and the directory synced, so a file under
 * a real name is whole. A file that fails to read is renamed *.broken (as etcd does) and skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ByteReader, ByteWriter, CodecError, readSnapshot, writeSnapshot } from '../../raftnode/codec.js';
import type { Snapshot } from '../../raft/types.js';
import { crc32c } from '../wal/crc32c.js';
import { fsyncDir } from '../wal/segment.js';

/** etcd's --max-snapshots default. */
export const SNAP_FILES_MAX_DEFAULT = 5;
/** The data here is raft's view (membership), not the key space: anything this big is damage. */
export const SNAP_FILE_BYTES_MAX = 64 * 1024 * 1024;

const MAGIC = 0x31504e53; // "SNP1" little-endian
const HEADER_BYTES = 16;
const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
const TMP_SUFFIX = '.tmp';
const BROKEN_SUFFIX = '.broken';

/** A snapshot's identity as the WAL records it (structurally the WAL's snapshot marker). */
export interface SnapshotRef {
  readonly index: number;
  readonly term: number;
}

export type SnapErrorKind = 'empty' | 'corrupt' | 'too-large' | 'name-mismatch';

export class SnapError extends Error {
  readonly kind: SnapErrorKind;
  readonly file: string;

  constructor(kind: SnapErrorKind, detail: string, file: string) {
    super(`snap: ${kind}: ${detail} (${file})`);
    this.name = 'SnapError';
    this.kind = kind;
    this.file = file;
  }
}

/** pino's (fields, message) shape. */
export interface SnapLogger {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface SnapshotterOptions {
  readonly logger?: SnapLogger;
}

const sameSnapshot = (a: SnapshotRef, b: SnapshotRef): boolean => a.index === b.index && a.term === b.term;
const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

export function snapFileName(ref: SnapshotRef): string {
  return `${hex16(ref.term)}-${hex16(ref.index)}.snap`;
}

function parseSnapFileName(name: string): SnapshotRef | null {
  const m = SNAP_NAME.exec(name);
  if (m === null) return null;
  const term = Number.parseInt(m[1] as string, 16);
  const index = Number.parseInt(m[2] as string, 16);
  return Number.isSafeInteger(term) && Number.isSafeInteger(index) ? { index, term } : null;
}

export function encodeSnapFile(snapshot: Snapshot): Uint8Array {
  const w = new ByteWriter(snapshot.data.length + 256);
  w.zeros(HEADER_BYTES);
  writeSnapshot(w, snapshot);
  const payload = w.view().subarray(HEADER_BYTES);
  w.patchU32(0, MAGIC);
  w.patchU32(4, crc32c(payload));
  w.patchU32(8, payload.length);
  return w.view();
}

/** Decode a snap file's bytes; SnapError for anything but a whole, matching file. */
export function decodeSnapFile(bytes: Uint8Array, file: string): Snapshot {
  if (bytes.length === 0) throw new SnapError('empty', 'empty file', file);
  if (bytes.length < HEADER_BYTES) throw new SnapError('corrupt', `${bytes.length} bytes: truncated header`, file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new SnapError('corrupt', 'not a snap file (bad magic)', file);
  const length = view.getUint32(8, true);
  if (length !== bytes.length - HEADER_BYTES || view.getUint32(12, true) !== 0) {
    throw new SnapError('corrupt', `payload length ${length} but ${bytes.length - HEADER_BYTES} bytes follow`, file);
  }
  const payload = bytes.subarray(HEADER_BYTES);
  if (crc32c(payload) !== view.getUint32(4, true)) throw new SnapError('corrupt', 'crc mismatch', file);
  try {
    const r = new ByteReader(payload);
    const snapshot = readSnapshot(r);
    r.expectEnd();
    return snapshot;
  } catch (err) {
    if (err instanceof CodecError) throw new SnapError('corrupt', err.message, file);
    throw err;
  }
}

export class Snapshotter {
  readonly #dir: string;
  readonly #logger: SnapLogger;

  /** Uses (and creates) `dir`; removes temporary files a crash in save() left behind. */
  constructor(dir: string, options: SnapshotterOptions = {}) {
    this.#dir = dir;
    this.#logger = options.logger ?? stderrLogger;
    fs.mkdirSync(dir, { recursive: true });
    for (const name of fs.readdirSync(dir)) {
      if (name.endsWith(`.snap${TMP_SUFFIX}`)) fs.rmSync(path.join(dir, name), { force: true });
    }
  }

  get dir(): string {
    return this.#dir;
  }

  /** Save durably under term-index.snap. An empty snapshot (index 0) is not saved, as in etcd. */
  save(snapshot: Snapshot): void {
    if (snapshot.metadata.index === 0) return;
    const bytes = encodeSnapFile(snapshot);
    if (bytes.length > SNAP_FILE_BYTES_MAX) {
      throw new SnapError('too-large', `${bytes.length} bytes > ${SNAP_FILE_BYTES_MAX}`, this.#dir);
    }
    const finalPath = path.join(this.#dir, snapFileName(snapshot.metadata));
    const tmpPath = finalPath + TMP_SUFFIX;
    const fd = fs.openSync(tmpPath, 'w');
    try {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(tmpPath, { force: true });
      throw err;
    }
    fs.closeSync(fd);
    fs.renameSync(tmpPath, finalPath);
    fsyncDir(this.#dir);
  }

  /** The snap file names, newest (highest term, then index) first. */
  snapNames(): string[] {
    return fs.readdirSync(this.#dir).filter((n) => parseSnapFileName(n) !== null).sort().reverse();
  }

  /**
   * The newest snapshot that reads back whole and, when `walSnapshots` is given, that the WAL has a marker
   * for (so the WAL can be opened from it). Broken files met on the way are renamed *.broken. Null if none.
   */
  loadNewestAvailable(walSnapshots?: readonly SnapshotRef[]): Snapshot | null {
    for (const name of this.snapNames()) {
      const ref = parseSnapFileName(name) as SnapshotRef;
      if (walSnapshots !== undefined && !walSnapshots.some((s) => sameSnapshot(s, ref))) continue;
      const snapshot = this.#loadOrSetAside(name, ref);
      if (snapshot !== null) return snapshot;
    }
    return null;
  }

  /** Delete all but the newest `keep` snap files (etcd's --max-snapshots). Returns the deleted names. */
  purge(keep: number = SNAP_FILES_MAX_DEFAULT): string[] {
    const removed = this.snapNames().slice(Math.max(0, keep));
    for (const name of removed) fs.rmSync(path.join(this.#dir, name), { force: true });
    if (removed.length > 0) {
      fsyncDir(this.#dir);
      this.#logger.info({ dir: this.#dir, removed }, 'purged old snap files');
    }
    return removed;
  }

  #loadOrSetAside(name: string, ref: SnapshotRef): Snapshot | null {
    const file = path.join(this.#dir, name);
    try {
      const snapshot = decodeSnapFile(fs.readFileSync(file), file);
      const md = snapshot.metadata;
      if (md.index !== ref.index || md.term !== ref.term) {
        throw new SnapError('name-mismatch', `holds snapshot ${md.term}-${md.index}`, file);
      }
      return snapshot;
    } catch (err) {
      if (!(err instanceof SnapError)) throw err;
      fs.renameSync(file, file + BROKEN_SUFFIX);
      const fields = { path: file, 'broken-path': file + BROKEN_SUFFIX, error: err.message };
      this.#logger.warn(fields, 'renamed to a broken snap file');
      return null;
    }
  }
}

const stderrLogger: SnapLogger = {
  info: (fields, msg) => writeLogLine('info', fields, msg),
  warn: (fields, msg) => writeLogLine('warn', fields, msg),
};

function writeLogLine(level: string, fields: Record<string, unknown>, msg: string): void {
  process.stderr.write(`${JSON.stringify({ level, ts: new Date().toISOString(), caller: 'snap', msg, ...fields })}\n`);
}
