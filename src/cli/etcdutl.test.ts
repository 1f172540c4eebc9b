import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Backend } from '../storage/backend/backend.js';
import { revisionKey } from '../mvcc/revision.js';
import { formatStatus } from './etcdutl/snapshot-cmd.js';

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

test('snapshot status prints what etcdctl 3.4 prints for the same numbers, in every format', () => {
  // Captured from `etcdctl snapshot status -w <format>` of etcd 3.4 on a snapshot with these numbers.
  const s = { hash: 4277702626, revision: 3, totalKey: 6, totalSize: 20480 };
  assert.equal(formatStatus(s, 'simple'), 'fef88fe2, 3, 6, 20 kB\n');
  assert.equal(formatStatus(s, 'json'), '{"hash":4277702626,"revision":3,"totalKey":6,"totalSize":20480}\n');
  assert.equal(formatStatus(s, 'fields'), '"Hash" : 4277702626\n"Revision" : 3\n"Keys" : 6\n"Size" : 20480\n');
  assert.equal(formatStatus(s, 'table'), [
    '+----------+----------+------------+------------+',
    '|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |',
    '+----------+----------+------------+------------+',
    '| fef88fe2 |        3 |          6 |      20 kB |',
    '+----------+----------+------------+------------+',
    '',
  ].join('\n'));
});

test('etcdutl-ts snapshot status and restore: outputs, refusals and exit codes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcdutl-snapshot-'));
  try {
    const b = Backend.open(join(dir, 'old'));
    for (let rev = 1; rev <= 9; rev++) b.put('key', revisionKey(rev, 0), Buffer.from(`v${rev}`));
    await b.commit();
    const raw = join(dir, 'raw.db');
    await b.snapshotTo(raw);
    await b.close();
    const db = readFileSync(raw);
    const file = join(dir, 'saved.db');
    writeFileSync(file, Buffer.concat([db, createHash('sha256').update(db).digest()]));

    const status = spawnSync(bin, ['snapshot', 'status', file, '-w', 'json'], { encoding: 'utf8' });
    assert.equal(status.status, 0, status.stderr);
    const parsed = JSON.parse(status.stdout) as { revision: number; totalKey: number; totalSize: number };
    assert.deepEqual([parsed.revision, parsed.totalKey, parsed.totalSize], [9, 9, db.length]);

    const peer = 'http://127.0.0.1:2380';
    const restore = (f: string, dataDir: string, extra: string[] = []): ReturnType<typeof spawnSync> =>
      spawnSync(bin, ['snapshot', 'restore', f, '--name', 'n1', '--data-dir', dataDir, '--initial-cluster', `n1=${peer}`,
        '--initial-advertise-peer-urls', peer, ...extra], { encoding: 'utf8' });
    const ok = restore(file, join(dir, 'n1'));
    assert.equal(ok.status, 0, String(ok.stderr));
    assert.match(String(ok.stderr), /"msg":"restored snapshot"/);
    const again = restore(file, join(dir, 'n1'));
    assert.equal(again.status, 1);
    assert.equal(String(again.stderr), `Error: data-dir ${JSON.stringify(join(dir, 'n1'))} exists\n`);
    const noHash = restore(raw, join(dir, 'n2'));
    assert.equal(noHash.status, 1);
    assert.match(String(noHash.stderr), /^Error: snapshot missing hash but --skip-hash-check=false$/m);
    assert.equal(restore(raw, join(dir, 'n2'), ['--skip-hash-check']).status, 0);
    assert.equal(spawnSync(bin, ['snapshot', 'restore'], { encoding: 'utf8' }).status, 128);
    const missing = spawnSync(bin, ['snapshot', 'status', join(dir, 'absent.db')], { encoding: 'utf8' });
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `Error: stat ${join(dir, 'absent.db')}: no such file or directory\n`);
    const absent = restore(join(dir, 'absent.db'), join(dir, 'n3'));
    assert.equal(absent.status, 1);
    assert.match(String(absent.stderr), new RegExp(`^Error: open ${join(dir, 'absent.db')}: no such file or directory$`, 'm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
