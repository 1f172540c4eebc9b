import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LeaseQueue } from './lease-queue.js';

type Op = { kind: 'set'; id: number; time: number } | { kind: 'delete'; id: number } | { kind: 'pop' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), id: fc.integer({ min: 0, max: 20 }), time: fc.integer({ min: 0, max: 50 }) }),
  fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('pop' as const) }),
);

/** The naive model: a map id -> time; pop takes a minimum time. */
test('lease queue agrees with a naive map on set/delete/pop (property)', () => {
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
    const q = new LeaseQueue();
    const model = new Map<bigint, number>();
    for (const o of ops) {
      if (o.kind === 'set') {
        q.set(BigInt(o.id), o.time);
        model.set(BigInt(o.id), o.time);
      } else if (o.kind === 'delete') {
        assert.equal(q.delete(BigInt(o.id)), model.delete(BigInt(o.id)));
      } else {
        const got = q.pop();
        const min = Math.min(...model.values());
        if (model.size === 0) assert.equal(got, undefined);
        else {
          assert.ok(got !== undefined);
          assert.equal(got.timeMs, min);
          assert.equal(model.get(got.id), min);
          model.delete(got.id);
        }
      }
      assert.equal(q.size, model.size);
    }
  }));
});

test('setting an id again moves it instead of adding a second entry', () => {
  const q = new LeaseQueue();
  q.set(1n, 100);
  q.set(2n, 50);
  q.set(1n, 10);
  assert.equal(q.size, 2);
  assert.deepEqual(q.pop(), { id: 1n, timeMs: 10 });
  q.set(2n, 500);
  assert.deepEqual(q.peek(), { id: 2n, timeMs: 500 });
});
