import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { EntryType, type Entry, type HardState } from '../../raft/types.js';
import { RECORD_HEADER_BYTES, RecordType, readRecordAt } from './record.js';
import { Wal, WalError, type WalLogger, type WalMetadata } from './wal.js';

const META: WalMetadata = { memberId: 0x8e9e05c52164694dn, clusterId: 0xcdf818194e3a8c32n };
const SEGMENT_BYTES = 8192;
const roots: string[] = [];

after(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-test-'));
  roots.push(root);
  return path.join(root, 'wal');
}

/** Deterministic payload without zero bytes, so a run of zeros in a file is never mistaken for data. */
function entry(index: number, term = 1, bytes = 40): Entry {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = ((index * 131 + i * 7 + term) % 255) + 1;
  return { index, term, type: EntryType.Normal, data };
}

const range = (from: number, to: number, term = 1, bytes = 40): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term, bytes));

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

function capture(): WalLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (fields, msg) => lines.push({ level: 'info', msg, fields }),
    warn: (fields, msg) => lines.push({ level: 'warn', msg, fields }),
  };
}

const quiet = (): WalLogger => capture();
const walError = (kind: string) => (e: unknown): boolean => e instanceof WalError && e.kind === kind;
const ZERO_SNAP = { index: 0, term: 0 } as const;

function open(dir: string, snapshot: { index: number; term: number } = ZERO_SNAP, logger: WalLogger = quiet()) {
  return Wal.open(dir, { snapshot, segmentBytes: SEGMENT_BYTES, logger });
}

function create(dir: string): Wal {
  return Wal.create(dir, { metadata: META, segmentBytes: SEGMENT_BYTES, logger: quiet() });
}

function segmentFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
}

/** Offsets and types of the records in a segment file, by the WAL's own frame reader. */
function records(file: string): { offset: number; payloadEnd: number; type: number }[] {
  const buf = fs.readFileSync(file);
  const out: { offset: number; payloadEnd: number; type: number }[] = [];
  for (let at = 0; ;) {
    const rec = readRecordAt(buf, at);
    if (rec.status !== 'ok') return out;
    out.push({ offset: at, payloadEnd: rec.payloadEnd, type: rec.type });
    at = rec.next;
  }
}

describe('wal: basics', () => {
  it('round-trips entries, hard state and metadata through close and reopen', () => {
    const dir = tempDir();
    const wal = create(dir);
    const hs: HardState = { term: 3, vote: 0xffffffffffffffffn, commit: 4 };
    wal.save({ entries: range(1, 5, 3), hardState: hs, mustSync: true });
    wal.close();
    const opened = open(dir);
    assert.deepStrictEqual(opened.metadata, META);
    assert.deepStrictEqual(opened.hardState, hs);
    assert.deepStrictEqual(opened.entries, range(1, 5, 3));
    assert.equal(opened.wal.lastIndex, 5);
    opened.wal.save({ entries: range(6, 7, 3), hardState: { ...hs, commit: 7 }, mustSync: true });
    opened.wal.close();
    const again = open(dir);
    assert.deepStrictEqual(again.entries, range(1, 7, 3));
    assert.equal(again.hardState.commit, 7);
    again.wal.close();
  });

  it('names the first segment 0-0 and a fresh WAL opens empty', () => {
    const dir = tempDir();
    create(dir).close();
    assert.deepStrictEqual(segmentFiles(dir), ['0000000000000000-0000000000000000.wal']);
    assert.equal(fs.statSync(path.join(dir, segmentFiles(dir)[0] as string)).size, SEGMENT_BYTES);
    assert.ok(!fs.existsSync(`${dir}.tmp`));
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, []);
    assert.deepStrictEqual(opened.hardState, { term: 0, vote: 0n, commit: 0 });
    opened.wal.close();
    assert.ok(Wal.exists(dir));
    assert.ok(!Wal.exists(path.join(dir, 'nothing-here')));
  });

  it('keeps unsynced batches once closed (close syncs)', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 3), mustSync: false });
    wal.save({ hardState: { term: 1, vote: 1n, commit: 2 }, mustSync: false });
    wal.close();
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, range(1, 3));
    assert.deepStrictEqual(opened.hardState, { term: 1, vote: 1n, commit: 2 });
    opened.wal.close();
  });

  it('refuses to create over an existing WAL, to open a missing one, and to write when closed', () => {
    const dir = tempDir();
    const wal = create(dir);
    assert.throws(() => create(dir), walError('exists'));
    wal.close();
    wal.close();
    assert.throws(() => wal.save({ entries: range(1, 1), mustSync: true }), walError('closed'));
    assert.throws(() => open(path.join(dir, 'missing')), walError('not-found'));
    const empty = tempDir();
    fs.mkdirSync(empty, { recursive: true });
    create(empty).close();
    assert.deepStrictEqual(segmentFiles(empty), ['0000000000000000-0000000000000000.wal'], 'an empty dir is fine');
  });

  it('checks the identity on open', () => {
    const dir = tempDir();
    create(dir).close();
    const other = { memberId: META.memberId + 1n, clusterId: META.clusterId };
    assert.throws(
      () => Wal.open(dir, { snapshot: ZERO_SNAP, metadata: other, logger: quiet() }),
      (e: unknown) => walError('metadata-mismatch')(e) && /member 8e9e05c52164694d/.test(String(e)),
    );
    const ok = Wal.open(dir, { snapshot: ZERO_SNAP, metadata: META, logger: quiet() });
    ok.wal.close();
  });

  it('refuses oversized records before writing anything', () => {
    const dir = tempDir();
    const wal = create(dir);
    const big: Entry = { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(10 * 1024 * 1024 + 1) };
    assert.throws(() => wal.save({ entries: [big], mustSync: true }), walError('record-too-large'));
    wal.save({ entries: range(1, 1), mustSync: true });
    wal.close();
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, range(1, 1));
    opened.wal.close();
  });
});

describe('wal: raft semantics', () => {
  it('replaces a conflicting tail: later entries with the same index win', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 10, 1), mustSync: true });
    wal.save({ entries: range(6, 7, 2), hardState: { term: 2, vote: 2n, commit: 5 }, mustSync: true });
    assert.equal(wal.lastIndex, 7);
    wal.close();
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, [...range(1, 5, 1), ...range(6, 7, 2)]);
    opened.wal.save({ entries: range(8, 8, 2), mustSync: true });
    opened.wal.close();
    const again = open(dir);
    assert.deepStrictEqual(again.entries, [...range(1, 5, 1), ...range(6, 8, 2)]);
    again.wal.close();
  });

  it('replaces a conflicting tail that lies in an earlier segment', () => {
    const dir = tempDir();
    const wal = create(dir);
    for (let i = 1; i <= 60; i++) wal.save({ entries: [entry(i, 1, 200)], mustSync: false });
    assert.ok(segmentFiles(dir).length >= 2, 'the log spans segments');
    wal.save({ entries: range(3, 4, 2), mustSync: true });
    wal.close();
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, [...range(1, 2, 1, 200), ...range(3, 4, 2)]);
    opened.wal.close();
  });

  it('refuses entries that would leave a gap (a bug upstream, not an operating error)', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 2), mustSync: true });
    assert.throws(() => wal.save({ entries: range(4, 4), mustSync: true }), /entry 4 after last index 2/);
    wal.close();
  });

  it('reads from a snapshot marker on: only later entries, and the marker must exist with its term', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 20, 2), hardState: { term: 2, vote: 1n, commit: 20 }, mustSync: true });
    wal.saveSnapshotMarker({ index: 12, term: 2 });
    wal.save({ entries: range(21, 22, 2), mustSync: true });
    wal.close();
    const opened = open(dir, { index: 12, term: 2 });
    assert.deepStrictEqual(opened.entries, range(13, 22, 2));
    assert.deepStrictEqual(opened.hardState, { term: 2, vote: 1n, commit: 20 });
    opened.wal.close();
    assert.throws(() => open(dir, { index: 13, term: 2 }), walError('snapshot-not-found'));
    assert.throws(() => open(dir, { index: 12, term: 1 }), walError('snapshot-mismatch'));
    assert.deepStrictEqual(Wal.readSnapshotMarkers(dir), [{ index: 0, term: 0 }, { index: 12, term: 2 }]);
  });

  it('lists only snapshot markers at or below the saved commit index', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 5), hardState: { term: 1, vote: 1n, commit: 3 }, mustSync: true });
    wal.saveSnapshotMarker({ index: 3, term: 1 });
    wal.saveSnapshotMarker({ index: 5, term: 1 });
    wal.close();
    assert.deepStrictEqual(Wal.readSnapshotMarkers(dir), [{ index: 0, term: 0 }, { index: 3, term: 1 }]);
  });

  it('accepts entries right after a snapshot installed past its log (a follower catching up)', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 3), mustSync: true });
    wal.saveSnapshotMarker({ index: 100, term: 4 });
    wal.save({ entries: range(101, 102, 4), hardState: { term: 4, vote: 0n, commit: 101 }, mustSync: true });
    wal.close();
    const opened = open(dir, { index: 100, term: 4 });
    assert.deepStrictEqual(opened.entries, range(101, 102, 4));
    opened.wal.close();
  });
});

describe('wal: segments', () => {
  it('cuts to a new segment named after the next index, and reopens across all of them', () => {
    const dir = tempDir();
    const logger = capture();
    const wal = Wal.create(dir, { metadata: META, segmentBytes: SEGMENT_BYTES, logger });
    for (let i = 1; i <= 100; i += 5) wal.save({ entries: range(i, i + 4, 1, 300), mustSync: true });
    wal.save({ hardState: { term: 1, vote: 7n, commit: 100 }, mustSync: true });
    wal.close();
    const files = segmentFiles(dir);
    assert.ok(files.length >= 4, `expected several segments, got ${files.length}`);
    let prevStart = -1;
    files.forEach((name, seq) => {
      const [seqHex, startHex] = name.replace('.wal', '').split('-') as [string, string];
      assert.equal(Number.parseInt(seqHex, 16), seq);
      const start = Number.parseInt(startHex, 16);
      assert.ok(start > prevStart && (seq === 0 || (start - 1) % 5 === 0), `segment ${name} starts at a batch`);
      prevStart = start;
      const size = fs.statSync(path.join(dir, name)).size;
      if (seq < files.length - 1) assert.ok(size <= SEGMENT_BYTES, 'a sealed segment is trimmed');
      else assert.equal(size, SEGMENT_BYTES, 'the tail segment is preallocated');
    });
    assert.equal(logger.lines.filter((l) => l.msg === 'created a new WAL segment').length, files.length - 1);
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, range(1, 100, 1, 300));
    assert.deepStrictEqual(opened.hardState, { term: 1, vote: 7n, commit: 100 });
    opened.wal.close();
  });

  it('puts a batch larger than a segment into a fresh segment of its own', () => {
    const dir = tempDir();
    const wal = create(dir);
    wal.save({ entries: range(1, 1), mustSync: true });
    wal.save({ entries: range(2, 40, 1, 400), mustSync: true });
    wal.save({ entries: range(41, 41), mustSync: true });
    wal.close();
    assert.equal(segmentFiles(dir).length, 3);
    const opened = open(dir);
    assert.deepStrictEqual(opened.entries, [...range(1, 1), ...range(2, 40, 1, 400), ...range(41, 41)]);
    opened.wal.close();
  });

  it('releases segments below a snapshot, keeping segmentFilesMax files and what open needs', () => {
    const dir = tempDir();
    const wal = Wal.create(dir, { metadata: META, segmentBytes: SEGMENT_BYTES, segmentFilesMax: 2, logger: quiet() });
    for (let i = 1; i <= 120; i++) {
      wal.save({ entries: [entry(i, 1, 300)], hardState: { term: 1, vote: 1n, commit: i }, mustSync: false });
    }
    const before = wal.segmentNames;
    assert.ok(before.length >= 5);
    wal.saveSnapshotMarker({ index: 110, term: 1 });
    const removed = wal.releaseBefore(110);
    assert.ok(removed.length > 0);
    assert.deepStrictEqual([...removed, ...wal.segmentNames], before);
    assert.deepStrictEqual(segmentFiles(dir), wal.segmentNames);
    const kept = wal.segmentNames;
    assert.ok(kept.length >= 2);
    const firstStart = Number.parseInt((kept[0] as string).slice(17, 33), 16);
    assert.ok(firstStart <= 110, 'the segment holding the snapshot index stays');
    wal.save({ entries: range(121, 122, 1, 300), mustSync: true });
    wal.close();
    const opened = open(dir, { index: 110, term: 1 });
    assert.deepStrictEqual(opened.entries, range(111, 122, 1, 300));
    opened.wal.close();
    assert.throws(() => open(dir), walError('snapshot-not-found'));
  });

  it('never deletes below segmentFilesMax, and deletes later released segments when a cut adds one', () => {
    const dir = tempDir();
    const wal = Wal.create(dir, { metadata: META, segmentBytes: SEGMENT_BYTES, segmentFilesMax: 3, logger: quiet() });
    let index = 1;
    while (wal.segmentNames.length < 3) wal.save({ entries: [entry(index++, 1, 300)], mustSync: false });
    wal.saveSnapshotMarker({ index: index - 1, term: 1 });
    assert.deepStrictEqual(wal.releaseBefore(index - 1), [], 'no more files than segmentFilesMax yet');
    const tail = wal.segmentNames.at(-1);
    while (wal.segmentNames.at(-1) === tail) wal.save({ entries: [entry(index++, 1, 300)], mustSync: false });
    assert.deepStrictEqual(segmentFiles(dir), wal.segmentNames);
    assert.equal(wal.segmentNames.length, 3, 'the cut deleted the oldest released segment');
    assert.ok(!wal.segmentNames.includes('0000000000000000-0000000000000000.wal'));
    wal.close();
  });

  it('removes leftover temporary files of an interrupted cut or create', () => {
    const dir = tempDir();
    create(dir).close();
    fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000001.wal.tmp'), 'half made');
    const opened = open(dir);
    opened.wal.close();
    assert.deepStrictEqual(fs.readdirSync(dir), ['0000000000000000-0000000000000000.wal']);
    const dir2 = tempDir();
    fs.mkdirSync(`${dir2}.tmp`, { recursive: true });
    fs.writeFileSync(path.join(`${dir2}.tmp`, 'junk'), 'x');
    create(dir2).close();
    assert.ok(!fs.existsSync(`${dir2}.tmp`));
  });
});

/** A WAL of one segment: batches of 1..3 entries (term 1) with hard states; returns the file and all entries. */
function buildTail(dir: string): { file: string; entries: Entry[] } {
  const wal = create(dir);
  const entries: Entry[] = [];
  let index = 1;
  for (let batch = 1; batch <= 6; batch++) {
    const es = range(index, index + (batch % 3), 1, 37 + batch * 11);
    index += es.length;
    entries.push(...es);
    wal.save({ entries: es, hardState: { term: 1, vote: 1n, commit: index - 1 }, mustSync: true });
  }
  wal.close();
  return { file: path.join(dir, segmentFiles(dir)[0] as string), entries };
}

describe('wal: crash recovery', () => {
  it('after a cut at any byte of the last records, keeps exactly the complete prefix and continues', () => {
    const dir = tempDir();
    const { file, entries } = buildTail(dir);
    const original = fs.readFileSync(file);
    const recs = records(file);
    const tailRecords = recs.slice(-4);
    const from = (tailRecords[0] as { offset: number }).offset;
    const end = (recs[recs.length - 1] as { payloadEnd: number }).payloadEnd;
    let checked = 0;
    for (const mode of ['truncate', 'zero'] as const) {
      for (let cut = from; cut <= end + 4; cut++) {
        const zeros = Buffer.alloc(mode === 'truncate' ? 0 : original.length - cut);
        rewrite(file, Buffer.concat([original.subarray(0, cut), zeros]));
        const complete = recs.filter((r) => r.payloadEnd <= cut);
        const expectedEntries = entries.slice(0, complete.filter((r) => r.type === RecordType.Entry).length);
        const logger = capture();
        const opened = open(dir, ZERO_SNAP, logger);
        assert.deepStrictEqual(opened.entries, expectedEntries, `${mode} at ${cut}`);
        const validEnd = complete.length === recs.length ? end : (recs[complete.length] as { offset: number }).offset;
        const torn = original.subarray(validEnd, Math.max(validEnd, cut)).some((b) => b !== 0);
        const warned = logger.lines.filter((l) => l.level === 'warn');
        const expectedLog = torn ? ['discarded a torn record at the tail of the WAL'] : [];
        assert.deepStrictEqual(warned.map((l) => l.msg), expectedLog, `${mode} at ${cut}: log line`);
        if (cut % 29 === 0) {
          const next = entry(expectedEntries.length + 1, 2);
          opened.wal.save({ entries: [next], mustSync: true });
          opened.wal.close();
          const again = open(dir);
          assert.deepStrictEqual(again.entries, [...expectedEntries, next], `${mode} at ${cut}: continues`);
          again.wal.close();
        } else {
          opened.wal.close();
        }
        checked++;
      }
    }
    assert.ok(checked > 400, `checked ${checked} cut points`);
  });

  it('treats damage to the very last record as a torn tail and logs it', () => {
    const dir = tempDir();
    const { file, entries } = buildTail(dir);
    const recs = records(file);
    const last = recs[recs.length - 1] as { offset: number; type: number };
    assert.equal(last.type, RecordType.HardState);
    flipByte(file, last.offset + RECORD_HEADER_BYTES + 1);
    const logger = capture();
    const opened = open(dir, ZERO_SNAP, logger);
    assert.deepStrictEqual(opened.entries, entries);
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 1);
    assert.equal(logger.lines[0]?.fields['offset'], last.offset);
    opened.wal.close();
  });

  it('fails on a corrupt record in the middle of the last segment, naming file and offset', () => {
    const dir = tempDir();
    const { file } = buildTail(dir);
    const recs = records(file);
    const victim = recs[Math.floor(recs.length / 2)] as { offset: number };
    flipByte(file, victim.offset + RECORD_HEADER_BYTES + 2);
    const before = fs.readFileSync(file);
    assert.throws(() => open(dir), (e: unknown) => {
      return e instanceof WalError && e.kind === 'corrupt' && e.file === file && e.offset === victim.offset &&
        e.message.includes(file) && e.message.includes(`offset ${victim.offset}`) && /crc mismatch/.test(e.message);
    });
    assert.ok(fs.readFileSync(file).equals(before), 'a failed open changes nothing');
  });

  it('fails on a corrupt record in a sealed segment, even its last record', () => {
    const dir = tempDir();
    const wal = create(dir);
    for (let i = 1; i <= 60; i++) wal.save({ entries: [entry(i, 1, 200)], mustSync: false });
    wal.close();
    const sealed = path.join(dir, segmentFiles(dir)[0] as string);
    const recs = records(sealed);
    const victim = recs[recs.length - 1] as { offset: number };
    flipByte(sealed, victim.offset + 5);
    assert.throws(() => open(dir), (e: unknown) => {
      return e instanceof WalError && e.kind === 'corrupt' && e.file === sealed && e.offset === victim.offset;
    });
  });

  it('treats a lost sector followed by intact (unsynced) records as torn, and never resurrects them', () => {
    const dir = tempDir();
    const wal = create(dir);
    for (let i = 1; i <= 16; i += 2) wal.save({ entries: range(i, i + 1, 1, 300), mustSync: true });
    wal.close();
    const file = path.join(dir, segmentFiles(dir)[0] as string);
    const recs = records(file);
    // Lose one whole sector in the middle: what a crash mid-write can leave when the disk persisted later
    // sectors of the same unsynced write but not this one. Records after it are intact.
    const sector = 3 * 512;
    const lastOffset = (recs[recs.length - 1] as { offset: number }).offset;
    assert.ok(lastOffset > sector + 1024, 'intact records follow the lost sector');
    const buf = fs.readFileSync(file);
    buf.fill(0, sector, sector + 512);
    rewrite(file, buf);
    const logger = capture();
    const opened = open(dir, ZERO_SNAP, logger);
    const damaged = recs.find((r) => r.payloadEnd > sector) as { offset: number };
    const kept = recs.filter((r) => r.payloadEnd <= sector && r.type === RecordType.Entry).length;
    assert.ok(kept >= 2);
    assert.deepStrictEqual(opened.entries, range(1, kept, 1, 300));
    const warned = logger.lines.filter((l) => l.level === 'warn');
    assert.equal(warned.length, 1);
    assert.equal(warned[0]?.fields['offset'], damaged.offset);
    opened.wal.save({ entries: [entry(kept + 1, 3, 8)], mustSync: true });
    opened.wal.close();
    const again = open(dir);
    assert.deepStrictEqual(again.entries, [...range(1, kept, 1, 300), entry(kept + 1, 3, 8)]);
    again.wal.close();
  });
});

describe('wal: damage anywhere', () => {
  it('either recovers a prefix of what was written or throws a WalError, never anything else', () => {
    const dir = tempDir();
    const wal = create(dir);
    for (let i = 1; i <= 100; i += 4) wal.save({ entries: range(i, i + 3, 1, 150), mustSync: false });
    wal.close();
    const files = segmentFiles(dir).map((n) => path.join(dir, n));
    assert.ok(files.length >= 3);
    const originals = files.map((f) => fs.readFileSync(f));
    const all = range(1, 100, 1, 150);
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 255 }), (fileNo, at, mask) => {
        files.forEach((f, i) => rewrite(f, originals[i] as Buffer));
        const file = files[fileNo % files.length] as string;
        const buf = Buffer.from(originals[fileNo % files.length] as Buffer);
        const used = records(file).at(-1)?.payloadEnd ?? buf.length;
        const i = at % used;
        buf[i] = (buf[i] as number) ^ mask;
        rewrite(file, buf);
        try {
          const opened = open(dir);
          opened.wal.close();
          assert.deepStrictEqual(opened.entries, all.slice(0, opened.entries.length));
          assert.equal(file, files.at(-1), 'only damage in the last segment can be recovered from');
        } catch (err) {
          if (!(err instanceof WalError)) throw err;
        }
      }),
      { seed: 4242, numRuns: 150 },
    );
  });
});

function flipByte(file: string, offset: number): void {
  const buf = fs.readFileSync(file);
  buf[offset] = (buf[offset] as number) ^ 0x40;
  rewrite(file, buf);
}

/** Replace a file's content in place: writeFileSync's O_TRUNC makes ext4 flush on close, 50x slower here. */
function rewrite(file: string, content: Uint8Array): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, content, 0, content.length, 0);
    fs.ftruncateSync(fd, content.length);
  } finally {
    fs.closeSync(fd);
  }
}
