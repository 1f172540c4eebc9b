/**
 * etcd's Range semantics (applyRange in kv-apply.ts) decided from the index alone: which revisions a
 * response holds, in which order, with count and more, without reading a single value. A streamed range
 * (range-stream.ts) then reads the values one chunk at a time.
 *
 * Memory: the plan keeps two numbers per returned key (16 bytes), plus two more while sorting by version,
 * create or mod revision; the index already holds every key, so this stays a fraction of it. Sorting by
 * value needs the values: such requests get no plan and take the materialising path (etcd 3.4 sorts every
 * range in memory, values included).
 */
import { EtcdError } from '../../base/errors.js';
import {
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { IndexHit } from '../../mvcc/key-index.js';
import { rangeEndOf, rangeLimitOf, revisionOf } from './kv-apply.js';

/** The index as a plan needs it (the MVCC store's visitRange). */
export interface RangeIndex {
  visitRange(
    key: Buffer,
    end: Buffer | undefined,
    opts: { revision?: number },
    fn: (key: string, hit: IndexHit) => boolean | void,
  ): { revision: number; atRev: number };
}

export interface RangePlan {
  /** The revision the response header reports (the store's current one). */
  readonly revision: number;
  /** The revision read at: the records of `revs` are the ones visible there. */
  readonly atRev: number;
  /** (main, sub) of each returned key, in response order. */
  readonly revs: readonly number[];
  readonly count: number;
  readonly more: boolean;
  readonly keysOnly: boolean;
}

/** The order etcd applies: NONE with a target other than KEY means ascending. */
function orderOf(req: RangeRequest): RangeRequest_SortOrder {
  const order = req.sortOrder;
  return req.sortTarget !== RangeRequest_SortTarget.KEY && order === RangeRequest_SortOrder.NONE ? RangeRequest_SortOrder.ASCEND : order;
}

/**
 * What a sort by this target compares, from the index: undefined for KEY (index order already), null for
 * a target etcd refuses (InvalidSortOption, raised after the read as applyRange does).
 */
function sortValueOf(target: RangeRequest_SortTarget): ((hit: IndexHit) => number) | undefined | null {
  switch (target) {
    case RangeRequest_SortTarget.KEY:
      return undefined;
    case RangeRequest_SortTarget.VERSION:
      return (hit) => hit.version;
    case RangeRequest_SortTarget.CREATE:
      return (hit) => hit.created;
    case RangeRequest_SortTarget.MOD:
      return (hit) => hit.main;
    default:
      return null;
  }
}

function passesFilters(req: RangeRequest): (hit: IndexHit) => boolean {
  const minMod = req.minModRevision === 0n ? -Infinity : revisionOf(req.minModRevision);
  const maxMod = req.maxModRevision === 0n ? Infinity : revisionOf(req.maxModRevision);
  const minCreate = req.minCreateRevision === 0n ? -Infinity : revisionOf(req.minCreateRevision);
  const maxCreate = req.maxCreateRevision === 0n ? Infinity : revisionOf(req.maxCreateRevision);
  return (hit) => hit.main >= minMod && hit.main <= maxMod && hit.created >= minCreate && hit.created <= maxCreate;
}

/**
 * The plan of a RangeRequest, or undefined when it sorts by value (see the top of this file). Throws what
 * applyRange throws (FutureRev, Compacted, InvalidSortOption), in the same order.
 */
export function planRange(index: RangeIndex, req: RangeRequest): RangePlan | undefined {
  if (req.sortTarget === RangeRequest_SortTarget.VALUE) return undefined;
  const limit = rangeLimitOf(req);
  const fetchAll =
    req.sortOrder !== RangeRequest_SortOrder.NONE || req.minModRevision !== 0n || req.maxModRevision !== 0n ||
    req.minCreateRevision !== 0n || req.maxCreateRevision !== 0n;
  const keep = req.countOnly ? 0 : fetchAll || limit === 0 ? Infinity : limit + 1;
  const order = orderOf(req);
  // An order etcd 3.4 does not know still checks the target, then leaves key order.
  const sortValue = order === RangeRequest_SortOrder.NONE ? undefined : sortValueOf(req.sortTarget);
  const sorted = order === RangeRequest_SortOrder.ASCEND || order === RangeRequest_SortOrder.DESCEND;
  const sortBy = sorted && typeof sortValue === 'function' ? sortValue : undefined;
  const passes = passesFilters(req);
  const revs: number[] = [];
  const sortKeys: number[] = [];
  let count = 0;
  const { revision, atRev } = index.visitRange(req.key, rangeEndOf(req.rangeEnd), { revision: revisionOf(req.revision) }, (_k, hit) => {
    count++;
    if (revs.length / 2 >= keep || !passes(hit)) return;
    revs.push(hit.main, hit.sub);
    if (sortBy !== undefined) sortKeys.push(sortBy(hit));
  });
  if (sortValue === null) throw new EtcdError('InvalidSortOption');
  const descending = order === RangeRequest_SortOrder.DESCEND;
  let ordered = revs;
  if (sortBy !== undefined) ordered = sortPairs(revs, sortKeys, descending);
  else if (descending) ordered = reversePairs(revs);
  const more = limit > 0 && ordered.length / 2 > limit;
  if (more) ordered.length = 2 * limit;
  return { revision, atRev, revs: ordered, count, more, keysOnly: req.keysOnly };
}

/** A stable sort of (main, sub) pairs by their keys: ties keep key order, descending too (as applyRange). */
function sortPairs(revs: number[], keys: number[], descending: boolean): number[] {
  const idx = Array.from({ length: keys.length }, (_, i) => i);
  idx.sort(descending ? (a, b) => keys[b]! - keys[a]! : (a, b) => keys[a]! - keys[b]!);
  const out: number[] = [];
  for (const i of idx) out.push(revs[2 * i]!, revs[2 * i + 1]!);
  return out;
}

function reversePairs(revs: number[]): number[] {
  const out: number[] = [];
  for (let i = revs.length - 2; i >= 0; i -= 2) out.push(revs[i]!, revs[i + 1]!);
  return out;
}
