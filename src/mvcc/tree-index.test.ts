import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { newHit } from './key-index.js';
import { type RangeEnd, TreeIndex } from './tree-index.js';

/** Naive model: every change of every key, in order, and the compaction point. */
interface Change {
  main: number;
  sub: number;
  put: boolean;
}

class Naive {
  changes = new Map<string, Change[]>();
  compactedAt = -1;

  liveAt(key: string, atRev: number): Change | undefined {
    const cs = this.changes.get(key) ?? [];
    let last: Change | undefined;
    for (const c of cs) if (c.main <= atRev) last = c;
    return last?.put ? last : undefined;
  }

  inRange(key: string, end: RangeEnd): string[] {
    const all = [...this.changes.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (end === undefined) return all.filter((k) => k === key);
    return all.filter((k) => k >= key && (end === '' || k < end));
  }

  kept(key: string): Change[] {
    const cs = this.changes.get(key) ?? [];
    const out = cs.filter((c) => c.main > this.compactedAt);
    const live = this.liveAt(key, this.compactedAt);
    if (live) out.unshift(live);
    return out;
  }
}

const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', '\x00', '\xff'), minLength: 1, maxLength: 2 });
const endArb: fc.Arbitrary<RangeEnd> = fc.oneof(fc.constant(undefined), fc.constant(''), keyArb);
type Op =
  | { kind: 'put'; key: string }
  | { kind: 'del'; key: string; end: RangeEnd }
  | { kind: 'compact'; frac: number };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('del' as const), key: keyArb, end: endArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }) },
);

function checkQueries(idx: TreeIndex, model: Naive, rev: number, q: { key: string; end: RangeEnd; limit: number }): void {
  for (let at = Math.max(model.compactedAt, 1); at <= rev; at++) {
    const want = model.inRange(q.key, q.end).flatMap((k) => {
      const c = model.liveAt(k, at);
      return c ? [{ k, main: c.main, sub: c.sub }] : [];
    });
    const got: Array<{ k: string; main: number; sub: number }> = [];
    idx.visit(q.key, q.end, at, (k, hit) => {
      got.push({ k, main: hit.main, sub: hit.sub });
    });
    assert.deepEqual(got, want, `visit ${JSON.stringify(q)} at ${at}`);
    const { revs, count } = idx.revisions(q.key, q.end, { atRev: at, limit: q.limit });
    assert.equal(count, want.length);
    const limited = q.limit > 0 ? want.slice(0, q.limit) : want;
    assert.deepEqual(revs, limited.flatMap((w) => [w.main, w.sub]));
    assert.deepEqual(idx.keys(q.key, q.end, at), want.map((w) => w.k));
  }
  const since = Math.max(model.compactedAt, 1) + Math.floor(rev / 2);
  const wantSince = model
    .inRange(q.key, q.end)
    .flatMap((k) => {
      const dedup: Change[] = [];
      for (const c of model.kept(k).filter((c) => c.main >= since)) {
        if (dedup.length > 0 && dedup[dedup.length - 1]!.main === c.main) dedup[dedup.length - 1] = c;
        else dedup.push(c);
      }
      return dedup;
    })
    .sort((a, b) => a.main - b.main || a.sub - b.sub)
    .flatMap((c) => [c.main, c.sub]);
  assert.deepEqual(idx.rangeSince(q.key, q.end, since), wantSince);
}

test('tree index ranges, deletes and chunked compaction agree with a naive model', () => {
  const queryArb = fc.record({ key: keyArb, end: endArb, limit: fc.integer({ min: -1, max: 3 }) });
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 30 }), fc.array(queryArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 4 }), (ops, queries, chunk) => {
      const idx = new TreeIndex();
      const model = new Naive();
      let rev = 1;
      for (const op of ops) {
        if (op.kind === 'compact') {
          const at = model.compactedAt + Math.floor(op.frac * (rev - model.compactedAt));
          model.compactedAt = Math.max(at, model.compactedAt);
          let from: string | undefined;
          do from = idx.compactChunk(model.compactedAt, { fromKey: from, maxKeys: chunk });
          while (from !== undefined);
          for (const [k] of model.changes) if (model.kept(k).length === 0) model.changes.delete(k);
          continue;
        }
        rev++;
        if (op.kind === 'put') {
          idx.put(op.key, rev, 0);
          model.changes.set(op.key, [...(model.changes.get(op.key) ?? []), { main: rev, sub: 0, put: true }]);
          continue;
        }
        const keys = idx.keys(op.key, op.end, rev);
        keys.forEach((k, sub) => {
          assert.ok(idx.tombstone(k, rev, sub));
          model.changes.get(k)!.push({ main: rev, sub, put: false });
        });
        if (keys.length === 0) rev--;
      }
      assert.equal(idx.keyCount, model.changes.size);
      for (const [k, cs] of model.changes) {
        const kept = model.kept(k);
        for (const c of cs) assert.equal(idx.contains(k, c.main, c.sub), kept.includes(c), `contains ${k} ${c.main}`);
      }
      for (const q of queries) checkQueries(idx, model, rev, q);
    }),
    { numRuns: 300 },
  );
});

test('range ends: undefined is one key, empty is from-key, an end at or below the key is empty', () => {
  const idx = new TreeIndex();
  ['a', 'ab', 'b', 'c\xff'].forEach((k, i) => idx.put(k, i + 2, 0));
  assert.deepEqual(idx.keys('a', undefined, 10), ['a']);
  assert.deepEqual(idx.keys('ab', '', 10), ['ab', 'b', 'c\xff']);
  assert.deepEqual(idx.keys('a', 'b', 10), ['a', 'ab']);
  assert.deepEqual(idx.keys('b', 'a', 10), []);
  assert.deepEqual(idx.keys('b', 'b', 10), []);
  assert.deepEqual(idx.keys('a', '', 3), ['a', 'ab'], 'history: b was created at 4');
  const hit = newHit();
  assert.ok(!idx.get('zz', 10, hit));
});

test('restore replays backend records: first record of a key starts it, stray tombstones are skipped', () => {
  const idx = new TreeIndex();
  idx.restore('k', { main: 5, sub: 0, tombstone: true, created: 0, version: 0 });
  assert.equal(idx.keyCount, 0);
  idx.restore('k', { main: 7, sub: 1, tombstone: false, created: 3, version: 2 });
  idx.restore('k', { main: 8, sub: 0, tombstone: false, created: 3, version: 3 });
  const hit = newHit();
  assert.ok(idx.get('k', 8, hit));
  assert.deepEqual(hit, { main: 8, sub: 0, created: 3, version: 3 });
  idx.restore('k', { main: 9, sub: 0, tombstone: true, created: 0, version: 0 });
  assert.ok(!idx.get('k', 9, hit));
  assert.ok(idx.get('k', 8, hit));
});

test('anyKept is false only when no key is live at the revision', () => {
  const idx = new TreeIndex();
  assert.equal(idx.anyKept(5), false);
  idx.put('a', 2, 0);
  assert.equal(idx.anyKept(1), false);
  assert.equal(idx.anyKept(2), true);
  idx.tombstone('a', 3, 0);
  assert.equal(idx.anyKept(3), false);
  assert.equal(idx.anyKept(2), true);
});
