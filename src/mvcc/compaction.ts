/**
 * The background halves of compaction and HashKV, run one at a time from the store's job queue.
 *
 * Compaction at rev first compacts the in-memory index (in chunks of keys), then deletes from the backend,
 * in bounded batches with a pause between them, every record at or below rev that the compacted index no
 * longer holds. "Still in the index" is exactly etcd's keep set (the newest put at or before rev of each
 * key live at rev, plus everything above rev), so no separate set of a million revisions is built.
 * A batch is committed before the next one starts; the finished revision is written with the last batch,
 * so a restart resumes an interrupted compaction from the scheduled revision in meta.
 */
import { type Backend } from '../storage/backend/backend.js';
import { crc32c } from './crc32c.js';
import { decodeKeyOf } from './kv-codec.js';
import { isTombstoneKey, mainOfKey, revisionKey, subOfKey } from './revision.js';
import { type TreeIndex } from './tree-index.js';

export const scheduledCompactKey = Buffer.from('scheduledCompactRev');
export const finishedCompactKey = Buffer.from('finishedCompactRev');

export interface JobContext {
  readonly backend: Backend;
  readonly tree: TreeIndex;
  /** Keys per index chunk and records per backend batch (etcd's compaction batch limit). */
  readonly batchLimit: number;
  /** Pause between backend batches, so writes and their commits get the disk in between. */
  readonly pauseMs: number;
  /**
   * Longest a synchronous step may run: unlike etcd's goroutine, a step here holds the event loop, so a
   * batch also ends when this is spent (checked every few dozen records).
   */
  readonly stepBudgetMs: number;
  /** True once the store is closing: a job stops at its next batch boundary. */
  stopped(): boolean;
  /**
   * Resolves once no read pinned below rev is in progress (or the store is closing): a streamed range
   * reads the records visible at its revision long after the index was consulted, and compaction at rev
   * would delete some of them.
   */
  readersBelow(rev: number): Promise<void>;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
}

/** The smallest key above k: where the next batch of a scan starts. */
function after(k: Buffer): Buffer {
  return Buffer.concat([k, Buffer.alloc(1)]);
}

/** Calls fn over [start, end) of the key bucket for one batch: batchLimit records or the step budget. */
function scanStep(ctx: JobContext, range: { start: Buffer; end: Buffer }, fn: (k: Buffer, v: Buffer) => void): { last: Buffer | undefined; done: boolean } {
  const deadline = performance.now() + ctx.stepBudgetMs;
  let last: Buffer | undefined;
  let n = 0;
  let outOfTime = false;
  const seen = ctx.backend.forEach('key', { ...range, limit: ctx.batchLimit }, (k, v) => {
    last = k;
    fn(k, v);
    if ((++n & 31) === 0) outOfTime = performance.now() > deadline;
    return !outOfTime;
  });
  return { last, done: !outOfTime && seen < ctx.batchLimit };
}

/** Runs a whole compaction at rev; false if the store stopped it before it finished. */
export async function runCompaction(ctx: JobContext, rev: number): Promise<boolean> {
  let from: string | undefined;
  do {
    from = ctx.tree.compactChunk(rev, { fromKey: from, maxKeys: ctx.batchLimit, budgetMs: ctx.stepBudgetMs });
    if (from !== undefined) await pause(0);
  } while (from !== undefined);
  await ctx.readersBelow(rev);
  const end = revisionKey(rev + 1, 0);
  let start = revisionKey(0, 0);
  for (;;) {
    if (ctx.stopped()) return false;
    const doomed: Buffer[] = [];
    const step = scanStep(ctx, { start, end }, (k, v) => {
      if (!ctx.tree.contains(decodeKeyOf(v), mainOfKey(k), subOfKey(k))) doomed.push(k);
    });
    for (const k of doomed) ctx.backend.delete('key', k);
    if (step.done) {
      ctx.backend.put('meta', finishedCompactKey, revisionKey(rev, 0));
      await ctx.backend.commit();
      return true;
    }
    start = after(step.last!);
    await ctx.backend.commit();
    await pause(ctx.pauseMs);
  }
}

const keyBucketName = Buffer.from('key');

/**
 * etcd's HashByRev: CRC-32C of "key" and every backend record up to rev, leaving out records at or below
 * the compacted revision that Keep(rev) does not hold (unless it holds nothing at all, as etcd does).
 * Records are byte-identical to etcd's, so the hash is too. Revisions above rev (writes that arrive while
 * this runs) are outside the scan; compactions wait for the job queue, so nothing below rev changes.
 */
export async function hashKv(ctx: JobContext, opts: { rev: number; compactRev: number }): Promise<number> {
  await ctx.backend.commit();
  const keepAll = !ctx.tree.anyKept(opts.rev);
  const keep = { main: 0, sub: 0 };
  let crc = crc32c(0, keyBucketName);
  const end = revisionKey(opts.rev + 1, 0);
  let start = revisionKey(0, 0);
  for (;;) {
    const step = scanStep(ctx, { start, end }, (k, v) => {
      const main = mainOfKey(k);
      if (main <= opts.compactRev && !keepAll) {
        const kept = !isTombstoneKey(k) && ctx.tree.keep(decodeKeyOf(v), opts.rev, keep);
        if (!kept || keep.main !== main || keep.sub !== subOfKey(k)) return;
      }
      crc = crc32c(crc32c(crc, k), v);
    });
    if (step.done) return crc;
    start = after(step.last!);
    await pause(0);
  }
}
