/**
 * A set of watchers indexed for "who watches this key": single-key watchers in a map by key, range
 * watchers in an interval tree with one node per distinct range (many watchers of one prefix share it).
 */
import { assert } from '../base/assert.js';
import { IntervalTree } from './interval-tree.js';
import type { Watcher } from './watcher.js';

export class WatcherGroup {
  readonly #keys = new Map<string, Set<Watcher>>();
  readonly #ranges = new IntervalTree<Set<Watcher>>();
  readonly #all = new Set<Watcher>();

  get size(): number {
    return this.#all.size;
  }

  has(w: Watcher): boolean {
    return this.#all.has(w);
  }

  add(w: Watcher): void {
    assert(!this.#all.has(w), 'watcher added twice to a group');
    this.#all.add(w);
    if (w.end === undefined) {
      let set = this.#keys.get(w.key);
      if (set === undefined) this.#keys.set(w.key, (set = new Set()));
      set.add(w);
      return;
    }
    const interval = { lo: w.key, hi: w.end };
    const set = this.#ranges.get(interval);
    if (set !== undefined) set.add(w);
    else this.#ranges.insert(interval, new Set([w]));
  }

  /** Removes w; false when it was not in the group. */
  delete(w: Watcher): boolean {
    if (!this.#all.delete(w)) return false;
    if (w.end === undefined) {
      const set = this.#keys.get(w.key)!;
      set.delete(w);
      if (set.size === 0) this.#keys.delete(w.key);
      return true;
    }
    const interval = { lo: w.key, hi: w.end };
    const set = this.#ranges.get(interval);
    assert(set !== undefined && set.delete(w), 'range watcher missing from its interval');
    if (set.size === 0) this.#ranges.delete(interval);
    return true;
  }

  /** Whether any watcher of the group watches key. */
  contains(key: string): boolean {
    return this.#keys.has(key) || this.#ranges.intersects(key);
  }

  /** Calls fn for every watcher of the group that watches key (each once). */
  forEachWatching(key: string, fn: (w: Watcher) => void): void {
    const single = this.#keys.get(key);
    if (single !== undefined) for (const w of single) fn(w);
    this.#ranges.stab(key, (set) => {
      for (const w of set) fn(w);
    });
  }

  values(): IterableIterator<Watcher> {
    return this.#all.values();
  }

  clear(): void {
    for (const w of [...this.#all]) this.delete(w);
  }
}
