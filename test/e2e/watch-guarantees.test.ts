/**
 * Acceptance 3, single member: a watch guarantee checker. Concurrent writers (puts, deletes, multi-key
 * txns) run against one member while several watchers follow: one on every key, a prefix, a single key,
 * a range, late joiners that start from revision 1 under load, a slow stream of several watchers that
 * stops reading for long stretches (the server must move them aside and catch them up), and a watcher
 * that drops its stream now and then and resumes from its last revision + 1. Midway the member is
 * SIGKILLed and restarted; every watcher resumes from its last revision + 1.
 *
 * Then the committed history is read back independently of watch (a Range of the key space at every
 * revision) and every watcher is held to it: for each revision from its start on, exactly the changes in
 * its range, in revision order, no gaps, no duplicates, all events of a revision in one response,
 * prev_kv equal to the key's value one revision earlier. Every write the member acknowledged must be in
 * the history at the revision it was acknowledged with.
 *
 * The cluster variant (issue 5) runs the same checker on a 3-member cluster with watchers on every member,
 * most of them on followers, while writers write through all members; the leader is SIGKILLed and
 * restarted. Watchers on a follower must deliver across the change without a gap or a duplicate and
 * without their stream breaking; those on the killed leader resume from their next revision on the
 * restarted member.
 *
 * Runs against every target (E2E_TARGETS); real etcd holds the checker itself to account.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { credentials } from '@grpc/grpc-js';
import { WatchClient, type WatchResponse } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType, type Event, type KeyValue } from '../../src/gen/etcd/mvcc/mvccpb/kv.js';
import { EtcdRpc } from './grpc-client.js';
import { Member, targetsFromEnv, withLogsOnFailure } from './harness.js';
import { RawWatch } from './watch-tools.js';
import { withCluster, type ClusterMember } from './cluster/cluster.js';

const loadMs = { beforeKill: 3500, afterRestart: 3500 };
const keyCount = 16;
const keyOf = (i: number): string => `g/${i.toString(16)}`;
const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));
const k = (s: string): Buffer => Buffer.from(s, 'latin1');

/** xorshift32: the workload is seeded so a failing run can be replayed (the timing will differ). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

interface Spec {
  readonly name: string;
  readonly key: string;
  /** '' one key, '\0' from key, else exclusive end. */
  readonly end: string;
  readonly prevKv: boolean;
}

const inRange = (s: Spec, key: string): boolean =>
  s.end === '' ? key === s.key : s.end === '\0' ? key >= s.key : key >= s.key && key < s.end;

/** One watcher's view: every response's events, as received, and where to resume. */
class Followed {
  readonly responses: Event[][] = [];
  nextRev: number;
  created = 0;
  constructor(readonly spec: Spec, readonly start: number) {
    this.nextRev = start;
  }
}

/**
 * One connection (its own HTTP/2 channel) carrying some watchers with client-chosen ids. It reconnects
 * whenever the stream breaks, re-creating each watcher from its next revision.
 */
class Follower {
  readonly watchers: Followed[];
  reconnects = 0;
  #w: RawWatch | undefined;
  #stopped = false;
  readonly #loop: Promise<void>;
  readonly #failures: string[];

  constructor(readonly endpoint: string, watchers: Followed[], opts: { slow?: boolean; dropEveryMs?: number; failures: string[] }) {
    this.watchers = watchers;
    this.#failures = opts.failures;
    this.#loop = this.#run(opts);
  }

  async #run(opts: { slow?: boolean; dropEveryMs?: number }): Promise<void> {
    let dropAt = opts.dropEveryMs === undefined ? Infinity : Date.now() + opts.dropEveryMs;
    let pausedUntil = 0;
    let resumeUntil = Date.now() + 300;
    while (!this.#stopped) {
      const w = this.#connect();
      while (!this.#stopped && !w.broken) {
        this.#drain(w);
        const now = Date.now();
        if (opts.slow) {
          // Stop reading for 1.5 s, read for 0.3 s: the server's buffers for this stream fill up.
          if (pausedUntil === 0 && now >= resumeUntil) {
            w.pause();
            pausedUntil = now + 1500;
          } else if (pausedUntil !== 0 && now >= pausedUntil) {
            w.resume();
            pausedUntil = 0;
            resumeUntil = now + 300;
          }
        }
        if (now >= dropAt) {
          dropAt = now + (opts.dropEveryMs ?? 0);
          break;
        }
        await sleep(20);
      }
      w.close();
      if (this.#stopped) return;
      this.reconnects++;
      await sleep(100);
    }
  }

  #connect(): RawWatch {
    // A channel of its own: a paused stream must not hold up other watchers' connections.
    const client = new WatchClient(this.endpoint, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const w = new RawWatch(this.endpoint, client);
    this.watchers.forEach((f, i) => {
      w.create({ key: k(f.spec.key), rangeEnd: k(f.spec.end), startRevision: BigInt(f.nextRev), prevKv: f.spec.prevKv, watchId: BigInt(i + 1) });
    });
    this.#w = w;
    return w;
  }

  #drain(w: RawWatch): void {
    for (const r of w.responses.splice(0)) this.#take(r);
  }

  #take(r: WatchResponse): void {
    const f = this.watchers[Number(r.watchId) - 1];
    if (f === undefined) return void this.#failures.push(`response for unknown watch id ${r.watchId}`);
    if (r.canceled) return void this.#failures.push(`${f.spec.name}: canceled (${r.cancelReason}, compact ${r.compactRevision})`);
    if (r.created) {
      f.created++;
      return;
    }
    if (r.events.length === 0) return;
    f.responses.push(r.events);
    f.nextRev = Number(r.events.at(-1)!.kv!.modRevision) + 1;
  }

  /** Stops once every watcher has seen revision rev (or the deadline passes). */
  async finish(rev: number, deadline: number): Promise<void> {
    while (Date.now() < deadline && !this.watchers.every((f) => f.nextRev > rev)) {
      this.#w?.resume();
      await sleep(25);
    }
    this.#stopped = true;
    await this.#loop;
    if (this.#w !== undefined) this.#drain(this.#w);
  }
}

interface Write {
  readonly ops: ReadonlyArray<{ key: string; value?: string }>;
  /** The revision the member acknowledged, or undefined when the outcome is unknown. */
  rev?: number;
}

async function writer(rpc: EtcdRpc, id: number, opts: { until: () => boolean; log: Write[] }): Promise<void> {
  const random = rng(id * 7919);
  for (let n = 0; !opts.until(); n++) {
    const keys = new Set<string>();
    const count = random() < 0.7 ? 1 : 2 + Math.floor(random() * 2);
    while (keys.size < count) keys.add(keyOf(Math.floor(random() * keyCount)));
    // Unique values tie every event to the write that made it; padding makes the slow stream fill up.
    const ops = [...keys].map((key) => (random() < 0.25 ? { key } : { key, value: `w${id}-${n}-${'p'.repeat(150)}` }));
    const write: Write = { ops };
    opts.log.push(write);
    try {
      const res = await rpc.txn({ success: ops.map((op) => op.value === undefined
        ? { request: { $case: 'requestDeleteRange' as const, value: { key: k(op.key) } } }
        : { request: { $case: 'requestPut' as const, value: { key: k(op.key), value: k(op.value) } } }) });
      write.rev = Number(res.header!.revision);
    } catch {
      await sleep(50); // member down or restarting: outcome unknown, try the next write
    }
  }
}

/** The committed history, read back with Range at every revision: the events of each revision by key. */
async function readHistory(rpc: EtcdRpc, lastRev: number): Promise<{ events: Map<number, Event[]>; states: Array<Map<string, KeyValue>> }> {
  const states: Array<Map<string, KeyValue>> = [new Map(), new Map()];
  const events = new Map<number, Event[]>();
  for (let rev = 2; rev <= lastRev; rev++) {
    const res = await rpc.range({ key: k('g/'), rangeEnd: k('g0'), revision: BigInt(rev) });
    const state = new Map(res.kvs.map((kv) => [kv.key.toString('latin1'), kv]));
    const before = states[rev - 1]!;
    const changes: Event[] = [];
    for (const [key, kv] of state) if (Number(kv.modRevision) === rev) changes.push({ type: Event_EventType.PUT, kv, prevKv: undefined });
    for (const key of before.keys()) {
      if (!state.has(key)) {
        changes.push({ type: Event_EventType.DELETE, prevKv: undefined,
          kv: { key: k(key), createRevision: 0n, modRevision: BigInt(rev), version: 0n, value: Buffer.alloc(0), lease: 0n } });
      }
    }
    assert.ok(changes.length > 0, `revision ${rev} changed nothing`);
    events.set(rev, changes);
    states.push(state);
  }
  return { events, states };
}

const eventKey = (e: Event): string => `${e.type}:${e.kv!.key.toString('latin1')}`;
const sortByKey = (es: readonly Event[]): Event[] => [...es].sort((a, b) => (eventKey(a) < eventKey(b) ? -1 : 1));

function checkWatcher(f: Followed, h: { events: Map<number, Event[]>; states: Array<Map<string, KeyValue>> }, lastRev: number): void {
  const name = f.spec.name;
  const byRev = new Map<number, Event[]>();
  let prev = 0;
  for (const response of f.responses) {
    const revs = new Set<number>();
    for (const e of response) {
      const rev = Number(e.kv!.modRevision);
      assert.ok(rev >= prev, `${name}: revision ${rev} after ${prev} (out of order)`);
      prev = rev;
      revs.add(rev);
      byRev.set(rev, [...(byRev.get(rev) ?? []), e]);
    }
    for (const rev of revs) {
      const want = (h.events.get(rev) ?? []).filter((e) => inRange(f.spec, e.kv!.key.toString('latin1'))).length;
      assert.equal(response.filter((e) => Number(e.kv!.modRevision) === rev).length, want, `${name}: revision ${rev} split across responses`);
    }
  }
  for (let rev = f.start; rev <= lastRev; rev++) {
    const want = sortByKey((h.events.get(rev) ?? []).filter((e) => inRange(f.spec, e.kv!.key.toString('latin1'))));
    const got = sortByKey(byRev.get(rev) ?? []);
    assert.deepEqual(got.map(eventKey), want.map(eventKey), `${name}: revision ${rev}: events (gap or duplicate)`);
    got.forEach((e, i) => {
      assert.deepEqual(e.kv, want[i]!.kv, `${name}: revision ${rev}: key-value`);
      if (!f.spec.prevKv) return assert.equal(e.prevKv, undefined);
      const isCreate = e.type === Event_EventType.PUT && e.kv!.createRevision === e.kv!.modRevision;
      assert.deepEqual(e.prevKv, isCreate ? undefined : h.states[rev - 1]!.get(e.kv!.key.toString('latin1')), `${name}: revision ${rev}: prev_kv`);
    });
  }
}

function checkAcknowledged(writes: readonly Write[], h: { states: Array<Map<string, KeyValue>> }): number {
  let acked = 0;
  for (const w of writes) {
    if (w.rev === undefined) continue;
    acked++;
    const state = h.states[w.rev];
    assert.ok(state !== undefined, `acknowledged revision ${w.rev} is beyond the history`);
    for (const op of w.ops) {
      const kv = state.get(op.key);
      if (op.value === undefined) assert.equal(kv, undefined, `acknowledged delete of ${op.key} at ${w.rev} not in history`);
      else assert.ok(kv !== undefined && kv.value.toString() === op.value && Number(kv.modRevision) === w.rev,
        `acknowledged put of ${op.key} at ${w.rev} not in history`);
    }
  }
  return acked;
}

for (const target of targetsFromEnv()) {
  describe(`watch guarantees against ${target.label}`, () => {
    it('under concurrent writes, slow and reconnecting watchers and a SIGKILL + restart, every watcher sees exactly the committed history', async () => {
      const member = await Member.start({ target });
      const failures: string[] = [];
      const rpcs = [0, 1, 2].map(() => new EtcdRpc(member.endpoint));
      try {
        await withLogsOnFailure([member], async () => {
          const spec = (name: string, key: string, end: string, prevKv = false): Spec => ({ name, key, end, prevKv });
          const followers: Follower[] = [];
          const follow = (watchers: Followed[], opts: { slow?: boolean; dropEveryMs?: number } = {}): void =>
            void followers.push(new Follower(member.endpoint, watchers, { ...opts, failures }));
          follow([new Followed(spec('all keys', '\0', '\0', true), 1)]);
          follow([new Followed(spec('prefix g/1', 'g/1', 'g/2'), 1), new Followed(spec('key g/3', 'g/3', ''), 1)]);
          follow([new Followed(spec('range [g/4, g/9)', 'g/4', 'g/9', true), 1)], { dropEveryMs: 700 });
          follow(Array.from({ length: 16 }, (_, i) => new Followed(spec(`slow ${i}`, 'g/', 'g0', i % 2 === 0), 1)), { slow: true });

          const writes: Write[] = [];
          let stop = false;
          const writers = rpcs.map((rpc, i) => writer(rpc, i + 1, { until: () => stop, log: writes }));
          await sleep(loadMs.beforeKill / 2);
          // Late joiners: history from revision 1 while writes go on.
          follow([new Followed(spec('late all', 'g/', 'g0', true), 1), new Followed(spec('late key g/a', 'g/a', ''), 2)]);
          await sleep(loadMs.beforeKill / 2);
          await member.kill();
          const down = Date.now();
          await member.restart();
          const downMs = Date.now() - down;
          await sleep(loadMs.afterRestart);
          stop = true;
          await Promise.all(writers);

          // A last write in every watcher's range, so each one can tell when it has seen everything.
          const sentinel = await rpcs[0]!.txn({ success: ['g/1', 'g/3', 'g/4', 'g/a'].map((key) =>
            ({ request: { $case: 'requestPut' as const, value: { key: k(key), value: k('sentinel') } } })) });
          const lastRev = Number(sentinel.header!.revision);
          const deadline = Date.now() + 30_000;
          await Promise.all(followers.map((f) => f.finish(lastRev, deadline)));
          const behind = followers.flatMap((f) => f.watchers.filter((w) => w.nextRev <= lastRev).map((w) => `${w.spec.name} at ${w.nextRev}`));
          assert.deepEqual(behind, [], `watchers that never reached revision ${lastRev}`);
          assert.deepEqual(failures, []);
          const history = await readHistory(rpcs[0]!, lastRev);
          const acked = checkAcknowledged(writes, history);
          assert.ok(acked > 100, `only ${acked} writes acknowledged`);
          for (const f of followers) for (const w of f.watchers) checkWatcher(w, history, lastRev);
          const reconnects = followers.map((f) => f.reconnects);
          assert.ok(reconnects.every((n) => n >= 1), `every watcher resumed at least once (the kill): ${reconnects.join(',')}`);
          process.stdout.write(`# ${target.label}: ${lastRev} revisions, ${acked}/${writes.length} writes acknowledged, ` +
            `down ${downMs} ms, reconnect attempts ${reconnects.join(',')}\n`);
        });
      } finally {
        for (const rpc of rpcs) rpc.close();
        await member.destroy();
      }
    });
  });
}

for (const target of targetsFromEnv()) {
  describe(`watch guarantees on a 3-member cluster against ${target.label}`, () => {
    it('watchers on followers deliver the committed history across a leader SIGKILL + restart, without gaps, duplicates or a broken stream', async () => {
      await withCluster({ target, names: ['m1', 'm2', 'm3'] }, async (cluster) => {
        const { leader } = await cluster.waitLeader();
        const followersOf = cluster.members.filter((m) => m !== leader) as [ClusterMember, ClusterMember];
        const failures: string[] = [];
        const rpcs = cluster.members.map((m) => new EtcdRpc(m.endpoint));
        try {
          const spec = (name: string, key: string, end: string, prevKv = false): Spec => ({ name, key, end, prevKv });
          const onFollowers: Follower[] = [];
          const onLeader: Follower[] = [];
          const follow = (on: ClusterMember, watchers: Followed[], opts: { slow?: boolean } = {}): void =>
            void (on === leader ? onLeader : onFollowers).push(new Follower(on.endpoint, watchers, { ...opts, failures }));
          follow(followersOf[0], [new Followed(spec('follower A: all keys', '\0', '\0', true), 1)]);
          follow(followersOf[0], [new Followed(spec('follower A: prefix g/1', 'g/1', 'g/2'), 1), new Followed(spec('follower A: key g/3', 'g/3', ''), 1)]);
          follow(followersOf[1], [new Followed(spec('follower B: range [g/4, g/9)', 'g/4', 'g/9', true), 1)]);
          follow(followersOf[1], Array.from({ length: 8 }, (_, i) => new Followed(spec(`follower B: slow ${i}`, 'g/', 'g0', i % 2 === 0), 1)), { slow: true });
          follow(leader, [new Followed(spec('leader: all keys', 'g/', 'g0', true), 1)]);

          const writes: Write[] = [];
          let stop = false;
          const writers = rpcs.map((rpc, i) => writer(rpc, i + 1, { until: () => stop, log: writes }));
          await sleep(loadMs.beforeKill);
          await leader.kill();
          await cluster.waitLeader({ among: followersOf });
          await sleep(loadMs.afterRestart / 2);
          await leader.restart();
          await sleep(loadMs.afterRestart / 2);
          stop = true;
          await Promise.all(writers);

          const via = rpcs[cluster.members.indexOf(followersOf[0])]!;
          const sentinel = await via.txn({ success: ['g/1', 'g/3', 'g/4', 'g/a'].map((key) =>
            ({ request: { $case: 'requestPut' as const, value: { key: k(key), value: k('sentinel') } } })) });
          const lastRev = Number(sentinel.header!.revision);
          const deadline = Date.now() + 30_000;
          const all = [...onFollowers, ...onLeader];
          await Promise.all(all.map((f) => f.finish(lastRev, deadline)));
          const behind = all.flatMap((f) => f.watchers.filter((w) => w.nextRev <= lastRev).map((w) => `${w.spec.name} at ${w.nextRev}`));
          assert.deepEqual(behind, [], `watchers that never reached revision ${lastRev}`);
          assert.deepEqual(failures, []);
          const history = await readHistory(via, lastRev);
          const acked = checkAcknowledged(writes, history);
          assert.ok(acked > 100, `only ${acked} writes acknowledged`);
          for (const f of all) for (const w of f.watchers) checkWatcher(w, history, lastRev);
          assert.deepEqual(onFollowers.map((f) => f.reconnects), onFollowers.map(() => 0), 'a watch stream on a follower broke');
          assert.ok(onLeader.every((f) => f.reconnects >= 1), 'the watchers on the killed leader resumed');
          process.stdout.write(`# ${target.label} cluster: ${lastRev} revisions, ${acked}/${writes.length} writes acknowledged\n`);
        } finally {
          for (const rpc of rpcs) rpc.close();
        }
      });
    });
  });
}
