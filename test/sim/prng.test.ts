import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Prng } from './prng.js';

test('a stream replays exactly from its seed and label', () => {
  const a = Prng.stream(42, 'network');
  const b = Prng.stream(42, 'network');
  const xs = Array.from({ length: 100 }, () => a.nextU32());
  const ys = Array.from({ length: 100 }, () => b.nextU32());
  assert.deepEqual(xs, ys);
});

test('different labels and seeds give unrelated streams', () => {
  const first = (seed: number, label: string) => Array.from({ length: 8 }, ((r) => () => r.nextU32())(Prng.stream(seed, label)));
  assert.notDeepEqual(first(1, 'a'), first(1, 'b'));
  assert.notDeepEqual(first(1, 'a'), first(2, 'a'));
  // seeds above 2^32 still matter
  assert.notDeepEqual(first(2 ** 33, 'a'), first(0, 'a'));
});

test('intn is in range and close to uniform', () => {
  const r = Prng.stream(7, 'uniform');
  const n = 10;
  const counts = new Array<number>(n).fill(0);
  const draws = 100_000;
  for (let i = 0; i < draws; i++) {
    const x = r.intn(n);
    assert.ok(x >= 0 && x < n && Number.isInteger(x));
    counts[x] = (counts[x] ?? 0) + 1;
  }
  for (const c of counts) assert.ok(Math.abs(c - draws / n) < draws / n / 10, `bucket ${c} too far from ${draws / n}`);
});

test('range, chance and pick stay within their bounds', () => {
  const r = Prng.stream(3, 'misc');
  for (let i = 0; i < 1000; i++) {
    const x = r.range(5, 9);
    assert.ok(x >= 5 && x <= 9);
    assert.ok(['a', 'b', 'c'].includes(r.pick(['a', 'b', 'c'])));
  }
  assert.equal(r.chance(0), false);
  let hits = 0;
  for (let i = 0; i < 10_000; i++) if (r.chance(0.25)) hits++;
  assert.ok(hits > 2200 && hits < 2800, `chance(0.25) hit ${hits} times in 10000`);
  assert.throws(() => r.intn(0));
  assert.throws(() => r.pick([]));
});

test('split streams are deterministic and independent of the parent afterwards', () => {
  const p1 = Prng.stream(9, 'root');
  const p2 = Prng.stream(9, 'root');
  const c1 = p1.split('child');
  const c2 = p2.split('child');
  assert.equal(c1.nextU32(), c2.nextU32());
  assert.notEqual(p1.split('x').nextU32(), p2.split('y').nextU32());
  const shuffled = Prng.stream(1, 's').shuffle([1, 2, 3, 4, 5, 6]);
  assert.deepEqual([...shuffled].sort(), [1, 2, 3, 4, 5, 6]);
});
