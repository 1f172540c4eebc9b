/**
 * An interval tree over half-open string intervals [lo, hi): an AVL tree ordered by (lo, hi), each node
 * carrying the largest hi of its subtree, so "which intervals contain this point" visits only subtrees
 * that can hold an answer: O(log n + k).
 *
 * Strings are latin1 (one char per byte), so string order is byte order, as etcd's key ranges mean.
 * Range watchers with the same interval share one node (the caller's value is typically a Set).
 */
import { assert } from '../base/assert.js';

interface Node<V> {
  lo: string;
  hi: string;
  value: V;
  left: Node<V> | null;
  right: Node<V> | null;
  height: number;
  /** The largest hi in this subtree. */
  maxHi: string;
}

function cmp(aLo: string, aHi: string, bLo: string, bHi: string): number {
  if (aLo !== bLo) return aLo < bLo ? -1 : 1;
  if (aHi !== bHi) return aHi < bHi ? -1 : 1;
  return 0;
}

function height<V>(n: Node<V> | null): number {
  return n === null ? 0 : n.height;
}

function update<V>(n: Node<V>): Node<V> {
  n.height = 1 + Math.max(height(n.left), height(n.right));
  let max = n.hi;
  if (n.left !== null && n.left.maxHi > max) max = n.left.maxHi;
  if (n.right !== null && n.right.maxHi > max) max = n.right.maxHi;
  n.maxHi = max;
  return n;
}

function rotateRight<V>(n: Node<V>): Node<V> {
  const l = n.left!;
  n.left = l.right;
  l.right = update(n);
  return update(l);
}

function rotateLeft<V>(n: Node<V>): Node<V> {
  const r = n.right!;
  n.right = r.left;
  r.left = update(n);
  return update(r);
}

function balance<V>(n: Node<V>): Node<V> {
  update(n);
  const bf = height(n.left) - height(n.right);
  if (bf > 1) {
    if (height(n.left!.left) < height(n.left!.right)) n.left = rotateLeft(n.left!);
    return rotateRight(n);
  }
  if (bf < -1) {
    if (height(n.right!.right) < height(n.right!.left)) n.right = rotateRight(n.right!);
    return rotateLeft(n);
  }
  return n;
}

/** A half-open interval [lo, hi) of latin1 strings. */
export interface Interval {
  readonly lo: string;
  readonly hi: string;
}

export class IntervalTree<V> {
  #root: Node<V> | null = null;
  #size = 0;

  /** Distinct intervals held. */
  get size(): number {
    return this.#size;
  }

  get({ lo, hi }: Interval): V | undefined {
    let n = this.#root;
    while (n !== null) {
      const c = cmp(lo, hi, n.lo, n.hi);
      if (c === 0) return n.value;
      n = c < 0 ? n.left : n.right;
    }
    return undefined;
  }

  /** Inserts [lo, hi) with value; the interval must not be present yet. */
  insert({ lo, hi }: Interval, value: V): void {
    assert(lo < hi, () => `empty interval [${lo}, ${hi})`);
    this.#root = this.#insert(this.#root, { lo, hi, value, left: null, right: null, height: 1, maxHi: hi });
    this.#size++;
  }

  #insert(n: Node<V> | null, fresh: Node<V>): Node<V> {
    if (n === null) return fresh;
    const c = cmp(fresh.lo, fresh.hi, n.lo, n.hi);
    assert(c !== 0, 'interval inserted twice');
    if (c < 0) n.left = this.#insert(n.left, fresh);
    else n.right = this.#insert(n.right, fresh);
    return balance(n);
  }

  /** Removes [lo, hi); false when it was not present. */
  delete({ lo, hi }: Interval): boolean {
    const before = this.#size;
    this.#root = this.#delete(this.#root, lo, hi);
    return this.#size < before;
  }

  #delete(n: Node<V> | null, lo: string, hi: string): Node<V> | null {
    if (n === null) return null;
    const c = cmp(lo, hi, n.lo, n.hi);
    if (c < 0) n.left = this.#delete(n.left, lo, hi);
    else if (c > 0) n.right = this.#delete(n.right, lo, hi);
    else {
      this.#size--;
      if (n.left === null) return n.right;
      if (n.right === null) return n.left;
      let succ = n.right;
      while (succ.left !== null) succ = succ.left;
      n.right = this.#removeMin(n.right);
      succ.left = n.left;
      succ.right = n.right;
      return balance(succ);
    }
    return balance(n);
  }

  #removeMin(n: Node<V>): Node<V> | null {
    if (n.left === null) return n.right;
    n.left = this.#removeMin(n.left);
    return balance(n);
  }

  /** Calls fn with the value of every interval containing point (lo <= point < hi). */
  stab(point: string, fn: (value: V) => void): void {
    stabFrom(this.#root, point, fn);
  }

  /** Whether any interval contains point. */
  intersects(point: string): boolean {
    let n = this.#root;
    while (n !== null && n.maxHi > point) {
      if (n.left !== null && n.left.maxHi > point) {
        n = n.left;
        continue;
      }
      // Nothing on the left reaches past point: this node, or the right subtree (if its los allow).
      if (n.lo > point) return false;
      if (n.hi > point) return true;
      n = n.right;
    }
    return false;
  }

  /** Every value, in interval order. */
  *values(): IterableIterator<V> {
    const stack: Array<Node<V>> = [];
    let n = this.#root;
    while (n !== null || stack.length > 0) {
      while (n !== null) {
        stack.push(n);
        n = n.left;
      }
      const top = stack.pop()!;
      yield top.value;
      n = top.right;
    }
  }

  /** @internal Checks the AVL and max-hi invariants (tests). */
  checkInvariants(): void {
    const walk = (n: Node<V> | null): number => {
      if (n === null) return 0;
      const lh = walk(n.left);
      const rh = walk(n.right);
      assert(Math.abs(lh - rh) <= 1, 'unbalanced');
      assert(n.height === 1 + Math.max(lh, rh), 'bad height');
      const max = [n.hi, n.left?.maxHi ?? '', n.right?.maxHi ?? ''].reduce((a, b) => (b > a ? b : a));
      assert(n.maxHi === max, 'bad maxHi');
      if (n.left) assert(cmp(n.left.lo, n.left.hi, n.lo, n.hi) < 0, 'order');
      if (n.right) assert(cmp(n.right.lo, n.right.hi, n.lo, n.hi) > 0, 'order');
      return n.height;
    };
    walk(this.#root);
  }
}

function stabFrom<V>(n: Node<V> | null, point: string, fn: (value: V) => void): void {
  // Recursion depth is the tree height (AVL: < 1.45 log2 n), so the stack stays small.
  if (n === null || n.maxHi <= point) return;
  stabFrom(n.left, point, fn);
  if (n.lo > point) return; // this node and its right subtree all start after point
  if (point < n.hi) fn(n.value);
  stabFrom(n.right, point, fn);
}
