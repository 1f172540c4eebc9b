import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { isEtcdError } from '../base/errors.js';
import { Event_EventType, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { Backend } from '../storage/backend/backend.js';
import { scheduledCompactKey } from './compaction.js';
import { KvStore, type LeaseAttachments } from './kv-store.js';
import { isTombstoneKey, revisionKey, revisionOfKey } from './revision.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const FROM = Buffer.alloc(0);

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kvstore-test-'));
}

/** A store over a fresh backend, reopenable, cleaned up at the end. */
class Harness {
  dir = tmpDir();
  backend = Backend.open(this.dir);
  store: KvStore;
  constructor(readonly opts: { leases?: LeaseAttachments; compactionBatchLimit?: number } = {}) {
    this.store = KvStore.open(this.backend, { compactionPauseMs: 0, ...opts });
  }
  async reopen(): Promise<void> {
    await this.store.close();
    await this.backend.close();
    this.backend = Backend.open(this.dir);
    this.store = KvStore.open(this.backend, { compactionPauseMs: 0, ...this.opts });
  }
  async dispose(): Promise<void> {
    await this.store.close();
    await this.backend.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
  put(key: string, value: string, lease = 0n): number {
    const txn = this.store.write();
    txn.put(B(key), B(value), lease);
    return txn.end().revision;
  }
  del(key: string, end?: Buffer): number {
    const txn = this.store.write();
    const n = txn.deleteRange(B(key), end);
    txn.end();
    return n;
  }
  records(): string[] {
    const out: string[] = [];
    this.backend.forEach('key', {}, (k) => {
      const r = revisionOfKey(k);
      out.push(`${r.main}.${r.sub}${isTombstoneKey(k) ? 't' : ''}`);
    });
    return out;
  }
}

function brief(kv: KeyValue): string {
  return `${kv.key.toString('latin1')}=${kv.value.toString('latin1')}@c${kv.createRevision}m${kv.modRevision}v${kv.version}l${kv.lease}`;
}

test('puts create revisions, versions and create revisions; history reads see the past', async () => {
  const h = new Harness();
  try {
    assert.equal(h.store.revision, 1, 'a fresh store is at revision 1, like etcd');
    assert.equal(h.put('a', '1'), 2);
    assert.equal(h.put('b', '1'), 3);
    assert.equal(h.put('a', '2', 7n), 4);
    const now = h.store.range(B('a'), FROM);
    assert.deepEqual(now.kvs.map(brief), ['a=2@c2m4v2l7', 'b=1@c3m3v1l0']);
    assert.equal(now.revision, 4);
    assert.deepEqual(h.store.range(B('a'), undefined, { revision: 3 }).kvs.map(brief), ['a=1@c2m2v1l0']);
    assert.deepEqual(h.store.range(B('a'), B('b'), { revision: 1 }).kvs, []);
    const limited = h.store.range(B('a'), FROM, { limit: 1 });
    assert.equal(limited.kvs.length, 1);
    assert.equal(limited.count, 2);
    const counted = h.store.range(B('a'), FROM, { countOnly: true });
    assert.deepEqual([counted.kvs.length, counted.count], [0, 2]);
    assert.throws(() => h.store.range(B('a'), undefined, { revision: 5 }), (e) => isEtcdError(e, 'FutureRev'));
  } finally {
    await h.dispose();
  }
});

test('delete ends a generation; recreating starts over at version 1 with a new create revision', async () => {
  const h = new Harness();
  try {
    h.put('k', 'a');
    h.put('k', 'b');
    assert.equal(h.del('k'), 1);
    assert.equal(h.store.revision, 4);
    assert.equal(h.del('k'), 0, 'deleting nothing');
    assert.equal(h.store.revision, 4, 'a txn that changed nothing does not create a revision');
    h.put('k', 'c');
    assert.deepEqual(h.store.range(B('k'), undefined).kvs.map(brief), ['k=c@c5m5v1l0']);
    assert.deepEqual(h.store.range(B('k'), undefined, { revision: 4 }).kvs, []);
    assert.deepEqual(h.store.range(B('k'), undefined, { revision: 3 }).kvs.map(brief), ['k=b@c2m3v2l0']);
    assert.deepEqual(h.records(), ['2.0', '3.0', '4.0t', '5.0']);
  } finally {
    await h.dispose();
  }
});

test('a write txn shares one main revision, sees its own writes, and stays invisible until it ends', async () => {
  const h = new Harness();
  try {
    h.put('a', '0');
    h.put('z', '0');
    const txn = h.store.write({ prevKv: true });
    assert.equal(txn.revision, 3);
    txn.put(B('b'), B('1'), 0n);
    txn.put(B('a'), B('1'), 0n);
    assert.equal(txn.revision, 4);
    assert.deepEqual(txn.range(B('a'), B('c')).kvs.map(brief), ['a=1@c2m4v2l0', 'b=1@c4m4v1l0']);
    assert.equal(txn.range(B('a'), B('c')).revision, 4);
    assert.deepEqual(h.store.range(B('a'), B('c')).kvs.map(brief), ['a=0@c2m2v1l0'], 'outside readers see the old state');
    assert.throws(() => h.store.write(), /already open/);
    assert.equal(txn.deleteRange(B('z'), FROM), 1);
    const { revision, events } = txn.end();
    assert.equal(revision, 4);
    assert.deepEqual(h.records(), ['2.0', '3.0', '4.0', '4.1', '4.2t']);
    assert.deepEqual(
      events.map((e) => [e.type, brief(e.kv!), e.prevKv ? brief(e.prevKv) : null]),
      [
        [Event_EventType.PUT, 'b=1@c4m4v1l0', null],
        [Event_EventType.PUT, 'a=1@c2m4v2l0', 'a=0@c2m2v1l0'],
        [Event_EventType.DELETE, 'z=@c0m4v0l0', 'z=0@c3m3v1l0'],
      ],
    );
    assert.equal(h.store.revision, 4);
  } finally {
    await h.dispose();
  }
});

test('compaction: reads below fail, history below is removed physically, later revisions stay', async () => {
  const h = new Harness({ compactionBatchLimit: 2 });
  try {
    h.put('a', '1'); // 2
    h.put('a', '2'); // 3
    h.put('b', '1'); // 4
    h.del('b'); // 5
    h.put('c', '1'); // 6
    h.put('a', '3'); // 7
    assert.throws(() => h.store.compact(8), (e) => isEtcdError(e, 'FutureRev'));
    const { done } = h.store.compact(5);
    assert.equal(h.store.compactRevision, 5);
    assert.throws(() => h.store.range(B('a'), undefined, { revision: 4 }), (e) => isEtcdError(e, 'Compacted'));
    assert.deepEqual(h.store.range(B('a'), FROM, { revision: 5 }).kvs.map(brief), ['a=2@c2m3v2l0']);
    assert.throws(() => h.store.compact(5), (e) => isEtcdError(e, 'Compacted'));
    await done;
    assert.deepEqual(h.records(), ['3.0', '6.0', '7.0'], 'a@3 is what a read at 5 needs; b is gone with its tombstone');
    assert.deepEqual(h.store.range(B('a'), FROM, { revision: 6 }).kvs.map(brief), ['a=2@c2m3v2l0', 'c=1@c6m6v1l0']);
    assert.equal(h.store.indexedKeys, 2);
  } finally {
    await h.dispose();
  }
});

test('restart restores revisions, compaction state, index and leases; an interrupted compaction resumes', async () => {
  const attached = new Map<string, bigint>();
  const leases: LeaseAttachments = {
    leaseOf: (k) => attached.get(k) ?? 0n,
    attach: (l, k) => void attached.set(k, l),
    detach: (l, k) => {
      assert.equal(attached.get(k), l);
      attached.delete(k);
    },
  };
  const h = new Harness({ leases });
  try {
    h.put('a', '1', 5n); // 2
    h.put('b', '1', 6n); // 3
    h.put('a', '2'); // 4: detaches lease 5
    h.del('b'); // 5: detaches lease 6
    h.put('c', '1', 9n); // 6
    assert.deepEqual([...attached], [['c', 9n]]);
    await h.store.compact(3).done;
    h.backend.put('meta', scheduledCompactKey, revisionKey(5, 0)); // as if a crash hit right after scheduling
    h.put('d', '1'); // 7
    attached.clear();
    await h.reopen();
    assert.deepEqual([...attached], [['c', 9n]], 'the latest lease of each live key is attached again');
    assert.equal(h.store.revision, 7);
    assert.equal(h.store.compactRevision, 5, 'the scheduled compaction is resumed');
    await h.store.compactionBarrier();
    assert.deepEqual(h.records(), ['4.0', '6.0', '7.0']);
    assert.deepEqual(h.store.range(B('a'), FROM).kvs.map(brief), ['a=2@c2m4v2l0', 'c=1@c6m6v1l9', 'd=1@c7m7v1l0']);
    assert.equal(h.put('a', '3'), 8);
    assert.deepEqual(h.store.range(B('a'), undefined).kvs.map(brief), ['a=3@c2m8v3l0'], 'created and version survive compaction and restart');
  } finally {
    await h.dispose();
  }
});

test('the current revision survives a restart even when compaction removed every record', async () => {
  const h = new Harness();
  try {
    h.put('a', '1');
    h.del('a');
    await h.store.compact(3).done;
    assert.deepEqual(h.records(), []);
    await h.reopen();
    assert.equal(h.store.revision, 3);
    assert.equal(h.store.compactRevision, 3);
    assert.equal(h.put('x', '1'), 4);
  } finally {
    await h.dispose();
  }
});

type Op =
  | { kind: 'txn'; changes: Array<{ put: boolean; key: string; end: string | undefined; value: string }> }
  | { kind: 'compact'; frac: number; wait: boolean }
  | { kind: 'reopen' };

interface ModelChange {
  rev: number;
  sub: number;
  kv: string | undefined;
}

test('the store agrees with a naive full-history model through txns, compactions and restarts', async () => {
  const keyArb = fc.constantFrom('a', 'ab', 'b', 'c', 'c\xff');
  const changeArb = fc.record({ put: fc.boolean(), key: keyArb, end: fc.option(fc.constantFrom('', 'b', 'c', 'd'), { nil: undefined }), value: fc.constantFrom('x', 'y', '') });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('txn' as const), changes: fc.array(changeArb, { minLength: 1, maxLength: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('compact' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }), wait: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 20 }), async (ops) => {
      const h = new Harness({ compactionBatchLimit: 3 });
      const hist = new Map<string, ModelChange[]>();
      let rev = 1;
      let compacted = -1;
      const liveAt = (k: string, at: number) => [...(hist.get(k) ?? [])].reverse().find((c) => c.rev <= at)?.kv;
      try {
        for (const op of ops) {
          if (op.kind === 'reopen') await h.reopen();
          else if (op.kind === 'compact') {
            const at = compacted + 1 + Math.floor(op.frac * (rev - compacted));
            if (at > rev) continue;
            compacted = at;
            const { done } = h.store.compact(at);
            if (op.wait) await done;
          } else {
            const txn = h.store.write();
            let sub = 0;
            for (const c of op.changes) {
              const view = rev + (sub > 0 ? 1 : 0);
              if (c.put) {
                const prev = hist.get(c.key)?.at(-1);
                const live = prev?.kv !== undefined ? JSON.parse(prev.kv) : undefined;
                const kv = { v: c.value, c: live ? live.c : rev + 1, ver: live ? live.ver + 1 : 1, m: rev + 1 };
                txn.put(B(c.key), B(c.value), 0n);
                hist.set(c.key, [...(hist.get(c.key) ?? []), { rev: rev + 1, sub: sub++, kv: JSON.stringify(kv) }]);
              } else {
                const keys = [...hist.keys()].sort().filter((k) => (c.end === undefined ? k === c.key : k >= c.key && (c.end === '' || k < c.end)) && liveAt(k, view) !== undefined);
                assert.equal(txn.deleteRange(B(c.key), c.end === undefined ? undefined : B(c.end)), keys.length);
                for (const k of keys) hist.get(k)!.push({ rev: rev + 1, sub: sub++, kv: undefined });
              }
            }
            const { revision } = txn.end();
            if (sub > 0) rev++;
            assert.equal(revision, rev);
          }
          assert.equal(h.store.revision, rev);
          for (let at = Math.max(compacted, 1); at <= rev; at++) {
            const want = [...hist.keys()].sort().flatMap((k) => {
              const kv = liveAt(k, at);
              if (kv === undefined) return [];
              const o = JSON.parse(kv);
              return [`${k}=${o.v}@c${o.c}m${o.m}v${o.ver}l0`];
            });
            assert.deepEqual(h.store.range(B('\x00'), FROM, { revision: at }).kvs.map(brief), want, `at ${at}`);
          }
        }
        await h.store.compactionBarrier();
        const kept = [...hist.values()].flatMap((cs) => {
          const older = cs.filter((c) => c.rev <= compacted);
          const last = older.at(-1);
          return [...(last?.kv !== undefined ? [last] : []), ...cs.filter((c) => c.rev > compacted)].map((c) => [c.rev, c.sub, c.kv === undefined ? 't' : ''] as const);
        });
        kept.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
        assert.deepEqual(h.records(), kept.map(([r, s, t]) => `${r}.${s}${t}`), 'backend holds exactly what compaction keeps');
      } finally {
        await h.dispose();
      }
    }),
    { numRuns: 40 },
  );
});

test('HashKV does not depend on how far physical compaction got, and follows the history', async () => {
  const h1 = new Harness();
  const h2 = new Harness();
  try {
    for (const h of [h1, h2]) {
      h.put('a', '1');
      h.put('b', '1');
      h.put('a', '2');
      h.del('b');
      h.put('c', '1');
    }
    await h1.store.compact(4).done;
    const c2 = h2.store.compact(4);
    const [x, y] = await Promise.all([h1.store.hashKv(0), h2.store.hashKv(6)]);
    await c2.done;
    assert.equal(x.hash, y.hash);
    assert.deepEqual([x.revision, x.compactRevision], [6, 4]);
    assert.equal((await h2.store.hashKv(0)).hash, x.hash);
    assert.notEqual((await h1.store.hashKv(5)).hash, x.hash, 'a different revision hashes a different history');
    await assert.rejects(h1.store.hashKv(4), (e) => isEtcdError(e, 'Compacted'));
    await assert.rejects(h1.store.hashKv(7), (e) => isEtcdError(e, 'FutureRev'));
    h1.put('d', '1');
    assert.notEqual((await h1.store.hashKv(0)).hash, x.hash);
    assert.equal((await h1.store.hashKv(6)).hash, x.hash, 'later writes do not change the hash at an earlier revision');
  } finally {
    await h1.dispose();
    await h2.dispose();
  }
});

test('events reads the changes of a revision span back from the backend, as watch events', async () => {
  const h = new Harness();
  try {
    h.put('a', '1'); // 2
    const txn = h.store.write();
    txn.put(B('b'), B('1'), 0n);
    txn.deleteRange(B('a'), undefined);
    txn.end(); // 3
    h.put('c', '1'); // 4
    const all = h.store.events(2, 4);
    assert.deepEqual(all.map((e) => [e.type, brief(e.kv!)]), [
      [Event_EventType.PUT, 'a=1@c2m2v1l0'],
      [Event_EventType.PUT, 'b=1@c3m3v1l0'],
      [Event_EventType.DELETE, 'a=@c0m3v0l0'],
      [Event_EventType.PUT, 'c=1@c4m4v1l0'],
    ]);
    assert.deepEqual(h.store.events(3, 3, { limit: 1 }).map((e) => brief(e.kv!)), ['b=1@c3m3v1l0']);
    assert.deepEqual(h.store.events(5, 9), []);
    await h.store.compact(3).done;
    assert.throws(() => h.store.events(2, 4), (e) => isEtcdError(e, 'Compacted'));
    assert.deepEqual(h.store.events(3, 4).map((e) => brief(e.kv!)), ['b=1@c3m3v1l0', 'c=1@c4m4v1l0'], 'at the compacted revision only what compaction kept');
  } finally {
    await h.dispose();
  }
});
