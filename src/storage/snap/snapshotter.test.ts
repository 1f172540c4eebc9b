import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { EntryType, type Snapshot } from '../../raft/types.js';
import { Wal } from '../wal/wal.js';
import {
  SnapError,
  type SnapLogger,
  Snapshotter,
  decodeSnapFile,
  encodeSnapFile,
  snapFileName,
} from './snapshotter.js';

const roots: string[] = [];
after(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

function tempDir(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'snap-test-'));
  roots.push(root);
  return root;
}

function snap(term: number, index: number, data = `membership@${index}`): Snapshot {
  return {
    data: new TextEncoder().encode(data),
    metadata: {
      term,
      index,
      confState: {
        voters: [1n, 0xffffffffffffffffn],
        learners: [3n],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
    },
  };
}

function capture(): SnapLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (fields, msg) => warnings.push(`${msg} ${String(fields['path'])}`) };
}

function snapFiles(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

describe('snapshotter', () => {
  it('saves under term-index.snap and loads the newest back', () => {
    const dir = path.join(tempDir(), 'snap');
    const s = new Snapshotter(dir, { logger: capture() });
    s.save(snap(2, 10));
    s.save(snap(3, 25));
    s.save(snap(3, 20));
    assert.deepStrictEqual(snapFiles(dir), [
      '0000000000000002-000000000000000a.snap',
      '0000000000000003-0000000000000014.snap',
      '0000000000000003-0000000000000019.snap',
    ]);
    assert.deepStrictEqual(s.loadNewestAvailable(), snap(3, 25));
    assert.deepStrictEqual(new Snapshotter(dir).loadNewestAvailable(), snap(3, 25), 'a new snapshotter reads it too');
  });

  it('does not save an empty snapshot and loads null from an empty directory', () => {
    const dir = tempDir();
    const s = new Snapshotter(dir);
    s.save(snap(0, 0));
    assert.deepStrictEqual(snapFiles(dir), []);
    assert.equal(s.loadNewestAvailable(), null);
  });

  it('loads the newest snapshot the WAL has a marker for, skipping newer ones it lacks', () => {
    const dir = tempDir();
    const logger = capture();
    const s = new Snapshotter(dir, { logger });
    for (const [t, i] of [[1, 5], [1, 9], [2, 14]] as const) s.save(snap(t, i));
    assert.deepStrictEqual(s.loadNewestAvailable([{ index: 5, term: 1 }, { index: 9, term: 1 }]), snap(1, 9));
    const termDiffers = [{ index: 14, term: 1 }, { index: 5, term: 1 }];
    assert.deepStrictEqual(s.loadNewestAvailable(termDiffers), snap(1, 5), 'term must match too');
    assert.equal(s.loadNewestAvailable([{ index: 7, term: 1 }]), null);
    assert.deepStrictEqual(logger.warnings, []);
    assert.equal(snapFiles(dir).length, 3, 'skipped files are left alone');
  });

  it('renames broken files *.broken and falls back to the next newest', () => {
    const dir = tempDir();
    const logger = capture();
    const s = new Snapshotter(dir, { logger });
    for (const i of [10, 20, 30, 40, 50]) s.save(snap(1, i));
    const file = (i: number): string => path.join(dir, snapFileName({ term: 1, index: i }));
    const flipped = fs.readFileSync(file(50));
    flipped[flipped.length - 3] = (flipped[flipped.length - 3] as number) ^ 1;
    fs.writeFileSync(file(50), flipped);
    fs.truncateSync(file(40), 20);
    fs.writeFileSync(file(30), '');
    fs.copyFileSync(file(10), file(20)); // whole, but not the snapshot its name says
    assert.deepStrictEqual(s.loadNewestAvailable(), snap(1, 10));
    assert.deepStrictEqual(snapFiles(dir), [
      '0000000000000001-000000000000000a.snap',
      '0000000000000001-0000000000000014.snap.broken',
      '0000000000000001-000000000000001e.snap.broken',
      '0000000000000001-0000000000000028.snap.broken',
      '0000000000000001-0000000000000032.snap.broken',
    ]);
    assert.equal(logger.warnings.length, 4);
    assert.ok(logger.warnings.every((w) => w.startsWith('renamed to a broken snap file')));
  });

  it('keeps the newest N files when purging, and leaves other files alone', () => {
    const dir = tempDir();
    const s = new Snapshotter(dir);
    for (let i = 1; i <= 8; i++) s.save(snap(1, i * 100));
    fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000001.snap.broken'), 'x');
    fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000002.snap.db'), 'x');
    const removed = s.purge();
    assert.deepStrictEqual(removed, [300, 200, 100].map((i) => snapFileName({ term: 1, index: i })));
    assert.equal(s.snapNames().length, 5);
    assert.deepStrictEqual(s.snapNames()[0], snapFileName({ term: 1, index: 800 }));
    assert.deepStrictEqual(s.purge(2).length, 3);
    assert.ok(fs.existsSync(path.join(dir, '0000000000000001-0000000000000001.snap.broken')));
    assert.ok(fs.existsSync(path.join(dir, '0000000000000001-0000000000000002.snap.db')));
  });

  it('leaves no temporary file behind and clears those a crash left', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000009.snap.tmp'), 'half');
    const s = new Snapshotter(dir);
    s.save(snap(1, 3));
    assert.deepStrictEqual(snapFiles(dir), ['0000000000000001-0000000000000003.snap']);
  });

  it('rejects malformed file bytes with a typed error only', () => {
    const good = encodeSnapFile(snap(4, 44));
    assert.deepStrictEqual(decodeSnapFile(good, 'f'), snap(4, 44));
    for (let cut = 0; cut < good.length; cut++) {
      assert.throws(() => decodeSnapFile(good.subarray(0, cut), 'f'), SnapError);
    }
    for (let i = 0; i < good.length; i++) {
      const bad = Uint8Array.from(good);
      bad[i] = (bad[i] as number) ^ 0x10;
      assert.throws(() => decodeSnapFile(bad, 'f'), SnapError, `flip at ${i}`);
    }
  });

  it('restarts from the newest snapshot the WAL knows, with only the entries after it', () => {
    const root = tempDir();
    const walDir = path.join(root, 'member', 'wal');
    const snapDir = path.join(root, 'member', 'snap');
    const quiet = { info: () => {}, warn: () => {} };
    const wal = Wal.create(walDir, { metadata: { memberId: 1n, clusterId: 2n }, segmentBytes: 8192, logger: quiet });
    const entries = Array.from({ length: 30 }, (_, i) => {
      return { term: 1, index: i + 1, type: EntryType.Normal, data: Uint8Array.of(i + 1) };
    });
    wal.save({ entries, hardState: { term: 1, vote: 1n, commit: 25 }, mustSync: true });
    const snapshotter = new Snapshotter(snapDir, { logger: quiet });
    for (const index of [10, 20, 28]) {
      snapshotter.save(snap(1, index));
      wal.saveSnapshotMarker({ index, term: 1 });
    }
    wal.close();
    // 28 is above the saved commit index: not a valid restart point.
    const restored = snapshotter.loadNewestAvailable(Wal.readSnapshotMarkers(walDir));
    assert.deepStrictEqual(restored, snap(1, 20));
    const { wal: reopened, entries: after } = Wal.open(walDir, { snapshot: { index: 20, term: 1 }, logger: quiet });
    assert.deepStrictEqual(after, entries.slice(20));
    reopened.close();
  });
});
