import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bucketBounds, bucketIndex, Histogram, HISTOGRAM_VALUE_MAX } from './histogram.js';

/** Nearest-rank percentile over the exact samples: what the histogram approximates. */
function naivePercentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? NaN;
}

test('values below 256 us are kept exactly', () => {
  for (let v = 0; v < 256; v++) {
    const { low, high } = bucketBounds(bucketIndex(v));
    assert.equal(low, v);
    assert.equal(high, v);
  }
});

test('every value lies inside its bucket, and a bucket is at most 1/128 of its value wide', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: HISTOGRAM_VALUE_MAX }), (v) => {
      const { low, high } = bucketBounds(bucketIndex(v));
      assert.ok(low <= v && v <= high, `${v} outside [${low}, ${high}]`);
      assert.ok(high - low <= v / 128, `bucket [${low}, ${high}] too wide for ${v}`);
    }),
  );
});

test('buckets tile the value range without gaps or overlaps', () => {
  let expectedLow = 0;
  for (let i = 0; i <= bucketIndex(HISTOGRAM_VALUE_MAX); i++) {
    const { low, high } = bucketBounds(i);
    assert.equal(low, expectedLow, `bucket ${i}`);
    assert.ok(high >= low);
    expectedLow = high + 1;
  }
  assert.equal(expectedLow, HISTOGRAM_VALUE_MAX + 1);
});

test('percentiles agree with exact nearest-rank percentiles to within the bucket precision', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 0, max: 5e6, noNaN: true }), { minLength: 1, maxLength: 400 }),
      fc.constantFrom(0, 1, 10, 50, 90, 99, 99.9, 100),
      (samples, p) => {
        const h = new Histogram();
        for (const s of samples) h.record(s);
        const exact = naivePercentile(samples, p);
        const got = h.percentile(p);
        // Values are rounded to whole microseconds, then known to 1/128 of themselves.
        assert.ok(Math.abs(got - exact) <= exact / 128 + 1, `p${p}: got ${got}, exact ${exact}`);
      },
    ),
  );
});

test('p0 and p100 are the exact min and max; mean is exact', () => {
  const h = new Histogram();
  for (const v of [1234.5, 99_999.25, 17, 500_000.75]) h.record(v);
  assert.equal(h.percentile(0), 17);
  assert.equal(h.percentile(100), 500_000.75);
  assert.equal(h.min, 17);
  assert.equal(h.max, 500_000.75);
  assert.equal(h.mean, (1234.5 + 99_999.25 + 17 + 500_000.75) / 4);
  assert.equal(h.count, 4);
});

test('median of a known distribution: 1..1000 us', () => {
  const h = new Histogram();
  for (let v = 1; v <= 1000; v++) h.record(v);
  // Nearest rank: p50 is the 500th value; 500 sits in a bucket of width 2 ([500, 501]) above 256.
  assert.ok(h.percentile(50) >= 500 && h.percentile(50) <= 501);
  assert.ok(h.percentile(99) >= 990 && h.percentile(99) <= 990 + 990 / 128);
});

test('an empty histogram reports NaN rather than a made-up number', () => {
  const h = new Histogram();
  assert.ok(Number.isNaN(h.percentile(50)));
  assert.ok(Number.isNaN(h.min));
  assert.ok(Number.isNaN(h.mean));
});

test('merging snapshots equals recording everything in one histogram', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 10_000_000 }), { maxLength: 200 }),
      fc.array(fc.integer({ min: 0, max: 10_000_000 }), { maxLength: 200 }),
      (a, b) => {
        const whole = new Histogram();
        const left = new Histogram();
        const right = new Histogram();
        for (const v of a) (whole.record(v), left.record(v));
        for (const v of b) (whole.record(v), right.record(v));
        const merged = Histogram.fromSnapshot(left.snapshot());
        merged.merge(right.snapshot());
        assert.equal(merged.count, whole.count);
        for (const p of [0, 50, 90, 99, 100]) assert.equal(merged.percentile(p), whole.percentile(p));
        assert.deepEqual(merged.snapshot(), whole.snapshot());
      },
    ),
  );
});

test('values beyond the range land in the last bucket and keep the exact max', () => {
  const h = new Histogram();
  h.record(HISTOGRAM_VALUE_MAX * 4);
  assert.equal(bucketIndex(HISTOGRAM_VALUE_MAX * 4), bucketIndex(HISTOGRAM_VALUE_MAX));
  assert.equal(h.percentile(100), HISTOGRAM_VALUE_MAX * 4);
});

test('negative and non-finite values are refused', () => {
  const h = new Histogram();
  assert.throws(() => h.record(-1));
  assert.throws(() => h.record(Number.NaN));
  assert.throws(() => h.record(Infinity));
  assert.throws(() => h.percentile(101));
});
