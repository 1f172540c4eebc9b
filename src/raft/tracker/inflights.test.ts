import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Inflights } from './inflights.js';

/** A plain array model of the ring. */
class NaiveInflights {
  items: Array<{ index: number; bytes: number }> = [];
  constructor(readonly size: number, readonly maxBytes: number) {}
  add(index: number, bytes: number): void {
    this.items.push({ index, bytes });
  }
  freeLE(to: number): void {
    while (this.items.length > 0 && (this.items[0] as { index: number }).index <= to) this.items.shift();
  }
  bytes(): number {
    return this.items.reduce((s, x) => s + x.bytes, 0);
  }
  full(): boolean {
    return this.items.length === this.size || (this.maxBytes !== 0 && this.bytes() >= this.maxBytes);
  }
}

type Op = { kind: 'add'; bytes: number } | { kind: 'free'; back: number } | { kind: 'reset' };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 100 }).map((bytes) => ({ kind: 'add' as const, bytes })) },
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 10 }).map((back) => ({ kind: 'free' as const, back })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reset' as const }) },
);

test('property: the inflights ring behaves like a naive queue (count, bytes, full, freeLE)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 500 }), fc.array(opArb, { maxLength: 300 }), (size, maxBytes, ops) => {
      const ring = new Inflights(size, maxBytes);
      const model = new NaiveInflights(size, maxBytes);
      let next = 1;
      for (const op of ops) {
        if (op.kind === 'add') {
          if (model.full()) continue;
          ring.add(next, op.bytes);
          model.add(next, op.bytes);
          next += 1 + (op.bytes % 3);
        } else if (op.kind === 'free') {
          const to = next - 1 - op.back;
          ring.freeLE(to);
          model.freeLE(to);
        } else {
          ring.reset();
          model.items = [];
        }
        assert.equal(ring.count(), model.items.length);
        assert.equal(ring.bytes(), model.bytes());
        assert.equal(ring.full(), model.full());
      }
    }),
    { numRuns: 500 },
  );
});

test('inflights: adding to a full ring is an assertion failure; clone is independent', () => {
  const r = new Inflights(2, 0);
  r.add(1, 1);
  r.add(2, 1);
  assert.equal(r.full(), true);
  assert.throws(() => r.add(3, 1), /full/);
  const c = r.clone();
  r.freeLE(2);
  assert.equal(r.count(), 0);
  assert.equal(c.count(), 2);
});

test('inflights: byte limit makes the ring full before the count limit', () => {
  const r = new Inflights(10, 100);
  r.add(1, 60);
  assert.equal(r.full(), false);
  r.add(2, 40);
  assert.equal(r.full(), true);
  r.freeLE(1);
  assert.equal(r.full(), false);
  assert.equal(r.bytes(), 40);
});
