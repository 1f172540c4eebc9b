/**
 * Segment files, named as etcd names them: %016x-%016x.wal of (sequence, first raft index the segment may
 * hold). A segment is built under a .tmp name, filled, synced and only then renamed into place, so a crash
 * never leaves a half-made segment under a real name.
 */
import fs from 'node:fs';
import path from 'node:path';
import { WalError } from './wal-error.js';

export interface SegmentName {
  readonly seq: number;
  readonly startIndex: number;
  readonly name: string;
}

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const TMP_SUFFIX = '.tmp';
/** Zero-filling in 1 MiB writes: few syscalls, little memory. */
const ZERO_FILL = Buffer.alloc(1024 * 1024);

const hex16 = (n: number): string => n.toString(16).padStart(16, '0');

export function segmentName(seq: number, startIndex: number): SegmentName {
  return { seq, startIndex, name: `${hex16(seq)}-${hex16(startIndex)}.wal` };
}

export function parseSegmentName(name: string): SegmentName | null {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return null;
  const seq = Number.parseInt(m[1] as string, 16);
  const startIndex = Number.parseInt(m[2] as string, 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(startIndex)) return null;
  return { seq, startIndex, name };
}

/**
 * The segments in `dir` by sequence, checked to form one unbroken run. With `removeTemporary`, the .tmp
 * files of a cut a crash interrupted are removed (only the WAL's owner may: a live one could be mid-cut).
 */
export function listSegments(dir: string, options: { removeTemporary: boolean }): SegmentName[] {
  const segments: SegmentName[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (options.removeTemporary && name.endsWith(`.wal${TMP_SUFFIX}`)) {
      fs.rmSync(path.join(dir, name), { force: true });
      continue;
    }
    const parsed = parseSegmentName(name);
    if (parsed !== null) segments.push(parsed);
  }
  segments.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < segments.length; i++) {
    const prev = segments[i - 1] as SegmentName;
    const cur = segments[i] as SegmentName;
    if (cur.seq !== prev.seq + 1 || cur.startIndex < prev.startIndex) {
      const file = path.join(dir, cur.name);
      throw new WalError('corrupt', `segment ${cur.name} does not follow ${prev.name}`, { file });
    }
  }
  return segments;
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
  }
}

/** Write zeros over [start, end): real blocks, so later appends and fdatasyncs touch no file metadata. */
export function zeroFill(fd: number, start: number, end: number): void {
  for (let at = start; at < end; at += ZERO_FILL.length) {
    writeFully(fd, ZERO_FILL.subarray(0, Math.min(ZERO_FILL.length, end - at)), at);
  }
}

/**
 * Create segment `seg` in `dir` holding `preamble`, preallocated to `segmentBytes`, durable under its real
 * name when this returns. Returns an fd open for reading and writing.
 */
export function createSegment(dir: string, seg: SegmentName, preamble: Uint8Array, segmentBytes: number): number {
  const finalPath = path.join(dir, seg.name);
  if (fs.existsSync(finalPath)) throw new WalError('exists', 'segment already exists', { file: finalPath });
  const tmpPath = finalPath + TMP_SUFFIX;
  const fd = fs.openSync(tmpPath, 'w+');
  try {
    zeroFill(fd, preamble.length, segmentBytes);
    writeFully(fd, preamble, 0);
    fs.fsyncSync(fd);
    fs.renameSync(tmpPath, finalPath);
    fsyncDir(dir);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmpPath, { force: true });
    throw err;
  }
  return fd;
}
