import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Backend } from './backend.js';

test('each batch commit reports its duration once it has committed; an empty commit reports nothing', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-metrics-'));
  const seconds: number[] = [];
  const b = Backend.open(dir, { batchIntervalMs: 60_000, metrics: { commitSeconds: (s) => seconds.push(s) } });
  try {
    b.put('key', Buffer.from('a'), Buffer.from('1'));
    const committed = b.commit();
    assert.equal(seconds.length, 0, 'not before the transaction committed');
    await committed;
    assert.equal(seconds.length, 1);
    await b.commit();
    assert.equal(seconds.length, 1);
    b.put('key', Buffer.from('b'), Buffer.from('2'));
    b.put('key', Buffer.from('c'), Buffer.from('3'));
    await b.commit();
    assert.equal(seconds.length, 2);
    assert.ok(seconds.every((s) => s >= 0 && s < 60));
  } finally {
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
