import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { ProgressReporter, snapshotCommand, type CliIo, type ProgressStream } from './snapshot-cmd.js';

/** A stream that says it is a terminal (or not) and keeps what was drawn on it. */
function screen(isTTY: boolean): ProgressStream & { text: () => string } {
  const s = new PassThrough() as PassThrough & { isTTY: boolean; columns: number; text: () => string };
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.isTTY = isTTY;
  s.columns = 100;
  s.text = () => Buffer.concat(chunks).toString();
  return s;
}

test('a progress bar is drawn on a terminal for a large file, up to 100%', async () => {
  const tty = screen(true);
  const bar = new ProgressReporter(tty, { label: 'restoring', minBytes: 1000 });
  for (let done = 0; done <= 5000; done += 1000) bar.update(done, 5000);
  bar.stop();
  bar.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.match(tty.text(), /restoring \[.*\] 100% \| 5\.0 kB \/ 5\.0 kB/);
});

test('no progress bar into a pipe, nor for a small file', async () => {
  const pipe = screen(false);
  const bar = new ProgressReporter(pipe, { label: 'restoring', minBytes: 1000 });
  bar.update(5000, 5000);
  bar.stop();
  const tty = screen(true);
  const small = new ProgressReporter(tty, { label: 'restoring', minBytes: 1000 });
  small.update(500, 500);
  small.stop();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pipe.text(), '');
  assert.equal(tty.text(), '');
});

test('snapshot subcommands: unknown ones and missing arguments are usage errors (exit 128)', async () => {
  const err: string[] = [];
  const io: CliIo = { out: () => {}, err: (t) => void err.push(t), progress: screen(false) };
  assert.equal(await snapshotCommand(['save', 'x.db'], io), 128);
  assert.match(err.join(''), /unknown command "save"/);
  assert.equal(await snapshotCommand(['status'], io), 128);
  assert.match(err.join(''), /snapshot status requires exactly one argument/);
  assert.equal(await snapshotCommand(['status', 'a', '-w', 'yaml'], io), 128);
});
