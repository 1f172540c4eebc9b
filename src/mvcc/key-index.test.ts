import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  type KeyIndex,
  kiCompact,
  kiContains,
  kiGenerations,
  kiGet,
  kiIsLive,
  kiKeep,
  kiModified,
  kiNew,
  kiPut,
  kiRestore,
  kiSince,
  kiTombstone,
  newHit,
} from './key-index.js';

/** The naive model: the full list of changes of one key, plus the revision it was compacted at. */
interface Change {
  main: number;
  sub: number;
  put: boolean;
}

function naiveGet(changes: Change[], atRev: number) {
  let last = -1;
  for (let i = 0; i < changes.length; i++) if (changes[i]!.main <= atRev) last = i;
  if (last < 0 || !changes[last]!.put) return undefined;
  let start = last;
  while (start > 0 && changes[start - 1]!.put) start--;
  const c = changes[last]!;
  return { main: c.main, sub: c.sub, created: changes[start]!.main, version: last - start + 1 };
}

/** What etcd keeps after compacting at c: every change after c, and the newest put at or before c if live. */
function naiveKept(changes: Change[], compactedAt: number): Change[] {
  const kept = changes.filter((c) => c.main > compactedAt);
  const live = naiveGet(changes, compactedAt);
  if (live) kept.unshift(changes.find((c) => c.main === live.main && c.sub === live.sub)!);
  return kept;
}

type Op = { kind: 'put' | 'del' | 'compact'; gap: number; frac: number };
const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom('put', 'put', 'del', 'compact') as fc.Arbitrary<Op['kind']>,
  gap: fc.nat({ max: 3 }),
  frac: fc.double({ min: 0, max: 1, noNaN: true }),
});

function check(ki: KeyIndex | undefined, changes: Change[], compactedAt: number, rev: number): void {
  const remaining = naiveKept(changes, compactedAt);
  if (remaining.length === 0) {
    assert.equal(ki, undefined, 'an index with nothing left is removed');
    return;
  }
  assert.notEqual(ki, undefined);
  const k = ki!;
  const hit = newHit();
  for (let at = Math.max(compactedAt, 0); at <= rev + 1; at++) {
    const want = naiveGet(changes, at);
    const got = kiGet(k, at, hit) ? { ...hit } : undefined;
    assert.deepEqual(got, want, `get at ${at}`);
    const keep = { main: 0, sub: 0 };
    const kept = kiKeep(k, at, keep) ? keep : undefined;
    assert.deepEqual(kept, want ? { main: want.main, sub: want.sub } : undefined, `keep at ${at}`);
  }
  for (const c of changes) {
    const want = remaining.includes(c);
    assert.equal(kiContains(k, c.main, c.sub), want, `contains ${c.main}.${c.sub}`);
  }
  const last = changes[changes.length - 1]!;
  assert.deepEqual(kiModified(k), { main: last.main, sub: last.sub });
  assert.equal(kiIsLive(k), last.put);
  for (let since = Math.max(compactedAt, 0); since <= rev + 1; since++) {
    const out: number[] = [];
    kiSince(k, since, out);
    const want: number[] = [];
    for (const c of remaining.filter((r) => r.main >= since)) {
      if (want.length > 0 && want[want.length - 2] === c.main) want[want.length - 1] = c.sub;
      else want.push(c.main, c.sub);
    }
    assert.deepEqual(out, want, `since ${since}`);
  }
}

test('key index agrees with the naive history model through puts, tombstones and compactions', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => {
      let ki: KeyIndex | undefined;
      const changes: Change[] = [];
      let main = 1;
      let sub = 0;
      let compactedAt = -1;
      let sealed = false;
      for (const op of ops) {
        if (op.kind === 'compact') {
          if (ki === undefined) continue;
          const at = compactedAt + Math.floor(op.frac * (main - compactedAt));
          if (at < compactedAt) continue;
          compactedAt = at;
          ki = kiCompact(ki, at);
          // A compaction happens between revisions: the next change opens a new main revision.
          sealed = true;
        } else {
          if (op.gap === 0 && changes.length > 0 && !sealed) sub++;
          else {
            main += op.gap + 1;
            sub = 0;
            sealed = false;
          }
          if (op.kind === 'put') {
            ki = ki === undefined ? kiNew(main, sub) : kiPut(ki, main, sub);
            changes.push({ main, sub, put: true });
          } else {
            if (ki === undefined) continue;
            const after = kiTombstone(ki, main, sub);
            const live = changes.length > 0 && changes[changes.length - 1]!.put;
            assert.equal(after !== undefined, live, 'tombstone only ends a live generation');
            if (after === undefined) continue;
            ki = after;
            changes.push({ main, sub, put: false });
          }
        }
        check(ki, changes, compactedAt, main);
        if (ki === undefined) changes.length = 0;
      }
    }),
    { numRuns: 300 },
  );
});

test('a key written once is held as a single number, and expands on its next change', () => {
  const ki = kiNew(1000, 3);
  assert.equal(typeof ki, 'number');
  const two = kiPut(ki, 1001, 0);
  assert.ok(Array.isArray(two));
  assert.deepEqual(kiGenerations(two), [{ created: 1000, version: 2, revs: [[1000, 3], [1001, 0]] }]);
  assert.equal(typeof kiCompact(two, 1001), 'object', 'version 2 cannot be a single number');
  assert.equal(typeof kiNew(2 ** 33, 0), 'object', 'revisions beyond the packing range stay arrays');
  assert.equal(typeof kiNew(5, 2 ** 21), 'object');
});

test('restore starts a generation from a compacted revision with its created revision and version', () => {
  const ki = kiRestore({ created: 3, main: 9, sub: 1, version: 4 });
  const hit = newHit();
  assert.ok(kiGet(ki, 9, hit));
  assert.deepEqual(hit, { main: 9, sub: 1, created: 3, version: 4 });
  const next = kiPut(ki, 10, 0);
  assert.ok(kiGet(next, 10, hit));
  assert.deepEqual(hit, { main: 10, sub: 0, created: 3, version: 5 });
  assert.equal(typeof kiRestore({ created: 9, main: 9, sub: 0, version: 1 }), 'number');
});

test('puts must move forward', () => {
  const ki = kiNew(5, 1);
  assert.throws(() => kiPut(ki, 5, 1));
  assert.throws(() => kiPut(ki, 4, 9));
  assert.doesNotThrow(() => kiPut(ki, 5, 2));
});

test('hot keys grow in place past the copy-on-write size and stay correct', () => {
  let ki: KeyIndex = kiNew(1, 0);
  for (let r = 2; r <= 200; r++) ki = kiPut(ki, r, 0);
  const hit = newHit();
  assert.ok(kiGet(ki, 150, hit));
  assert.deepEqual(hit, { main: 150, sub: 0, created: 1, version: 150 });
  const compacted = kiCompact(ki, 190)!;
  assert.deepEqual(kiGenerations(compacted)[0]!.revs.length, 11);
});
