import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Backend } from './backend.js';
import { openBackendSnapshot, removeStaleSnapshots } from './backend-snapshot.js';

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'backend-snapshot-'));
}

async function readAll(s: { sizeBytes: number; read(buf: Buffer): Promise<number> }): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(7000); // not a page multiple: reads must continue where the last one ended
    const n = await s.read(buf);
    if (n === 0) break;
    parts.push(buf.subarray(0, n));
  }
  return Buffer.concat(parts);
}

test('a backend snapshot is the committed state at the time it was taken, and leaves no file behind', async () => {
  const dir = tmp();
  try {
    const b = Backend.open(path.join(dir, 'be'));
    for (let i = 0; i < 500; i++) b.put('key', Buffer.from(`k${i}`), Buffer.alloc(100, i % 256));
    b.setConsistentIndex({ index: 42, term: 3 });
    const staging = path.join(dir, 'staging');
    const snapshot = await openBackendSnapshot(b, { stagingDir: staging });
    // Writes after the copy was taken go on, and are not in it.
    b.put('key', Buffer.from('late'), Buffer.from('x'));
    b.setConsistentIndex({ index: 43, term: 3 });
    await b.commit();
    assert.deepEqual(fs.readdirSync(staging), []);
    assert.equal(snapshot.consistentIndex, 42);
    const bytes = await readAll(snapshot);
    assert.equal(bytes.length, snapshot.sizeBytes);
    await snapshot.close();
    await snapshot.close();
    await b.close();

    const copy = path.join(dir, 'copy');
    fs.mkdirSync(path.join(copy, 'db'), { recursive: true });
    fs.writeFileSync(path.join(copy, 'db', 'data.mdb'), bytes);
    const c = Backend.open(copy);
    assert.equal(c.get('key', Buffer.from('k499'))?.length, 100);
    assert.equal(c.get('key', Buffer.from('late')), undefined);
    assert.deepEqual(c.consistentIndex(), { index: 42, term: 3 });
    await c.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('staging files a crash left behind are removed, and nothing else', () => {
  const dir = tmp();
  try {
    fs.writeFileSync(path.join(dir, 'client-snapshot-1-1.db'), 'x');
    fs.mkdirSync(path.join(dir, 'client-snapshot-1-2.db.tmp-abc'));
    fs.writeFileSync(path.join(dir, 'other'), 'y');
    removeStaleSnapshots(dir);
    assert.deepEqual(fs.readdirSync(dir), ['other']);
    removeStaleSnapshots(path.join(dir, 'absent'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('taking a snapshot of a large backend does not stop reads and writes meanwhile', async () => {
  const dir = tmp();
  try {
    const b = Backend.open(path.join(dir, 'be'));
    const value = Buffer.alloc(1024, 7);
    for (let i = 0; i < 30_000; i++) b.put('key', Buffer.from(`k${String(i).padStart(6, '0')}`), value);
    b.setConsistentIndex({ index: 1, term: 1 });
    await b.commit();
    let copied = false;
    const pending = openBackendSnapshot(b, { stagingDir: path.join(dir, 'staging') }).then((s) => {
      copied = true;
      return s;
    });
    let turns = 0;
    while (!copied) {
      const k = Buffer.from(`during-${turns}`);
      b.put('key', k, Buffer.from('x'));
      assert.equal(b.get('key', k)?.toString(), 'x');
      turns++;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const snapshot = await pending;
    assert.ok(turns > 1, `only ${turns} event-loop turns while ${snapshot.sizeBytes} bytes were copied`);
    assert.ok(snapshot.sizeBytes > 30_000 * 1024);
    await snapshot.close();
    await b.commit();
    assert.equal(b.get('key', Buffer.from(`during-${turns - 1}`))?.toString(), 'x');
    await b.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
