/**
 * Focused tests of one behaviour each: etcd 3.4's ids and answers, compaction, slow consumers (victims)
 * and their memory bound, progress. The random runs in watchable-store.test.ts check the same
 * guarantees in combination.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { WatchResponse, type WatchCreateRequest } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { KvStore } from '../mvcc/kv-store.js';
import { Backend } from '../storage/backend/backend.js';
import type { WatchLimits } from './limits.js';
import { mvccHistory } from './mvcc-history.js';
import { WatchStream, type ResponseSink } from './watch-stream.js';
import { splitFramed } from './watch-response.js';
import { WatchableStore } from './watchable-store.js';

const silent: Logger = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent } as unknown as Logger;
const B = (s: string): Buffer => Buffer.from(s, 'latin1');

class Sink implements ResponseSink {
  blocked = false;
  writes = 0;
  readonly got: WatchResponse[] = [];
  failed: EtcdError | undefined;
  write(framed: Buffer, count: number): boolean {
    this.writes++;
    const messages = splitFramed(framed);
    assert.equal(messages.length, count);
    for (const bytes of messages) this.got.push(WatchResponse.decode(bytes));
    return !this.blocked;
  }
  fail(err: EtcdError): void {
    this.failed = err;
  }
  take(): WatchResponse[] {
    return this.got.splice(0);
  }
}

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap in use after a full collection: what is actually retained. */
function retainedHeap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** A store with a manual catch-up scheduler; rounds run only when the test says so. */
function setup(limits: Partial<WatchLimits> = {}): {
  kv: KvStore; store: WatchableStore; rounds: () => void; put: (k: string, v: string) => number; del: (k: string) => number;
  stream: (sink: Sink, opts?: { progressIntervalMs?: number; term?: () => bigint }) => WatchStream;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'watch-stream-test-'));
  dirs.push(dir);
  const kv = KvStore.open(Backend.open(dir), { compactionPauseMs: 0 });
  const pending: Array<() => void> = [];
  const store = new WatchableStore({ history: mvccHistory(() => kv), log: silent, limits, schedule: (run) => pending.push(run) });
  const write = (fn: (t: ReturnType<KvStore['write']>) => void): number => {
    const t = kv.write();
    fn(t);
    const { revision, events } = t.end();
    store.notify(events, revision);
    return revision;
  };
  return {
    kv, store,
    rounds: () => {
      while (pending.length > 0) pending.shift()!();
    },
    put: (k, v) => write((t) => t.put(B(k), B(v), 0n)),
    del: (k) => write((t) => void t.deleteRange(B(k), undefined)),
    stream: (sink, { term = () => 3n, ...opts } = {}) => new WatchStream(store, sink, {
      header: (revision) => ({ clusterId: 1n, memberId: 2n, revision: BigInt(revision), raftTerm: term() }),
      fragmentBytesMax: 1 << 20, ...opts,
    }),
  };
}

function create(fields: Partial<Omit<WatchCreateRequest, 'key'>> & { key: string; end?: string }): WatchCreateRequest {
  const { key, end, ...rest } = fields;
  return { key: B(key), rangeEnd: B(end ?? ''), startRevision: 0n, progressNotify: false, filters: [], prevKv: false, watchId: 0n, fragment: false, ...rest };
}

const summary = (r: WatchResponse): string =>
  `id=${r.watchId} rev=${r.header!.revision}${r.created ? ' created' : ''}${r.canceled ? ' canceled' : ''}` +
  `${r.compactRevision !== 0n ? ` compact=${r.compactRevision}` : ''}${r.cancelReason ? ` reason="${r.cancelReason}"` : ''}` +
  r.events.map((e) => ` ${e.type === 0 ? 'PUT' : 'DEL'}:${e.kv!.key.toString()}@${e.kv!.modRevision}`).join('');

test('ids and answers as etcd 3.4 gives them: auto ids from 0 skip taken ones, duplicates and empty ranges are refused', () => {
  const t = setup();
  t.put('foo', '1');
  const sink = new Sink();
  const s = t.stream(sink);
  s.create(create({ key: 'foo', watchId: 1n }));
  s.create(create({ key: 'foo', watchId: 1n }));
  s.create(create({ key: 'foo' }));
  s.create(create({ key: 'foo' }));
  s.create(create({ key: 'b', end: 'a' }));
  s.cancel(77n);
  s.cancel(1n);
  s.create(create({ key: 'foo', watchId: 1n }));
  assert.deepEqual(sink.take().map(summary), [
    'id=1 rev=2 created',
    'id=-1 rev=2 created canceled reason="mvcc: duplicate watch ID provided on the WatchStream"',
    'id=0 rev=2 created',
    'id=2 rev=2 created',
    'id=-1 rev=2 created canceled reason="mvcc: watcher range is empty"',
    'id=1 rev=2 canceled',
    'id=1 rev=2 created',
  ]);
  t.put('foo', '2');
  assert.deepEqual(sink.take().map(summary).sort(), ['id=0 rev=3 PUT:foo@3', 'id=1 rev=3 PUT:foo@3', 'id=2 rev=3 PUT:foo@3']);
});

test('a start revision below the compacted one is canceled with compact_revision (header revision 0); the id stays until canceled', async () => {
  const t = setup();
  for (let i = 0; i < 5; i++) t.put('k', String(i)); // revisions 2..6
  await t.kv.compact(4).done;
  const sink = new Sink();
  const s = t.stream(sink);
  s.create(create({ key: 'k', startRevision: 3n }));
  s.create(create({ key: 'k', startRevision: 4n, prevKv: true }));
  t.rounds();
  const got = sink.take();
  assert.deepEqual(got.map(summary), [
    'id=0 rev=6 created',
    'id=1 rev=6 created',
    'id=0 rev=0 canceled compact=4',
    'id=1 rev=6 PUT:k@4 PUT:k@5 PUT:k@6',
  ]);
  // prev_kv of revision 4 would be read at 3, which is compacted: none, as etcd.
  assert.deepEqual(got[3]!.events.map((e) => e.prevKv?.value.toString()), [undefined, '2', '3']);
  s.create(create({ key: 'k', watchId: 0n }));
  assert.equal(sink.take()[0]!.watchId, 2n, 'id 0 is still taken by the compacted watcher');
  s.cancel(0n);
  assert.deepEqual(sink.take().map(summary), ['id=0 rev=6 canceled']);
});

test('a stream that stops reading never holds up writes or other streams, its memory stays bounded, and it catches up exactly once', () => {
  const limits = { streamQueuedResponsesMax: 8, streamQueuedBytesMax: 4096, syncRecordsMax: 100 };
  const t = setup(limits);
  const slowSink = new Sink();
  const slow = t.stream(slowSink);
  const fastSink = new Sink();
  const fast = t.stream(fastSink);
  for (let i = 0; i < 50; i++) slow.create(create({ key: 'p/', end: 'p0' }));
  fast.create(create({ key: 'p/', end: 'p0' }));
  slowSink.take();
  fastSink.take();
  slowSink.blocked = true;
  const value = 'x'.repeat(200);
  const heapBefore = retainedHeap();
  let maxQueued = 0;
  for (let i = 0; i < 3000; i++) {
    const rev = t.put(`p/${i % 100}`, value);
    // The fast stream has this write's event the moment notify() returns: nothing waits for the slow one.
    const got = fastSink.take();
    assert.equal(got.length, 1);
    assert.equal(Number(got[0]!.header!.revision), rev);
    maxQueued = Math.max(maxQueued, slow.queuedBytes);
    t.rounds();
  }
  const heapAfter = retainedHeap();
  const stats = t.store.stats();
  assert.equal(stats.victims, 50, 'every slow watcher is parked');
  assert.ok(maxQueued <= limits.streamQueuedBytesMax + 1024, `slow stream queued ${maxQueued} bytes`);
  // 3000 writes x 50 watchers x ~250 bytes would be ~37 MB if buffered; victims hold nothing. What
  // remains is the backend's uncommitted batch of the writes themselves (~1 MB of values).
  const deltaMb = (heapAfter - heapBefore) / 1e6;
  process.stdout.write(`# slow stream: max queued ${maxQueued} B, retained heap +${deltaMb.toFixed(1)} MB with 150k events undelivered\n`);
  assert.ok(deltaMb < 12, `retained heap grew ${deltaMb.toFixed(1)} MB`);
  slowSink.blocked = false;
  slow.onDrain();
  for (let guard = 0; guard < 10_000 && t.store.stats().victims + t.store.stats().unsynced > 0; guard++) {
    t.rounds();
    slow.onDrain();
  }
  assert.equal(t.store.stats().synced, 51);
  const perWatcher = new Map<bigint, number[]>();
  for (const r of slowSink.take()) {
    const list = perWatcher.get(r.watchId) ?? [];
    list.push(...r.events.map((e) => Number(e.kv!.modRevision)));
    perWatcher.set(r.watchId, list);
  }
  assert.equal(perWatcher.size, 50);
  const all = Array.from({ length: 3000 }, (_, i) => i + 2);
  for (const [id, revs] of perWatcher) assert.deepEqual(revs, all, `watcher ${id}: gap or duplicate`);
});

test('progress: periodic notifications only for quiet synced watchers; a request is answered once all are synced', async () => {
  const t = setup();
  t.put('a', '1');
  const sink = new Sink();
  const s = t.stream(sink, { progressIntervalMs: 20 });
  s.create(create({ key: 'a', progressNotify: true }));
  s.create(create({ key: 'b', startRevision: 1n }));
  s.requestProgress();
  assert.deepEqual(sink.take().map(summary), ['id=0 rev=2 created', 'id=1 rev=2 created'], 'deferred: watcher 1 is behind');
  t.rounds();
  assert.deepEqual(sink.take().map(summary), ['id=-1 rev=2']);
  const deadline = Date.now() + 5000;
  while (!sink.got.some((r) => r.watchId === 0n && r.events.length === 0)) {
    assert.ok(Date.now() < deadline, 'no periodic progress notification');
    await new Promise((ok) => setTimeout(ok, 5));
  }
  assert.deepEqual(sink.take().filter((r) => r.watchId === 0n).map(summary).slice(0, 1), ['id=0 rev=2']);
  s.close();
});

test('a client that keeps creating watchers but reads nothing loses its stream', () => {
  const t = setup({ streamQueuedControlMax: 10 });
  const sink = new Sink();
  sink.blocked = true;
  const s = t.stream(sink);
  for (let i = 0; i < 20; i++) s.create(create({ key: `k${i}` }));
  assert.equal(sink.failed?.kind, 'TooManyRequests');
  assert.equal(t.store.watcherCount, 0);
  assert.equal(t.store.queuedBytes, 0);
  assert.equal(s.watcherCount, 0);
});

test('revisions that bypass notify (a replaced store) are caught up from history, in order, once', () => {
  const t = setup();
  const sink = new Sink();
  const s = t.stream(sink);
  s.create(create({ key: 'r/', end: 'r0' }));
  sink.take();
  t.put('r/a', '1'); // 2, notified
  for (const v of ['2', '3']) {
    // Written behind the watchable store's back, as a restored snapshot would bring them.
    const txn = t.kv.write();
    txn.put(B('r/a'), B(v), 0n);
    txn.end();
  }
  t.put('r/b', '4'); // 5: the jump is noticed here
  t.rounds();
  t.store.resync(); // nothing left to do
  t.rounds();
  const revs = sink.take().flatMap((r) => r.events.map((e) => `${e.kv!.key.toString()}=${e.kv!.value.toString()}@${e.kv!.modRevision}`));
  assert.deepEqual(revs, ['r/a=1@2', 'r/a=2@3', 'r/a=3@4', 'r/b=4@5']);
  assert.equal(t.store.stats().synced, 1);
  const txn = t.kv.write();
  txn.put(B('r/c'), B('5'), 0n);
  txn.end(); // 6, not notified: resync() catches it up without waiting for the next write
  t.store.resync();
  t.rounds();
  assert.deepEqual(sink.take().map((r) => r.events.map((e) => Number(e.kv!.modRevision))), [[6]]);
  s.close();
});

test('a fan-out leaves as one write per stream and revision, queued responses drain coalesced, headers follow the term', () => {
  const t = setup();
  let term = 3n;
  const sinks = [new Sink(), new Sink()];
  const streams = sinks.map((sink) => t.stream(sink, { term: () => term }));
  for (let i = 0; i < 5; i++) streams[0]!.create(create({ key: 'fan/', end: 'fan0' }));
  for (let i = 0; i < 3; i++) streams[1]!.create(create({ key: 'fan/', end: 'fan0', prevKv: i === 0 }));
  for (const sink of sinks) {
    sink.take();
    sink.writes = 0;
  }
  const rev = t.put('fan/a', '1');
  assert.deepEqual(sinks.map((k) => k.writes), [1, 1]);
  assert.deepEqual(sinks[0]!.take().map(summary), [0, 1, 2, 3, 4].map((id) => `id=${id} rev=${rev} PUT:fan/a@${rev}`));
  assert.equal(sinks[1]!.take().length, 3);
  term = 4n;
  const txn = t.kv.write();
  txn.put(B('fan/a'), B('2'), 0n);
  txn.put(B('fan/b'), B('3'), 0n);
  const r = txn.end();
  t.store.notify(r.events, r.revision);
  assert.deepEqual(sinks.map((k) => k.writes), [2, 2]);
  const second = sinks[1]!.take();
  assert.deepEqual(second.map((m) => [m.header!.raftTerm, m.events.map((e) => e.kv!.key.toString())]), [0, 1, 2].map(() => [4n, ['fan/a', 'fan/b']]));
  assert.equal(second[0]!.events[0]!.prevKv!.value.toString(), '1');
  term = 5n; // a new leader without a new revision: the header is checked again
  streams[0]!.requestProgress();
  assert.deepEqual(sinks[0]!.take().slice(-1).map((m) => [m.watchId, m.header!.revision, m.header!.raftTerm]), [[-1n, BigInt(r.revision), 5n]]);
  // A full transport: later responses queue, and leave several per write once it drains.
  sinks[0]!.blocked = true;
  const revs = [t.put('fan/c', '4'), t.put('fan/d', '5'), t.put('fan/e', '6')];
  sinks[0]!.blocked = false;
  sinks[0]!.writes = 0;
  const before = sinks[0]!.take().length;
  streams[0]!.onDrain();
  const drained = sinks[0]!.take();
  assert.equal(before + drained.length, 15);
  assert.equal(sinks[0]!.writes, 1);
  assert.deepEqual(drained.map((m) => Number(m.header!.revision)), revs.slice(1).flatMap((v) => [v, v, v, v, v]));
  for (const x of streams) x.checkInvariants();
});
