/**
 * The simulator's only source of randomness: sfc32 (Chris Doty-Humphrey's small fast counting generator),
 * seeded through a splitmix-style hash. Every concern (network, scenario, each node's raft) draws from its
 * own named stream, so adding a draw in one place does not shift the choices made in another and a seed
 * keeps replaying the same run as the simulator grows.
 */
import type { Rng } from '../../src/raft/contract.js';
import { assert } from '../../src/base/assert.js';

const TWO_POW_32 = 0x1_0000_0000;

function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the label's UTF-16 code units: stable across runs and platforms. */
function hashLabel(label: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < label.length; i++) {
    h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

export class Prng implements Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  private constructor(a: number, b: number, c: number, d: number) {
    this.#a = a >>> 0;
    this.#b = b >>> 0;
    this.#c = c >>> 0;
    this.#d = d >>> 0;
    // The first outputs of sfc32 are weakly mixed; discard them as the author recommends.
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** The stream named `label` of the run seeded with `seed` (a safe non-negative integer). */
  static stream(seed: number, label: string): Prng {
    assert(Number.isSafeInteger(seed) && seed >= 0, () => `prng: bad seed ${seed}`);
    const lo = seed % TWO_POW_32;
    const hi = Math.floor(seed / TWO_POW_32);
    const l = hashLabel(label);
    return new Prng(
      mix32(lo ^ 0x9e3779b9),
      mix32(hi ^ l ^ 0x7f4a7c15),
      mix32(l + 0x632be5ab + lo),
      mix32(lo ^ hi ^ 0xbf58476d ^ Math.imul(l, 3)),
    );
  }

  nextU32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** An integer in [0, n), without modulo bias (rejection sampling). */
  intn(n: number): number {
    assert(Number.isInteger(n) && n > 0 && n <= TWO_POW_32, () => `prng: bad bound ${n}`);
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** A float in [0, 1) with 32 bits of randomness (plenty for probabilities). */
  float(): number {
    return this.nextU32() / TWO_POW_32;
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p;
  }

  /** An integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    assert(hi >= lo, () => `prng: empty range [${lo}, ${hi}]`);
    return lo + this.intn(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'prng: pick from an empty list');
    return items[this.intn(items.length)] as T;
  }

  /** A new generator derived from this one's next draws; use it to hand out sub-streams at run time. */
  split(label: string): Prng {
    const l = hashLabel(label);
    return new Prng(this.nextU32() ^ l, this.nextU32(), this.nextU32() ^ mix32(l), this.nextU32());
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.intn(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }
}
