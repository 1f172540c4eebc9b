// A latency histogram with log-linear buckets (the HDR histogram layout): values below 2^(SUB_BITS+1)
// are exact, above that every power of two is cut into 2^SUB_BITS equal buckets, so any recorded value
// is known to within 1/2^SUB_BITS (0.78%) of itself. Memory is fixed (a few thousand counters) no matter
// how many samples arrive, and two histograms merge by adding counters, which is how worker threads
// hand their results back.

import { assert } from '../src/base/assert.js';

const SUB_BITS = 7;
const SUB_COUNT = 1 << SUB_BITS;
/** Largest value kept exactly by bucket; larger values land in the last bucket (about 38 hours in us). */
export const HISTOGRAM_VALUE_MAX = 2 ** 37 - 1;
const SHIFT_MAX = 37 - 1 - SUB_BITS;
const BUCKET_COUNT = (SHIFT_MAX + 2) * SUB_COUNT;
const TWO_POW_32 = 2 ** 32;

/** floor(log2(v)) for an integer 1 <= v < 2^53, without floating-point rounding surprises. */
function log2Floor(value: number): number {
  if (value < TWO_POW_32) return 31 - Math.clz32(value);
  return 32 + 31 - Math.clz32(Math.floor(value / TWO_POW_32));
}

export function bucketIndex(value: number): number {
  const v = Math.min(Math.max(Math.round(value), 0), HISTOGRAM_VALUE_MAX);
  if (v < SUB_COUNT) return v;
  const shift = log2Floor(v) - SUB_BITS;
  const mantissa = Math.floor(v / 2 ** shift);
  return (shift + 1) * SUB_COUNT + (mantissa - SUB_COUNT);
}

/** The smallest and largest value that map to a bucket. */
export function bucketBounds(index: number): { low: number; high: number } {
  assert(Number.isInteger(index) && index >= 0 && index < BUCKET_COUNT, () => `bucket ${index} out of range`);
  if (index < 2 * SUB_COUNT) return { low: index, high: index };
  const shift = Math.floor(index / SUB_COUNT) - 1;
  const mantissa = SUB_COUNT + (index % SUB_COUNT);
  return { low: mantissa * 2 ** shift, high: (mantissa + 1) * 2 ** shift - 1 };
}

export interface HistogramSnapshot {
  counts: Float64Array;
  count: number;
  sum: number;
  min: number;
  max: number;
}

export class Histogram {
  #counts = new Float64Array(BUCKET_COUNT);
  #count = 0;
  #sum = 0;
  #min = Infinity;
  #max = -Infinity;

  /** Records one value (latency in microseconds, by convention of this tool). */
  record(value: number): void {
    assert(Number.isFinite(value) && value >= 0, () => `histogram value must be finite and >= 0, got ${value}`);
    const index = bucketIndex(value);
    this.#counts[index] = (this.#counts[index] ?? 0) + 1;
    this.#count += 1;
    this.#sum += value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
  }

  get count(): number {
    return this.#count;
  }
  get min(): number {
    return this.#count === 0 ? NaN : this.#min;
  }
  get max(): number {
    return this.#count === 0 ? NaN : this.#max;
  }
  get mean(): number {
    return this.#count === 0 ? NaN : this.#sum / this.#count;
  }

  /**
   * Nearest-rank percentile (p in [0, 100]): the value below or at which p% of samples fall, reported as
   * the upper edge of its bucket clamped to the exact recorded min and max, so p0 = min and p100 = max.
   */
  percentile(p: number): number {
    assert(p >= 0 && p <= 100, () => `percentile must be within [0, 100], got ${p}`);
    if (this.#count === 0) return NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.#counts[i] ?? 0;
      if (seen >= rank) return Math.min(Math.max(bucketBounds(i).high, this.#min), this.#max);
    }
    return this.#max;
  }

  merge(other: Histogram | HistogramSnapshot): void {
    const snap = other instanceof Histogram ? other.snapshot() : other;
    assert(snap.counts.length === BUCKET_COUNT, 'histogram layouts differ');
    if (snap.count === 0) return;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      this.#counts[i] = (this.#counts[i] ?? 0) + (snap.counts[i] ?? 0);
    }
    this.#count += snap.count;
    this.#sum += snap.sum;
    this.#min = Math.min(this.#min, snap.min);
    this.#max = Math.max(this.#max, snap.max);
  }

  /** A structured-clone friendly copy, for postMessage between threads. */
  snapshot(): HistogramSnapshot {
    return { counts: this.#counts.slice(), count: this.#count, sum: this.#sum, min: this.#min, max: this.#max };
  }

  static fromSnapshot(snap: HistogramSnapshot): Histogram {
    const h = new Histogram();
    h.merge(snap);
    return h;
  }
}
