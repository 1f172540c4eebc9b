import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backend } from '../storage/backend/backend.js';

const bin = fileURLToPath(new URL('../../../bin/etcdutl-ts', import.meta.url));

test('etcdutl-ts defrag shrinks a stopped member\'s backend and keeps its data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcdutl-'));
  try {
    const snap = join(dir, 'member', 'snap');
    mkdirSync(snap, { recursive: true });
    const b = Backend.open(snap);
    for (let i = 0; i < 2000; i++) b.put('key', Buffer.from(`k${i}`), Buffer.alloc(512, 1));
    await b.commit();
    for (let i = 0; i < 1990; i++) b.delete('key', Buffer.from(`k${i}`));
    await b.close();
    const out = execFileSync(bin, ['defrag', '--data-dir', dir], { encoding: 'utf8' });
    const m = /\((\d+) -> (\d+) bytes\)/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[2]) < Number(m[1]), out);
    const after = Backend.open(snap);
    assert.equal(after.get('key', Buffer.from('k1999'))?.length, 512);
    assert.equal(after.get('key', Buffer.from('k0')), undefined);
    await after.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('etcdutl-ts refuses what it cannot do, with a non-zero exit', () => {
  const r = spawnSync(bin, ['migrate'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /not implemented in etcdutl-ts yet/);
  const v = spawnSync(bin, ['version'], { encoding: 'utf8' });
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^etcdutl version: 3\.4\./);
});
