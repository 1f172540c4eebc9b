/**
 * The simulated network: every message sent gets a delivery round drawn from the link's fault profile.
 * Links are FIFO unless a message is picked to be reordered (it may then overtake earlier ones), which is
 * what TCP between two peers looks like until the connection breaks. Partitions cut links both for new
 * messages and for messages already in flight (a broken connection loses its buffer).
 */
import type { NodeId } from '../../src/raft/types.js';
import { assert } from '../../src/base/assert.js';
import type { Prng } from './prng.js';

export interface LinkFaults {
  readonly dropProb: number;
  readonly duplicateProb: number;
  /** Chance that a message ignores FIFO order on its link and may overtake earlier ones. */
  readonly reorderProb: number;
  readonly delayMinRounds: number;
  readonly delayMaxRounds: number;
}

export const NO_FAULTS: LinkFaults = {
  dropProb: 0,
  duplicateProb: 0,
  reorderProb: 0,
  delayMinRounds: 1,
  delayMaxRounds: 1,
};

export interface Envelope<M> {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly msg: M;
  readonly dueRound: number;
  readonly seq: number;
}

export type SendOutcome = 'queued' | 'dropped' | 'blocked' | 'overflow';

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  blocked: number;
  duplicated: number;
  overflowed: number;
}

/** A binary min-heap of envelopes by (dueRound, seq): deterministic order for equal rounds. */
class EnvelopeHeap<M> {
  readonly #items: Envelope<M>[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Envelope<M> | undefined {
    return this.#items[0];
  }

  push(e: Envelope<M>): void {
    const a = this.#items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!EnvelopeHeap.less(a[i] as Envelope<M>, a[p] as Envelope<M>)) break;
      [a[i], a[p]] = [a[p] as Envelope<M>, a[i] as Envelope<M>];
      i = p;
    }
  }

  pop(): Envelope<M> | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.#siftDown(0);
    }
    return top;
  }

  #siftDown(start: number): void {
    const a = this.#items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && EnvelopeHeap.less(a[l] as Envelope<M>, a[m] as Envelope<M>)) m = l;
      if (r < a.length && EnvelopeHeap.less(a[r] as Envelope<M>, a[m] as Envelope<M>)) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m] as Envelope<M>, a[i] as Envelope<M>];
      i = m;
    }
  }

  static less<M>(x: Envelope<M>, y: Envelope<M>): boolean {
    return x.dueRound < y.dueRound || (x.dueRound === y.dueRound && x.seq < y.seq);
  }
}

/** Node ids in the simulator are small, so a link fits in one number (cheaper than a string key). */
const LINK_ID_LIMIT = 1 << 20;

function linkKey(from: NodeId, to: NodeId): number {
  const f = Number(from);
  const t = Number(to);
  assert(f < LINK_ID_LIMIT && t < LINK_ID_LIMIT, 'network: node id too large for the simulator');
  return f * LINK_ID_LIMIT + t;
}

export class SimNetwork<M> {
  readonly #rng: Prng;
  readonly #queueMax: number;
  readonly #heap = new EnvelopeHeap<M>();
  /** Last delivery round handed out per link, to keep links FIFO. */
  readonly #lastDue = new Map<number, number>();
  readonly #blocked = new Set<number>();
  #faults: LinkFaults;
  #seq = 0;
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, blocked: 0, duplicated: 0, overflowed: 0 };

  constructor(rng: Prng, options: { faults?: LinkFaults; queueMax: number }) {
    this.#rng = rng;
    this.#queueMax = options.queueMax;
    this.#faults = options.faults ?? NO_FAULTS;
  }

  get faults(): LinkFaults {
    return this.#faults;
  }

  setFaults(faults: LinkFaults): void {
    assert(faults.delayMinRounds >= 1 && faults.delayMaxRounds >= faults.delayMinRounds, 'network: bad delays');
    this.#faults = faults;
  }

  get inFlight(): number {
    return this.#heap.size;
  }

  send(from: NodeId, to: NodeId, msg: M, nowRound: number): SendOutcome {
    this.stats.sent++;
    if (this.#blocked.has(linkKey(from, to))) {
      this.stats.blocked++;
      return 'blocked';
    }
    if (this.#rng.chance(this.#faults.dropProb)) {
      this.stats.dropped++;
      return 'dropped';
    }
    if (!this.#enqueue(from, to, msg, nowRound)) return 'overflow';
    if (this.#rng.chance(this.#faults.duplicateProb)) {
      this.stats.duplicated++;
      this.#enqueue(from, to, msg, nowRound);
    }
    return 'queued';
  }

  #enqueue(from: NodeId, to: NodeId, msg: M, nowRound: number): boolean {
    if (this.#heap.size >= this.#queueMax) {
      this.stats.overflowed++;
      return false;
    }
    const f = this.#faults;
    let due = nowRound + this.#rng.range(f.delayMinRounds, f.delayMaxRounds);
    const key = linkKey(from, to);
    if (!this.#rng.chance(f.reorderProb)) {
      due = Math.max(due, this.#lastDue.get(key) ?? 0);
      this.#lastDue.set(key, due);
    }
    this.#heap.push({ from, to, msg, dueRound: due, seq: this.#seq++ });
    return true;
  }

  /**
   * Messages due at or before nowRound, in delivery order. Messages on links cut since they were sent
   * are dropped and passed to onCut (the sender's transport would notice the broken connection).
   */
  deliverDue(nowRound: number, onCut?: (e: Envelope<M>) => void): Envelope<M>[] {
    const out: Envelope<M>[] = [];
    for (let top = this.#heap.peek(); top !== undefined && top.dueRound <= nowRound; top = this.#heap.peek()) {
      this.#heap.pop();
      if (this.#blocked.has(linkKey(top.from, top.to))) {
        this.stats.blocked++;
        onCut?.(top);
        continue;
      }
      this.stats.delivered++;
      out.push(top);
    }
    return out;
  }

  /** Symmetric partition: links between nodes of different groups are cut; nodes in no group are isolated. */
  partition(groups: readonly (readonly NodeId[])[], all: readonly NodeId[]): void {
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of all) {
      for (const b of all) {
        if (a === b) continue;
        const ga = groupOf.get(a);
        if (ga === undefined || ga !== groupOf.get(b)) this.#blocked.add(linkKey(a, b));
      }
    }
  }

  /** One-way cut: `from` can no longer reach `to`, while `to` still reaches `from`. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.#blocked.add(linkKey(from, to));
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.#blocked.has(linkKey(from, to));
  }

  get cutLinks(): number {
    return this.#blocked.size;
  }

  heal(): void {
    this.#blocked.clear();
  }
}
