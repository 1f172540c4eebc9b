import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalTree } from './interval-tree.js';

type Op = { kind: 'insert' | 'delete'; lo: string; hi: string } | { kind: 'stab'; point: string };

const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', '\u0000', '\u00ff'), maxLength: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constantFrom('insert' as const, 'delete' as const), lo: keyArb, hi: keyArb }),
  fc.record({ kind: fc.constant('stab' as const), point: keyArb }),
);

test('the interval tree answers stabbing queries like a list scan, through inserts and deletes', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
      const tree = new IntervalTree<string>();
      const naive = new Map<string, [string, string]>();
      for (const op of ops) {
        if (op.kind === 'stab') {
          const got: string[] = [];
          tree.stab(op.point, (v) => got.push(v));
          const want = [...naive].filter(([, [lo, hi]]) => lo <= op.point && op.point < hi).map(([k]) => k);
          assert.deepEqual(got.sort(), want.sort());
          assert.equal(tree.intersects(op.point), want.length > 0);
          continue;
        }
        if (op.lo >= op.hi) continue;
        const id = JSON.stringify([op.lo, op.hi]);
        if (op.kind === 'insert') {
          if (naive.has(id)) {
            assert.equal(tree.get(op), id);
            continue;
          }
          tree.insert(op, id);
          naive.set(id, [op.lo, op.hi]);
        } else {
          assert.equal(tree.delete(op), naive.delete(id));
        }
        tree.checkInvariants();
        assert.equal(tree.size, naive.size);
      }
      assert.deepEqual([...tree.values()].sort(), [...naive.keys()].sort());
    }),
    { numRuns: 300, seed: 42 },
  );
});

test('many distinct nested intervals stay balanced and a stab visits only the ones that contain the point', () => {
  const tree = new IntervalTree<number>();
  const n = 5000;
  for (let i = 0; i < n; i++) tree.insert({ lo: `k${String(i).padStart(5, '0')}`, hi: `k${String(n + i).padStart(5, '0')}` }, i);
  tree.checkInvariants();
  let hits = 0;
  tree.stab('k04999x', () => hits++);
  assert.equal(hits, n);
  hits = 0;
  tree.stab('k00000', () => hits++);
  assert.equal(hits, 1);
  assert.equal(tree.intersects('j'), false);
  assert.equal(tree.intersects('k10000'), false);
});
