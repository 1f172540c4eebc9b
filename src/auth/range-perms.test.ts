import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Permission_Type, type Permission } from '../gen/etcd/auth/authpb/auth.js';
import { mergePerms, permits, toInterval } from './range-perms.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const perm = (permType: Permission_Type, key: string, rangeEnd = ''): Permission => ({ permType, key: b(key), rangeEnd: b(rangeEnd) });
const fromKey = '\0';

test('single key, range, prefix and from-key permissions', () => {
  const p = mergePerms([
    perm(Permission_Type.READWRITE, 'foo'),
    perm(Permission_Type.READ, 'a', 'c'),
    perm(Permission_Type.READ, 'pre/', 'pre0'),
    perm(Permission_Type.WRITE, 'zz', fromKey),
  ]);
  assert.ok(permits(p, { kind: 'read', key: b('foo'), rangeEnd: b('') }));
  assert.ok(permits(p, { kind: 'write', key: b('foo'), rangeEnd: b('') }));
  assert.ok(!permits(p, { kind: 'read', key: b('foo0'), rangeEnd: b('') }));
  assert.ok(!permits(p, { kind: 'read', key: b('fo'), rangeEnd: b('') }));
  // A one-key permission covers exactly [foo, foo\0).
  assert.ok(permits(p, { kind: 'read', key: b('foo'), rangeEnd: b('foo\0') }));
  assert.ok(!permits(p, { kind: 'read', key: b('foo'), rangeEnd: b('foo\0\0') }));
  assert.ok(permits(p, { kind: 'read', key: b('b'), rangeEnd: b('') }));
  assert.ok(permits(p, { kind: 'read', key: b('a'), rangeEnd: b('c') }));
  assert.ok(!permits(p, { kind: 'read', key: b('a'), rangeEnd: b('c\0') }));
  assert.ok(!permits(p, { kind: 'write', key: b('b'), rangeEnd: b('') }));
  assert.ok(permits(p, { kind: 'read', key: b('pre/x'), rangeEnd: b('') }));
  assert.ok(!permits(p, { kind: 'read', key: b('pre'), rangeEnd: b('pre0') }), 'a wider prefix is not covered');
  assert.ok(!permits(p, { kind: 'read', key: b('pre/'), rangeEnd: b(fromKey) }), 'from-key from inside a prefix is not covered');
  assert.ok(permits(p, { kind: 'write', key: b('zz'), rangeEnd: b(fromKey) }));
  assert.ok(permits(p, { kind: 'write', key: b('zzz'), rangeEnd: b('') }));
  assert.ok(!permits(p, { kind: 'read', key: b('zzz'), rangeEnd: b('') }), 'write only');
  assert.ok(!permits(p, { kind: 'write', key: b('z'), rangeEnd: b(fromKey) }));
});

test('touching and overlapping permissions merge; a gap does not', () => {
  const p = mergePerms([perm(Permission_Type.READ, 'a', 'c'), perm(Permission_Type.READ, 'c', 'e'), perm(Permission_Type.READ, 'd', 'g')]);
  assert.ok(permits(p, { kind: 'read', key: b('a'), rangeEnd: b('g') }));
  assert.equal(p.read.size, 1);
  const gap = mergePerms([perm(Permission_Type.READ, 'a', 'c'), perm(Permission_Type.READ, 'c\0', 'e')]);
  assert.ok(!permits(gap, { kind: 'read', key: b('a'), rangeEnd: b('e') }));
  assert.ok(!permits(gap, { kind: 'read', key: b('c'), rangeEnd: b('') }));
  // Single keys next to each other merge too: [c, c\0) + [c\0, e).
  const joined = mergePerms([perm(Permission_Type.READ, 'a', 'c'), perm(Permission_Type.READ, 'c'), perm(Permission_Type.READ, 'c\0', 'e')]);
  assert.ok(permits(joined, { kind: 'read', key: b('a'), rangeEnd: b('e') }));
});

test('empty and reversed permissions grant nothing', () => {
  const p = mergePerms([perm(Permission_Type.READ, 'c', 'a'), perm(Permission_Type.READ, 'b', 'b')]);
  assert.equal(p.read.size, 0);
  assert.ok(!permits(p, { kind: 'read', key: b('b'), rangeEnd: b('') }));
});

/** The naive model: a request is allowed iff every key it can name is allowed, on a small alphabet. */
test('property: a range is permitted iff one merged interval covers it (checked against brute force)', () => {
  const alphabet = ['', 'a', 'b', 'c', 'd', 'aa', 'ab', 'b\0', 'ba', 'ca', 'cc', 'd\0'];
  const keyArb = fc.constantFrom(...alphabet.filter((k) => k !== ''));
  const permArb = fc.record({
    key: keyArb,
    end: fc.oneof(fc.constant(''), fc.constant(fromKey), keyArb),
  });
  fc.assert(fc.property(fc.array(permArb, { maxLength: 5 }), keyArb, fc.oneof(fc.constant(''), fc.constant(fromKey), keyArb), (ps, key, end) => {
    const perms = ps.map((x) => perm(Permission_Type.READ, x.key, x.end));
    const merged = mergePerms(perms);
    const got = permits(merged, { kind: 'read', key: b(key), rangeEnd: b(end) });
    const req = toInterval(b(key), b(end));
    if (req.end !== null && Buffer.compare(req.end, req.begin) <= 0) return; // empty requests: not modelled
    // Brute force over a fine grid of probe keys: every probe inside the request must be inside some permission,
    // and contiguity is what the grid checks between probes.
    const probes = [...new Set([...alphabet, ...alphabet.map((k) => `${k}\0`), ...alphabet.map((k) => `${k}z`), 'zzz'])]
      .map(b).filter((k) => Buffer.compare(k, req.begin) >= 0 && (req.end === null || Buffer.compare(k, req.end) < 0));
    const inPerm = (k: Buffer): boolean => perms.some((p) => {
      const iv = toInterval(p.key, p.rangeEnd);
      return Buffer.compare(k, iv.begin) >= 0 && (iv.end === null || Buffer.compare(k, iv.end) < 0);
    });
    const naive = probes.every(inPerm);
    if (got) assert.ok(naive, `permitted but a probe key is outside: ${JSON.stringify({ ps, key, end })}`);
    if (!naive) assert.ok(!got);
  }), { numRuns: 2000 });
});
