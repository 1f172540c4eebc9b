import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isEtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { openKvStore } from './kv-store-impl.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

test('a member streams at most 4 client snapshots at once; a finished one frees its place', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-store-snapshot-'));
  try {
    const store = await openKvStore(path.join(dir, 'db'), { log: quiet, batchIntervalMs: 100, batchLimit: 1000, compactionBatchLimit: 1000 });
    store.applyPut({ key: Buffer.from('k'), value: Buffer.from('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
    store.setConsistentIndex(5, 2);
    const open = await Promise.all([1, 2, 3, 4].map(() => store.openSnapshot()));
    assert.ok(open.every((s) => s.consistentIndex === 5 && s.sizeBytes > 0));
    await assert.rejects(store.openSnapshot(), (err: unknown) => isEtcdError(err, 'TooManyRequests'));
    await open[0]!.close();
    await open[0]!.close(); // closing twice frees one place only
    const fifth = await store.openSnapshot();
    await assert.rejects(store.openSnapshot(), (err: unknown) => isEtcdError(err, 'TooManyRequests'));
    for (const s of [...open.slice(1), fifth]) await s.close();
    assert.deepEqual(fs.readdirSync(path.join(dir, 'db')).filter((n) => n.startsWith('client-snapshot-')), []);
    await store.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
