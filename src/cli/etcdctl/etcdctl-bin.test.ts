/**
 * The installed entry point (bin/etcdctl-ts) as a process: exit codes, stdin, stdout and stderr, compared
 * with the real etcdctl against the same real etcd.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { RealEtcd, haveRealEtcd } from '../../client/testing-real-etcd.js';
import { normalizeCommon, runReal, type Outcome } from './compat-harness.js';

const skip = haveRealEtcd() ? false : 'the real etcd and etcdctl (/usr/bin/etcd, /usr/bin/etcdctl) are not installed';
const bin = fileURLToPath(new URL('../../../../bin/etcdctl-ts', import.meta.url));

let etcd: RealEtcd;

before(async () => {
  if (skip === false) etcd = await RealEtcd.start();
});

after(async () => {
  if (skip === false) await etcd.stop();
});

function runBin(args: readonly string[], stdin: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { PATH: process.env['PATH'] ?? '/usr/bin', ETCDCTL_API: '3' } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out), err: Buffer.concat(err) }));
    child.stdin.end(stdin);
  });
}

async function same(args: readonly string[], stdin = ''): Promise<Outcome> {
  const full = ['--endpoints', etcd.endpoint, ...args];
  const [real, ours] = await Promise.all([runReal(full, { stdin, env: { ETCDCTL_API: '3' } }), runBin(full, stdin)]);
  assert.equal(ours.code, real.code, `exit code of ${args.join(' ')}`);
  assert.equal(ours.out.toString('latin1'), real.out.toString('latin1'), `stdout of ${args.join(' ')}`);
  assert.equal(normalizeCommon(ours.err.toString('latin1')), normalizeCommon(real.err.toString('latin1')), `stderr of ${args.join(' ')}`);
  return ours;
}

test('bin/etcdctl-ts reads values and transactions from a pipe and exits as etcdctl does', { skip }, async () => {
  assert.equal((await same(['put', 'piped'], 'from a pipe\n')).out.toString(), 'OK\n');
  assert.equal((await same(['get', 'piped', '--print-value-only'])).out.toString(), 'from a pipe\n\n');
  await same(['txn', '-w', 'json'], 'val("piped") = "nope"\n\n\nget piped\n\n');
  assert.equal((await same(['put', '', 'x'])).code, 1);
  assert.equal((await same(['get'])).code, 128);
  assert.equal((await same(['get', 'piped', '-w', 'table'])).code, 4);
  assert.equal((await same(['txn'], 'mod("piped") > "0"\n')).code, 3);
  await same(['member', 'list', '-w', 'table']);
  await same(['version']);
});
