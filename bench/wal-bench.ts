/**
 * WAL append throughput: batches of 300-byte entries plus a hard state, each batch one write and one
 * fdatasync, as the raft loop saves a Ready. Run: node dist/bench/wal-bench.js [--seconds 3] [--dir /path]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EntryType, type Entry } from '../src/raft/types.js';
import { WAL_SEGMENT_BYTES_DEFAULT, Wal } from '../src/storage/wal/wal.js';

const ENTRY_BYTES = 300;
const BATCH_SIZES = [1, 100] as const;
/** On-disk bytes of a 300-byte entry record (12-byte frame, type, term, index, length, data, padding). */
const ENTRY_RECORD_BYTES = 320;
const HARD_STATE_RECORD_BYTES = 24;

interface Result {
  readonly batchEntries: number;
  readonly batchesPerSec: number;
  readonly entriesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly segments: number;
}

function runOne(root: string, batchEntries: number, options: { seconds: number; mustSync: boolean }): Result {
  const { seconds, mustSync } = options;
  const dir = path.join(root, `wal-${batchEntries}-${mustSync}`);
  const logger = { info: () => {}, warn: () => {} };
  const wal = Wal.create(dir, { metadata: { memberId: 1n, clusterId: 2n }, logger });
  const data = new Uint8Array(ENTRY_BYTES).fill(0x61);
  const latenciesMs: number[] = [];
  let index = 1;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    const entries: Entry[] = [];
    for (let i = 0; i < batchEntries; i++) entries.push({ term: 1, index: index + i, type: EntryType.Normal, data });
    const t0 = performance.now();
    wal.save({ entries, hardState: { term: 1, vote: 1n, commit: index }, mustSync });
    latenciesMs.push(performance.now() - t0);
    index += batchEntries;
  }
  const elapsedSec = (performance.now() - start) / 1000;
  const segments = wal.segmentNames.length;
  wal.close();
  latenciesMs.sort((a, b) => a - b);
  const pick = (q: number): number => {
    return latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))] ?? 0;
  };
  return {
    batchEntries,
    batchesPerSec: latenciesMs.length / elapsedSec,
    entriesPerSec: (latenciesMs.length * batchEntries) / elapsedSec,
    p50Ms: pick(0.5),
    p99Ms: pick(0.99),
    segments,
  };
}

/**
 * The floor under the WAL on this disk: the same bytes per batch written to a preallocated file with one
 * fdatasync each, no encoding. Measured in the same run, so a busy machine skews both alike.
 */
function runRaw(root: string, batchBytes: number, seconds: number): number {
  const file = path.join(root, `raw-${batchBytes}`);
  const fd = fs.openSync(file, 'w+');
  const zeros = Buffer.alloc(1024 * 1024);
  for (let at = 0; at < WAL_SEGMENT_BYTES_DEFAULT; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at);
  fs.fsyncSync(fd);
  const bytes = Buffer.alloc(batchBytes, 0x61);
  let offset = 0;
  let batches = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    if (offset + batchBytes > WAL_SEGMENT_BYTES_DEFAULT) offset = 0;
    fs.writeSync(fd, bytes, 0, batchBytes, offset);
    fs.fdatasyncSync(fd);
    offset += batchBytes;
    batches++;
  }
  const elapsedSec = (performance.now() - start) / 1000;
  fs.closeSync(fd);
  fs.rmSync(file);
  return batches / elapsedSec;
}

function main(): void {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, dir: { type: 'string' } } });
  const seconds = Number(values.seconds);
  const root = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'wal-bench-'));
  try {
    console.log(`WAL bench: ${ENTRY_BYTES}-byte entries + hard state per batch, one fdatasync per batch,`);
    console.log(`${seconds}s per case, in ${root}`);
    console.log('entries/batch  batches/s  entries/s  p50 ms  p99 ms  segments  raw file batches/s  wal/raw');
    for (const n of BATCH_SIZES) {
      const r = runOne(root, n, { seconds, mustSync: true });
      const raw = runRaw(root, n * ENTRY_RECORD_BYTES + HARD_STATE_RECORD_BYTES, seconds);
      console.log(
        `${String(r.batchEntries).padStart(13)}  ${r.batchesPerSec.toFixed(0).padStart(9)}` +
          `  ${r.entriesPerSec.toFixed(0).padStart(9)}` +
          `  ${r.p50Ms.toFixed(3).padStart(6)}  ${r.p99Ms.toFixed(3).padStart(6)}  ${String(r.segments).padStart(8)}` +
          `  ${raw.toFixed(0).padStart(18)}  ${(r.batchesPerSec / raw).toFixed(2).padStart(7)}`,
      );
    }
    // The WAL's own CPU cost (encode, CRC, write to the page cache, segment cuts), without the disk.
    const cpu = runOne(root, 100, { seconds, mustSync: false });
    console.log(`without fdatasync, 100 entries/batch: ${cpu.entriesPerSec.toFixed(0)} entries/s, ` +
      `${cpu.segments} segments (64 MiB each, zero-filled when cut), p99 ${cpu.p99Ms.toFixed(3)} ms`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main();
