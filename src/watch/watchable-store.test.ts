/**
 * Model-based, seeded random tests of the watchable store over the real MVCC store and backend.
 *
 * A run interleaves write txns, watcher creates (past, current and future start revisions, ranges,
 * prefixes, filters, prev_kv, fragments, client-chosen ids) and cancels, compactions, progress requests,
 * streams whose transport blocks and drains, streams that close, and catch-up rounds, all driven by one
 * seed. Small limits make victims, batching and fragmenting common. Every response every stream
 * received is then checked against the model history: ordered, no duplicates, no gaps, all events of a
 * revision in one response, every header revision a valid bookmark, prev_kv right, memory bounded.
 *
 * A failure prints the seed; WATCH_SEED=<n> replays it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { WatchResponse, WatchCreateRequest_FilterType as FilterType, type WatchCreateRequest } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType, type Event, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { KvStore } from '../mvcc/kv-store.js';
import { Backend } from '../storage/backend/backend.js';
import type { WatchLimits } from './limits.js';
import { mvccHistory } from './mvcc-history.js';
import { WatchStream, type ResponseSink } from './watch-stream.js';
import { splitFramed } from './watch-response.js';
import { WatchableStore } from './watchable-store.js';

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent } as unknown as Logger;
const B = (s: string): Buffer => Buffer.from(s, 'latin1');

/** mulberry32: small, seedable, good enough to drive a test. */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const keys = ['a', 'b', 'ba', 'bb', 'c', 'd', 'da', 'e', '\u00ff'];
/** [key, rangeEnd] as a client sends them ('' end: single key; '\0': from key). */
const shapes: ReadonlyArray<[string, string]> = [
  ['a', ''], ['ba', ''], ['\u00ff', ''], ['b', 'c'], ['b', 'da'], ['c', '\0'], ['', '\0'], ['a', 'e'], ['d', 'e'],
];

interface Spec {
  key: string;
  end: string;
  startRevision: number;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  fragment: boolean;
  watchId: bigint;
}

class TestSink implements ResponseSink {
  blocked = false;
  readonly responses: WatchResponse[] = [];
  failed: EtcdError | undefined;
  write(framed: Buffer, count: number): boolean {
    const messages = splitFramed(framed);
    assert.equal(messages.length, count);
    for (const bytes of messages) this.responses.push(WatchResponse.decode(bytes));
    return !this.blocked;
  }
  fail(err: EtcdError): void {
    this.failed = err;
  }
}

interface Client {
  stream: WatchStream;
  sink: TestSink;
  specs: Spec[];
  /** Ids the test knows are taken on this stream (client-chosen ones). */
  chosenIds: Set<bigint>;
  closed: boolean;
}

/** The history the store should have shown: every event, and the key space after each revision. */
class Model {
  readonly events: Array<{ rev: number; ev: Event }> = [];
  readonly states: Array<Map<string, KeyValue>> = [new Map(), new Map()];
  readonly compactions: number[] = [];
  record(rev: number, events: readonly Event[]): void {
    const state = new Map(this.states[rev - 1]!);
    for (const ev of events) {
      this.events.push({ rev, ev });
      const k = ev.kv!.key.toString('latin1');
      if (ev.type === Event_EventType.PUT) state.set(k, ev.kv!);
      else state.delete(k);
    }
    assert.equal(this.states.length, rev);
    this.states.push(state);
  }
  get compactRev(): number {
    return this.compactions.at(-1) ?? -1;
  }
}

function inRange(spec: Spec, key: string): boolean {
  const k = spec.key === '' ? '\0' : spec.key;
  if (spec.end === '') return key === k;
  if (spec.end === '\0') return key >= k;
  return key >= k && key < spec.end;
}

function expectedOf(model: Model, rec: { spec: Spec; start: number; expected?: Array<{ rev: number; ev: Event }> }): Array<{ rev: number; ev: Event }> {
  rec.expected ??= expectedFor(model, rec.spec, rec.start).filter((x) => !optional(model, rec.start, x.ev));
  return rec.expected;
}

/**
 * As in etcd, a watcher starting exactly at a compacted revision gets what compaction kept there: a
 * delete at that revision may be gone. Such events are left out of both sides of the comparison.
 */
function optional(model: Model, start: number, ev: Event): boolean {
  return ev.type === Event_EventType.DELETE && Number(ev.kv!.modRevision) === start && model.compactions.includes(start);
}

function expectedFor(model: Model, spec: Spec, start: number): Array<{ rev: number; ev: Event }> {
  return model.events.filter(({ rev, ev }) => rev >= start && inRange(spec, ev.kv!.key.toString('latin1')) &&
    !(spec.noPut && ev.type === Event_EventType.PUT) && !(spec.noDelete && ev.type === Event_EventType.DELETE));
}

const smallLimits: Partial<WatchLimits> = {
  streamQueuedResponsesMax: 4,
  streamQueuedBytesMax: 1500,
  queuedBytesMax: 4000,
  streamQueuedControlMax: 10_000,
  syncWatchersMax: 3,
  syncRecordsMax: 7,
  syncBytesMax: 600,
};

class Run {
  readonly rng: Rng;
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-test-'));
  readonly backend = Backend.open(this.dir);
  readonly kv = KvStore.open(this.backend, { compactionPauseMs: 0, compactionBatchLimit: 3 });
  readonly model = new Model();
  readonly pending: Array<() => void> = [];
  readonly store: WatchableStore;
  readonly clients: Client[] = [];
  maxQueued = 0;

  constructor(seed: number, limits: Partial<WatchLimits> = smallLimits) {
    this.rng = new Rng(seed);
    this.store = new WatchableStore({ history: mvccHistory(() => this.kv), log: silent, limits, schedule: (run) => this.pending.push(run) });
  }

  async dispose(): Promise<void> {
    await this.kv.close();
    await this.backend.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  openClient(): Client {
    const sink = new TestSink();
    const stream = new WatchStream(this.store, sink, {
      header: (revision) => ({ clusterId: 1n, memberId: 2n, revision: BigInt(revision), raftTerm: 3n }),
      fragmentBytesMax: 300,
    });
    const c: Client = { stream, sink, specs: [], chosenIds: new Set(), closed: false };
    this.clients.push(c);
    return c;
  }

  write(): void {
    const txn = this.kv.write();
    const used = new Set<string>();
    for (let n = 1 + this.rng.int(3); n > 0; n--) {
      const k = this.rng.pick(keys);
      if (used.has(k)) continue;
      used.add(k);
      const live = txn.range(B(k), undefined).kvs.length > 0;
      if (live && this.rng.chance(0.3)) txn.deleteRange(B(k), undefined);
      else txn.put(B(k), B('v'.repeat(this.rng.int(40)) + String(this.model.states.length)), 0n);
    }
    const { revision, events } = txn.end();
    if (events.length === 0) return;
    this.model.record(revision, events);
    this.store.notify(events, revision);
  }

  create(c: Client): void {
    const [key, end] = this.rng.pick(shapes);
    const cur = this.kv.revision;
    const r = this.rng.next();
    const startRevision = r < 0.4 ? 0 : r < 0.85 ? 1 + this.rng.int(cur) : cur + 1 + this.rng.int(3);
    const chosen = this.rng.chance(0.2) ? BigInt(1000 + this.rng.int(5)) : 0n;
    const spec: Spec = {
      key, end, startRevision, watchId: chosen,
      prevKv: this.rng.chance(0.4), noPut: this.rng.chance(0.1), noDelete: this.rng.chance(0.15), fragment: this.rng.chance(0.3),
    };
    const req: WatchCreateRequest = {
      key: B(key), rangeEnd: B(end), startRevision: BigInt(startRevision), progressNotify: false,
      filters: [...(spec.noPut ? [FilterType.NOPUT] : []), ...(spec.noDelete ? [FilterType.NODELETE] : [])],
      prevKv: spec.prevKv, watchId: chosen, fragment: spec.fragment,
    };
    c.specs.push(spec);
    if (chosen !== 0n) c.chosenIds.add(chosen);
    c.stream.create(req);
  }

  step(): void {
    const r = this.rng.next();
    const open = this.clients.filter((c) => !c.closed);
    const c = open.length > 0 ? this.rng.pick(open) : this.openClient();
    if (r < 0.55) this.write();
    else if (r < 0.63) this.create(c);
    else if (r < 0.66) this.cancelOne(c);
    else if (r < 0.67) this.compact();
    else if (r < 0.75) this.toggle(c);
    else if (r < 0.9) this.runRounds(1 + this.rng.int(3));
    else if (r < 0.92) c.stream.requestProgress();
    else if (r < 0.925) this.closeClient(c);
    this.checkMemory();
    for (const client of this.clients) client.stream.checkInvariants();
  }

  cancelOne(c: Client): void {
    const ids = [...new Set(c.sink.responses.filter((x) => x.created && !x.canceled).map((x) => x.watchId))];
    if (ids.length > 0) c.stream.cancel(this.rng.pick(ids));
  }

  compact(): void {
    const lo = Math.max(this.model.compactRev + 1, 2);
    const cur = this.kv.revision;
    if (lo > cur) return;
    const rev = lo + this.rng.int(cur - lo + 1);
    void this.kv.compact(rev).done;
    this.model.compactions.push(rev);
  }

  toggle(c: Client): void {
    c.sink.blocked = !c.sink.blocked;
    if (!c.sink.blocked) c.stream.onDrain();
  }

  closeClient(c: Client): void {
    c.closed = true;
    c.stream.close();
  }

  runRounds(n: number): void {
    for (let i = 0; i < n && this.pending.length > 0; i++) this.pending.shift()!();
  }

  checkMemory(): void {
    // A stream queues only while under its limits, so it ends at most one response (or one set of
    // fragments) past them; nothing grows with the length of the history or the number of victims.
    const l = this.store.limits;
    const bound = l.streamQueuedBytesMax + l.syncBytesMax + 4000;
    for (const c of this.clients) assert.ok(c.stream.queuedBytes <= bound, `stream queued ${c.stream.queuedBytes} > ${bound}`);
    assert.ok(this.store.queuedBytes <= l.queuedBytesMax + bound, `store queued ${this.store.queuedBytes}`);
    this.maxQueued = Math.max(this.maxQueued, this.store.queuedBytes);
    if (this.store.stats().victims > 0) coverage.victims++;
  }

  /** Unblocks everything and runs the loop until no watcher is behind. */
  settle(): void {
    for (let guard = 0; guard < 100_000; guard++) {
      for (const c of this.clients) {
        if (c.closed) continue;
        c.sink.blocked = false;
        c.stream.onDrain();
      }
      if (this.pending.length === 0) break;
      this.runRounds(this.pending.length);
    }
    const s = this.store.stats();
    assert.equal(s.unsynced + s.victims, 0, `still behind after settling: ${JSON.stringify(s)}`);
  }
}

const coverage = { victims: 0, fragments: 0, compacted: 0, bookmarks: 0, catchUpBatches: 0, prevKvs: 0 };

interface Received {
  spec: Spec;
  start: number;
  expected?: Array<{ rev: number; ev: Event }>;
  events: Event[];
  compactRev?: number;
  canceled: boolean;
}

/** Replays one stream's responses in order and checks each against the model. */
function checkClient(run: Run, c: Client): Received[] {
  const specs = [...c.specs];
  const live = new Map<bigint, Received>();
  const all: Received[] = [];
  let fragments: Event[] = [];
  for (const r of c.sink.responses) {
    const rev = Number(r.header!.revision);
    if (r.created) {
      const spec = specs.shift();
      assert.ok(spec !== undefined, 'a created response nobody asked for');
      if (r.canceled) {
        assert.equal(r.watchId, -1n);
        assert.equal(r.cancelReason, 'mvcc: duplicate watch ID provided on the WatchStream');
        assert.ok(spec.watchId !== 0n, 'an auto id was refused');
        continue;
      }
      if (spec.watchId !== 0n) assert.equal(r.watchId, spec.watchId);
      assert.ok(!live.has(r.watchId), `id ${r.watchId} given twice`);
      const rec: Received = { spec, start: spec.startRevision === 0 ? rev + 1 : spec.startRevision, events: [], canceled: false };
      live.set(r.watchId, rec);
      all.push(rec);
      continue;
    }
    if (r.watchId === -1n) {
      for (const rec of live.values()) if (rec.compactRev === undefined) checkBookmark(run, rec, rev, 'progress request');
      continue;
    }
    const rec = live.get(r.watchId);
    assert.ok(rec !== undefined, `a response for unknown watch id ${r.watchId}`);
    if (r.canceled) {
      if (r.compactRevision !== 0n) {
        assert.equal(rev, 0, 'a compacted response carries header revision 0');
        assert.ok(run.model.compactions.includes(Number(r.compactRevision)));
        rec.compactRev = Number(r.compactRevision);
        coverage.compacted++;
        continue; // the id stays taken until the client cancels it
      }
      rec.canceled = true;
      live.delete(r.watchId);
      continue;
    }
    assert.ok(rec.compactRev === undefined, 'events after the compacted response');
    fragments.push(...r.events);
    if (r.fragment) {
      coverage.fragments++;
      continue;
    }
    if (new Set(r.events.map((e) => e.kv!.modRevision)).size > 1) coverage.catchUpBatches++;
    const events = fragments.filter((e) => !optional(run.model, rec.start, e));
    fragments = [];
    checkAtomic(run, rec, events);
    rec.events.push(...events);
    checkBookmark(run, rec, rev, `response with ${events.length} events`);
  }
  return all;
}

function checkAtomic(run: Run, rec: Received, events: Event[]): void {
  const expected = expectedOf(run.model, rec);
  const revs = new Set(events.map((e) => Number(e.kv!.modRevision)));
  for (const rev of revs) {
    const want = expected.filter((x) => x.rev === rev).length;
    const got = events.filter((e) => Number(e.kv!.modRevision) === rev).length;
    assert.equal(got, want, `revision ${rev} split across responses (${got} of ${want} events)`);
  }
}

/** After a response with header revision rev, the watcher has everything it should at or below rev. */
function checkBookmark(run: Run, rec: Received, rev: number, what: string): void {
  const due = expectedOf(run.model, rec).filter((x) => x.rev <= rev).length;
  coverage.bookmarks++;
  assert.equal(rec.events.length, due, `${what}: header revision ${rev} is not a bookmark for ${describe(rec)}: ${due} due`);
}

function describe(rec: Received): string {
  return JSON.stringify({ ...rec.spec, watchId: String(rec.spec.watchId), start: rec.start, got: rec.events.length });
}

function checkHistory(run: Run, rec: Received, settled: boolean): void {
  const expected = expectedOf(run.model, rec);
  assert.ok(rec.events.length <= expected.length, 'more events than history holds');
  rec.events.forEach((got, i) => {
    const want = expected[i]!;
    assert.equal(got.type, want.ev.type, `event ${i}: type`);
    assert.deepEqual(got.kv, want.ev.kv, `event ${i}: kv (a gap, duplicate or reorder)`);
    checkPrevKv(run, rec, got, want.rev);
  });
  if (settled && rec.compactRev === undefined && !rec.canceled) {
    assert.equal(rec.events.length, expected.length, `watcher ${describe(rec)} missed events`);
  }
}

function checkPrevKv(run: Run, rec: Received, got: Event, rev: number): void {
  const isCreate = got.type === Event_EventType.PUT && got.kv!.createRevision === got.kv!.modRevision;
  if (!rec.spec.prevKv || isCreate) {
    assert.equal(got.prevKv, undefined, 'prev_kv sent unasked or on a create');
    return;
  }
  const before = run.model.states[rev - 1]!.get(got.kv!.key.toString('latin1'));
  if (got.prevKv !== undefined) coverage.prevKvs++;
  if (got.prevKv !== undefined) assert.deepEqual(got.prevKv, before, 'wrong prev_kv');
  else assert.ok(run.model.compactRev > rev - 1, `prev_kv missing at ${rev} though ${rev - 1} is not compacted`);
}

async function randomRun(seed: number, steps: number): Promise<{ watchers: number; events: number; maxQueued: number }> {
  const run = new Run(seed);
  try {
    run.openClient();
    run.openClient();
    for (let i = 0; i < steps; i++) {
      run.step();
      // Let physical compaction batches run between steps now and then.
      if (i % 97 === 0) await new Promise((ok) => setImmediate(ok));
    }
    run.settle();
    for (const c of run.clients) if (!c.closed) c.stream.requestProgress();
    let watchers = 0;
    for (const c of run.clients) {
      assert.equal(c.sink.failed, undefined);
      for (const rec of checkClient(run, c)) {
        checkHistory(run, rec, !c.closed);
        watchers++;
      }
    }
    return { watchers, events: run.model.events.length, maxQueued: run.maxQueued };
  } catch (err) {
    throw new Error(`seed ${seed} failed (replay: WATCH_SEED=${seed} node --test dist/src/watch/watchable-store.test.js): ${(err as Error).stack}`);
  } finally {
    await run.dispose();
  }
}

test('random runs: ordered, complete, atomic per revision, bookmarks valid, prev_kv right, memory bounded', async () => {
  const fixed = process.env['WATCH_SEED'];
  const seeds = fixed !== undefined ? [Number(fixed)] : [1, 2, 3, 4, 5, 6, 7, 8];
  let watchers = 0;
  for (const seed of seeds) watchers += (await randomRun(seed, 1500)).watchers;
  assert.ok(watchers > 50 * seeds.length, `only ${watchers} watchers exercised`);
  if (fixed === undefined) {
    // The runs must reach the paths they are meant to check.
    if (process.env["WATCH_COVERAGE"]) console.log(coverage);
    for (const [what, n] of Object.entries(coverage)) assert.ok(n > 10, `only ${n} ${what} in all runs`);
  }
});
