/**
 * `etcdctl snapshot save` (the real etcdctl 3.4, and etcdctl-ts) against every target: same exit code, same stdout, same
 * log lines on stderr after normalisation, and a file that ends with the sha256 of the database before it
 * (etcdctl only checks the length). Then the offline restore of that file, corrupted and without its
 * checksum, must be refused with etcd's messages: `etcdctl snapshot restore` for etcd, `etcdutl-ts snapshot
 * restore` for etcd-ts (whose files are LMDB, not bbolt).
 *
 * Normalised, each for its reason: the log lines' timestamps and source line numbers (zap's caller), the
 * snapshot's size and the time it took (the database engines differ), the file and endpoint (temp dir and
 * port differ per run), and the sha256 bytes in the refusal message (the databases differ).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdctlPath, limits, Member, repoRoot, targetsFromEnv, withLogsOnFailure, type CtlResult, type Target } from './harness.js';

const targets = targetsFromEnv();

function run(binary: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<CtlResult> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${binary} ${args.join(' ')}: no exit within ${limits.etcdctlTimeoutMs} ms`));
    }, limits.etcdctlTimeoutMs);
    child.once('error', fail);
    child.once('close', (code) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      ok({ code: code ?? -1, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(err).toString() });
    });
  });
}

/** The offline restore tool of a target: etcd 3.4's is etcdctl, ours is etcdutl-ts. */
function restoreTool(target: Target, args: readonly string[]): Promise<CtlResult> {
  return target.name === 'etcd'
    ? run(etcdctlPath(), ['snapshot', 'restore', ...args], { ETCDCTL_API: '3' })
    : run(join(repoRoot(), 'bin', 'etcdutl-ts'), ['snapshot', 'restore', ...args]);
}

/** A log line reduced to level, message and field names; other lines as they are. */
function normaliseStderr(stderr: string, o: { dir: string; endpoint: string }): string[] {
  return stderr.split('\n').filter((l) => l !== '').map((line) => {
    if (!line.startsWith('{')) return line.replaceAll(o.dir, '<dir>').replace(/\[(\d+ ){31}\d+\]/g, '[<sha256>]');
    const fields = JSON.parse(line) as Record<string, unknown>;
    const { level, msg, ts: _ts, caller: _caller, ...rest } = fields;
    const kept = Object.entries(rest).map(([k, v]) => {
      if (k === 'size' || k === 'took') return `${k}=<${k}>`;
      return `${k}=${String(v).replaceAll(o.dir, '<dir>').replaceAll(o.endpoint, '<endpoint>')}`;
    });
    return `${String(level)} ${String(msg)} ${kept.join(' ')}`;
  });
}

interface Outcome {
  save: { code: number; stdout: string; stderr: string[] };
  /** The same save by etcdctl-ts. */
  saveTs: { code: number; stdout: string; stderr: string[] };
  corrupted: { code: number; stderr: string[] };
  missingHash: { code: number; stderr: string[] };
}

/** The saved file: a database followed by its sha256 (etcdctl itself checks only the length). */
function checkSaved(file: string, what: string): Buffer {
  const bytes = readFileSync(file);
  assert.equal(bytes.length % 512, 32, `${what}: the file ends with a checksum`);
  const db = bytes.subarray(0, bytes.length - 32);
  assert.deepEqual(bytes.subarray(-32), createHash('sha256').update(db).digest(), `${what}: the checksum is the database's sha256`);
  return bytes;
}

async function scenario(target: Target): Promise<Outcome> {
  const member = await Member.start({ target, name: 'm0' });
  const work = mkdtempSync(join(tmpdir(), `e2e-snapshot-save-${target.name}-`));
  try {
    return await withLogsOnFailure([member], async () => {
      for (let i = 0; i < 20; i++) assert.equal((await member.etcdctl(['put', `k${i}`, 'x'.repeat(1000)])).code, 0);
      const file = join(work, 'snap.db');
      const savedTs = await run(join(repoRoot(), 'bin', 'etcdctl-ts'), [`--endpoints=${member.endpoint}`, 'snapshot', 'save', file]);
      checkSaved(file, `${target.label}, etcdctl-ts`);
      const saved = await member.etcdctl(['snapshot', 'save', file]);
      const bytes = checkSaved(file, target.label);
      const db = bytes.subarray(0, bytes.length - 32);
      const norm = { dir: work, endpoint: member.endpoint };

      const flipped = Buffer.from(bytes);
      flipped[db.length >> 1] = (flipped[db.length >> 1] ?? 0) ^ 0x80;
      writeFileSync(join(work, 'corrupted.db'), flipped);
      const corrupted = await restoreTool(target, [join(work, 'corrupted.db'), `--data-dir=${join(work, 'r1')}`]);
      writeFileSync(join(work, 'raw.db'), db);
      const missingHash = await restoreTool(target, [join(work, 'raw.db'), `--data-dir=${join(work, 'r2')}`]);
      // Ours leaves no half-made data dir behind; etcd does (it checks after copying), so only ours is held to it.
      if (target.name === 'ours') assert.equal(existsSync(join(work, 'r1')) || existsSync(join(work, 'r2')), false);
      return {
        save: { code: saved.code, stdout: saved.stdout.replaceAll(work, '<dir>'), stderr: normaliseStderr(saved.stderr, norm) },
        saveTs: { code: savedTs.code, stdout: savedTs.stdout.replaceAll(work, '<dir>'), stderr: normaliseStderr(savedTs.stderr, norm) },
        corrupted: { code: corrupted.code, stderr: normaliseStderr(corrupted.stderr, norm) },
        missingHash: { code: missingHash.code, stderr: normaliseStderr(missingHash.stderr, norm) },
      };
    });
  } finally {
    await member.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

test('etcdctl snapshot save prints the same against every target, and restore refuses bad files alike', async () => {
  const outcomes: Array<{ target: Target; outcome: Outcome }> = [];
  for (const target of targets) outcomes.push({ target, outcome: await scenario(target) });
  const reference = outcomes[0]!;
  assert.equal(reference.outcome.save.code, 0, reference.outcome.save.stderr.join('\n'));
  assert.equal(reference.outcome.save.stdout, 'Snapshot saved at <dir>/snap.db\n');
  for (const { target, outcome } of outcomes.slice(1)) {
    assert.deepEqual(outcome.save, reference.outcome.save, `${target.label}: snapshot save vs ${reference.target.label}`);
    assert.deepEqual(outcome.corrupted, reference.outcome.corrupted, `${target.label}: restore of a corrupted file`);
    assert.deepEqual(outcome.missingHash, reference.outcome.missingHash, `${target.label}: restore without checksum`);
  }
  for (const { target, outcome } of outcomes) {
    assert.deepEqual(outcome.saveTs, reference.outcome.save, `${target.label}: etcdctl-ts snapshot save vs etcdctl`);
    assert.equal(outcome.corrupted.code, 1);
    assert.equal(outcome.corrupted.stderr.at(-1), 'Error: expected sha256 [<sha256>], got [<sha256>]');
    assert.equal(outcome.missingHash.stderr.at(-1), 'Error: snapshot missing hash but --skip-hash-check=false');
  }
});
