import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EntryType } from '../../raft/types.js';
import { Wal } from './wal.js';

const quiet = { info: () => {}, warn: () => {} };

test('every sync of the WAL file is timed: save with mustSync, an empty synced save, saveAsync, a cut, close', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'wal-metrics-'));
  try {
    const wal = Wal.create(path.join(root, 'wal'), { metadata: { memberId: 1n, clusterId: 2n }, segmentBytes: 8192, logger: quiet });
    const seconds: number[] = [];
    wal.reportTo({ fsyncSeconds: (s) => seconds.push(s) });
    const entry = (index: number, bytes = 40) => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array(bytes).fill(7) });
    wal.save({ entries: [entry(1)], mustSync: false });
    assert.equal(seconds.length, 0);
    wal.save({ entries: [entry(2)], mustSync: true });
    assert.equal(seconds.length, 1);
    wal.save({ mustSync: true });
    assert.equal(seconds.length, 2);
    await wal.saveAsync({ entries: [entry(3)], mustSync: true });
    assert.equal(seconds.length, 3);
    // A batch that does not fit the segment cuts a new one, which syncs the sealed file first.
    wal.save({ entries: [entry(4, 9000)], mustSync: true });
    assert.equal(seconds.length, 5);
    wal.close();
    assert.equal(seconds.length, 6);
    assert.ok(seconds.every((s) => s >= 0 && s < 60), `plausible durations: ${seconds.join(',')}`);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
