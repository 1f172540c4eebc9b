import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  compareRevision,
  isRevisionKey,
  isTombstoneKey,
  mainOfKey,
  revisionKey,
  revisionOfKey,
  subOfKey,
} from './revision.js';

const safeRev = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());

test('revision key layout is etcd 17 bytes: 8 BE main, "_", 8 BE sub, and "t" for tombstones', () => {
  const k = revisionKey(0x0102030405, 7);
  assert.equal(k.toString('hex'), '0000000102030405' + '5f' + '0000000000000007');
  const t = revisionKey(1, 0, true);
  assert.equal(t.length, 18);
  assert.equal(t[17], 't'.charCodeAt(0));
  assert.ok(isTombstoneKey(t));
  assert.ok(!isTombstoneKey(k));
  assert.ok(isRevisionKey(t) && isRevisionKey(k));
  assert.ok(!isRevisionKey(Buffer.from('consistent_index')));
});

test('revision keys round-trip and byte order equals revision order', () => {
  fc.assert(
    fc.property(safeRev, safeRev, safeRev, safeRev, fc.boolean(), (am, as, bm, bs, tomb) => {
      const a = revisionKey(am, as, tomb);
      const b = revisionKey(bm, bs);
      assert.deepEqual(revisionOfKey(a), { main: am, sub: as });
      assert.equal(mainOfKey(a), am);
      assert.equal(subOfKey(a), as);
      const byRev = compareRevision(am, as, bm, bs);
      const byBytes = Buffer.compare(a.subarray(0, 17), b);
      assert.equal(Math.sign(byBytes), byRev);
    }),
  );
});

test('unsafe revisions are refused at the boundary', () => {
  assert.throws(() => revisionKey(-1, 0));
  assert.throws(() => revisionKey(2 ** 53, 0));
  assert.throws(() => revisionKey(1.5, 0));
  const big = Buffer.alloc(17);
  big.writeUInt32BE(0x0020_0000, 0);
  big[8] = 0x5f;
  assert.throws(() => revisionOfKey(big));
});
