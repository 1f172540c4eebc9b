import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEtcdError } from '../base/errors.js';
import { ReadPins } from './read-pins.js';

function settled(p: Promise<void>): () => boolean {
  let done = false;
  void p.then(() => void (done = true));
  return () => done;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('compaction at rev waits only for reads pinned below rev, until each is released', async () => {
  const pins = new ReadPins();
  const releaseA = pins.pin(5);
  const releaseB = pins.pin(5);
  const releaseC = pins.pin(9);
  const at5 = settled(pins.readersBelow(5));
  const at9 = settled(pins.readersBelow(9));
  const at10 = settled(pins.readersBelow(10));
  await turn();
  assert.deepEqual([at5(), at9(), at10()], [true, false, false]);
  releaseA();
  releaseA(); // idempotent: the second pin at 5 still holds
  await turn();
  assert.deepEqual([at9(), at10()], [false, false]);
  releaseB();
  await turn();
  assert.deepEqual([at9(), at10()], [true, false]);
  releaseC();
  await turn();
  assert.equal(at10(), true);
  assert.equal(pins.count, 0);
});

test('closing lets waiters go; too many pins is the client\'s error, not an assertion', async () => {
  const pins = new ReadPins();
  const releases = Array.from({ length: 100_000 }, () => pins.pin(1));
  assert.throws(() => pins.pin(1), (e) => isEtcdError(e) && e.kind === 'TooManyRequests');
  const waiting = settled(pins.readersBelow(2));
  await turn();
  assert.equal(waiting(), false);
  pins.close();
  await turn();
  assert.equal(waiting(), true);
  for (const r of releases) r();
  assert.equal(pins.count, 0);
});
