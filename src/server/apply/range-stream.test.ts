/**
 * The streamed Range path must answer exactly what the materialising one does: for random stores and
 * random requests (limits, count_only, keys_only, every sort, revision filters, old revisions, errors),
 * the streamed bytes equal ts-proto's RangeResponse.encode of applyRange's response.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isEtcdError } from '../../base/errors.js';
import { RangeRequest, type RangeRequest_SortOrder, type RangeRequest_SortTarget, RangeResponse, type ResponseHeader } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { KvStore } from '../../mvcc/kv-store.js';
import { Backend } from '../../storage/backend/backend.js';
import { isStreamedMessage, type StreamedMessage } from '../../api/h2/streamed-message.js';
import { applyRange } from './kv-apply.js';
import { planRange } from './range-plan.js';
import { rangeResponseOf } from './range-stream.js';

/** mulberry32: a small seeded generator, so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const header: ResponseHeader = { clusterId: 0x1234567890abcdefn, memberId: 7n, revision: 0n, raftTerm: 3n };

async function withStore(fn: (store: KvStore, backend: Backend) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'range-stream-test-'));
  const backend = Backend.open(dir);
  const store = KvStore.open(backend, { compactionPauseMs: 0 });
  try {
    await fn(store, backend);
  } finally {
    await store.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function randomKey(r: () => number): Buffer {
  const len = 1 + Math.floor(r() * 3);
  return Buffer.from(Array.from({ length: len }, () => [0, 0x61, 0x62, 0x63, 0xff][Math.floor(r() * 5)]!));
}

/** Random history: overwrites, deletes, empty and multi-KiB values, small and 64-bit leases. */
function fill(store: KvStore, r: () => number, txns: number): void {
  for (let t = 0; t < txns; t++) {
    const txn = store.write();
    const ops = 1 + Math.floor(r() * 4);
    for (let i = 0; i < ops; i++) {
      const key = randomKey(r);
      if (r() < 0.15) {
        txn.deleteRange(key, r() < 0.5 ? undefined : randomKey(r));
        continue;
      }
      const size = r() < 0.2 ? 0 : r() < 0.9 ? Math.floor(r() * 40) : 1000 + Math.floor(r() * 3000);
      const value = Buffer.alloc(size, Math.floor(r() * 256));
      const lease = r() < 0.7 ? 0n : r() < 0.5 ? BigInt(1 + Math.floor(r() * 1000)) : 0x7fff_ffff_ffff_fff0n;
      txn.put(key, value, lease);
    }
    txn.end();
  }
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function randomRequest(r: () => number, store: KvStore): RangeRequest {
  const cur = store.revision;
  const revs = [0n, 0n, 0n, 0n, 0n, BigInt(cur), BigInt(1 + Math.floor(r() * cur)), BigInt(cur + 1), -3n, 1n << 62n];
  const filter = (): bigint => (r() < 0.7 ? 0n : pick(r, [BigInt(Math.floor(r() * (cur + 2))), -1n, 1n << 60n]));
  const end = pick(r, [Buffer.alloc(0), Buffer.from([0]), Buffer.from([0]), randomKey(r), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
  return RangeRequest.fromPartial({
    key: r() < 0.2 ? Buffer.from([0]) : randomKey(r),
    rangeEnd: end,
    revision: pick(r, revs),
    limit: pick(r, [0n, 0n, 1n, 2n, BigInt(Math.floor(r() * 30)), -1n, 1n << 40n]),
    countOnly: r() < 0.1,
    keysOnly: r() < 0.25,
    // 5 and 7 are an order and a target etcd does not know.
    sortOrder: pick(r, [0, 0, 1, 2, 5]) as RangeRequest_SortOrder,
    sortTarget: pick(r, [0, 0, 1, 2, 3, 7]) as RangeRequest_SortTarget,
    serializable: false,
    minModRevision: filter(),
    maxModRevision: filter(),
    minCreateRevision: filter(),
    maxCreateRevision: filter(),
  });
}

type Outcome = { bytes: Buffer } | { error: string };

function outcome(fn: () => Buffer): Outcome {
  try {
    return { bytes: fn() };
  } catch (e) {
    assert.ok(isEtcdError(e), String(e));
    return { error: e.kind };
  }
}

async function asyncOutcome(fn: () => Promise<Buffer>): Promise<Outcome> {
  try {
    return { bytes: await fn() };
  } catch (e) {
    assert.ok(isEtcdError(e), String(e));
    return { error: e.kind };
  }
}

function drain(message: StreamedMessage, already = 0): Buffer {
  const chunks: Buffer[] = [];
  try {
    for (let c = message.next(); c !== undefined; c = message.next()) {
      chunks.push(Buffer.from(c));
      message.recycle?.(c);
    }
  } finally {
    message.close();
  }
  const all = Buffer.concat(chunks);
  assert.equal(already + all.length, message.byteLength);
  return all;
}

function expected(store: KvStore, req: RangeRequest): Outcome {
  return outcome(() => {
    const res = applyRange(store, req);
    return Buffer.from(RangeResponse.encode({ ...res, header: { ...header, revision: res.header!.revision } }).finish());
  });
}

async function viaPlan(store: KvStore, req: RangeRequest, opts: { streamBytesMin: number; chunkBytes: number; sliceMs: number }): Promise<Outcome | 'no plan'> {
  let plan;
  try {
    plan = planRange(store, req);
  } catch (e) {
    assert.ok(isEtcdError(e), String(e));
    return { error: e.kind };
  }
  if (plan === undefined) return 'no plan';
  const p = plan;
  return asyncOutcome(async () => {
    const res = await rangeResponseOf(store, p, { ...opts, header: { ...header, revision: BigInt(p.revision) } });
    if (isStreamedMessage(res)) return drain(res);
    return Buffer.from(RangeResponse.encode(res).finish());
  });
}

test('streamed and materialised plans answer byte for byte what applyRange answers', async () => {
  for (const seed of [1, 2, 3]) {
    await withStore(async (store) => {
      const r = rng(seed);
      fill(store, r, 120);
      if (seed === 3) await store.compact(Math.floor(store.revision / 2)).done;
      let streamed = 0;
      let small = 0;
      let errors = 0;
      for (let i = 0; i < 400; i++) {
        const req = randomRequest(r, store);
        const want = expected(store, req);
        const chunkBytes = pick(r, [64, 100, 1000, 64 * 1024]);
        const sliceMs = pick(r, [0, 5]);
        const stream = await viaPlan(store, req, { streamBytesMin: 0, chunkBytes, sliceMs });
        const materialised = await viaPlan(store, req, { streamBytesMin: Infinity, chunkBytes, sliceMs });
        const what = `seed ${seed} request ${i}: ${JSON.stringify(RangeRequest.toJSON(req))}`;
        if (stream === 'no plan') {
          assert.equal(req.sortTarget, 4, `only a sort by value has no plan (${what})`);
          continue;
        }
        assert.deepEqual(stream, want, what);
        assert.deepEqual(materialised, want, what);
        if ('error' in want) errors++;
        else if (want.bytes.length > 100) streamed++;
        else small++;
      }
      // The mix must exercise every kind of answer, or the comparison proves little.
      assert.ok(streamed > 50 && small > 20 && errors > 20, `streamed ${streamed}, small ${small}, errors ${errors}`);
      // Every stream released its pin: a compaction at head finishes.
      await store.compact(store.revision).done;
    });
  }
});

test('a streamed range keeps its revision readable through a compaction until it is closed', async () => {
  await withStore(async (store) => {
    const value = (i: number, gen: number): Buffer => Buffer.alloc(2000, (i * 7 + gen) % 251);
    let txn = store.write();
    for (let i = 0; i < 60; i++) txn.put(Buffer.from(`k${String(i).padStart(3, '0')}`), value(i, 1), 0n);
    txn.end();
    const atRev = store.revision;
    const req = RangeRequest.fromPartial({ key: Buffer.from('k'), rangeEnd: Buffer.from('l') });
    const want = expected(store, req);
    const plan = planRange(store, req)!;
    const res = await rangeResponseOf(store, plan, { streamBytesMin: 0, chunkBytes: 4096, header: { ...header, revision: BigInt(plan.revision) } });
    assert.ok(isStreamedMessage(res));
    const first = Buffer.from(res.next()!);
    txn = store.write();
    for (let i = 0; i < 60; i++) txn.put(Buffer.from(`k${String(i).padStart(3, '0')}`), value(i, 2), 0n);
    txn.end();
    let compacted = false;
    const done = store.compact(store.revision).done.then(() => void (compacted = true));
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(compacted, false, 'compaction must wait for the stream reading revision ' + String(atRev));
    const rest = drain(res, first.length);
    assert.deepEqual({ bytes: Buffer.concat([first, rest]) }, want);
    await done;
    assert.throws(() => store.range(Buffer.from('k'), Buffer.from('l'), { revision: atRev }), /compacted/);
  });
});
