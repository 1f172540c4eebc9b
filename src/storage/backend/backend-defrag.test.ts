import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backend, defragLimits } from './backend.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const here = path.dirname(fileURLToPath(import.meta.url));

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'backend-defrag-test-'));
}

function contents(b: Backend): Map<string, string> {
  const out = new Map<string, string>();
  b.forEach('key', {}, (k, v) => void out.set(k.toString('latin1'), v.toString('latin1')));
  return out;
}

test('online defragment: commits go on during the copy, the result equals the live state, the file shrinks', async () => {
  const dir = tmpDir();
  try {
    const b = Backend.open(dir, { batchIntervalMs: 5 });
    const model = new Map<string, string>();
    const big = 'v'.repeat(500);
    for (let i = 0; i < 8000; i++) {
      b.put('key', B(`k${i}`), B(big));
      model.set(`k${i}`, big);
    }
    await b.commit();
    for (let i = 0; i < 8000; i += 2) {
      b.delete('key', B(`k${i}`));
      model.delete(`k${i}`);
    }
    await b.commit();
    const before = b.size();
    let done = false;
    const defrag = b.defragment().then(() => void (done = true));
    let commitsDuring = 0;
    for (let i = 0; !done; i++) {
      b.put('key', B(`w${i}`), B(`x${i}`));
      model.set(`w${i}`, `x${i}`);
      const victim = `k${(i * 2 + 1) % 8000}`;
      b.delete('key', B(victim));
      model.delete(victim);
      b.put('lease', B(`l${i % 7}`), B(String(i)));
      b.setConsistentIndex({ index: i + 1, term: 3 });
      await b.commit();
      commitsDuring++;
    }
    await defrag;
    assert.ok(commitsDuring > 1, `commits completed while the defragmentation ran (${commitsDuring})`);
    assert.ok(b.size() < before, `size ${b.size()} < ${before}`);
    assert.deepEqual(contents(b), model);
    assert.deepEqual(fs.readdirSync(dir), ['db']);
    const ci = b.consistentIndex();
    await b.close();
    const again = Backend.open(dir);
    assert.deepEqual(contents(again), model);
    assert.deepEqual(again.consistentIndex(), ci);
    assert.ok(again.get('lease', B('l0')) !== undefined);
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('online defragment: concurrent calls share one run; snapshots wait for the swap, not the copy', async () => {
  const dir = tmpDir();
  try {
    const b = Backend.open(dir);
    for (let i = 0; i < 2000; i++) b.put('key', B(`k${i}`), B('v'.repeat(200)));
    b.setConsistentIndex({ index: 5, term: 1 });
    const d1 = b.defragment();
    const d2 = b.defragment();
    assert.equal(d1, d2);
    const snap = b.snapshotTo(path.join(dir, 'snap.db'));
    await Promise.all([d1, snap]);
    assert.equal((await snap).index, 5);
    fs.rmSync(path.join(dir, 'snap.db'));
    assert.equal(contents(b).size, 2000);
    await b.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('online defragment: limits are sane', () => {
  assert.ok(defragLimits.finalStepKeysMax < defragLimits.touchedKeysMax);
  assert.ok(defragLimits.catchUpRoundsMax >= 1);
});

test('a SIGKILL during or right after an online defragment leaves every committed entry', { timeout: 90_000 }, async () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const dir = tmpDir();
    try {
      const child = spawnSync(process.execPath, [path.join(here, 'backend-defrag-crash-child.js'), dir, String(seed)], { encoding: 'utf8' });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const b = Backend.open(dir);
      const { index } = b.consistentIndex();
      const got = contents(b);
      for (let i = 1; i <= index; i++) {
        for (let j = 0; j < 3; j++) assert.ok(got.has(`${i}-${j}`), `seed ${seed}: entry ${i} (consistent index ${index}) lost its write ${j}`);
        assert.ok(!got.has(`p${i}`), `seed ${seed}: entry ${i}'s delete lost`);
      }
      assert.ok(!got.has(`${index + 1}-0`), `seed ${seed}: an entry above the consistent index is present`);
      for (let i = index + 1; i < 6000; i++) assert.ok(got.has(`p${i}`), `seed ${seed}: prefilled key p${i} lost`);
      assert.deepEqual(fs.readdirSync(dir), ['db']);
      await b.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('online defragment: writes outrunning the copy past the limit fail that run; the next one succeeds', async () => {
  const dir = tmpDir();
  const saved = defragLimits.touchedKeysMax;
  try {
    const b = Backend.open(dir, { batchIntervalMs: 5 });
    for (let i = 0; i < 4000; i++) b.put('key', B(`k${i}`), B('v'.repeat(300)));
    await b.commit();
    defragLimits.touchedKeysMax = 5;
    let done = false;
    const failed = b.defragment().then(() => false, (e: unknown) => /too many writes/.test(String(e))).finally(() => void (done = true));
    for (let i = 0; !done; i++) {
      for (let j = 0; j < 10; j++) b.put('key', B(`w${i}-${j}`), B('x'));
      await b.commit();
    }
    assert.equal(await failed, true);
    defragLimits.touchedKeysMax = saved;
    await b.defragment();
    assert.ok(b.get('key', B('w0-0')) !== undefined);
    assert.deepEqual(fs.readdirSync(dir), ['db']);
    await b.close();
  } finally {
    defragLimits.touchedKeysMax = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
