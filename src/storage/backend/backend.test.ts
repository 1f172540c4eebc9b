import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { Backend } from './backend.js';

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'backend-test-'));
}

async function withBackend<T>(fn: (b: Backend, dir: string) => Promise<T>, opts = {}): Promise<T> {
  const dir = tmpDir();
  const b = Backend.open(dir, opts);
  try {
    return await fn(b, dir);
  } finally {
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const B = (s: string) => Buffer.from(s, 'latin1');

async function until(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('reads see the uncommitted batch, the in-flight commit and LMDB, newest first', async () => {
  await withBackend(async (b) => {
    b.put('key', B('a'), B('1'));
    assert.equal(b.get('key', B('a'))?.toString(), '1');
    const first = b.commit();
    assert.equal(b.uncommittedWrites, 1, 'in flight until LMDB commits');
    b.put('key', B('a'), B('2'));
    assert.equal(b.get('key', B('a'))?.toString(), '2', 'pending shadows in-flight');
    await first;
    assert.equal(b.get('key', B('a'))?.toString(), '2');
    await b.commit();
    assert.equal(b.pendingWrites, 0);
    assert.equal(b.uncommittedWrites, 0);
    assert.equal(b.get('key', B('a'))?.toString(), '2', 'from LMDB after commit');
    b.delete('key', B('a'));
    assert.equal(b.get('key', B('a')), undefined, 'a pending delete hides the committed value');
    assert.equal(b.get('meta', B('a')), undefined, 'buckets are separate');
    await b.commit();
    assert.equal(b.get('key', B('a')), undefined);
  });
});

test('forEach merges batches over LMDB in key order (property test against a Map)', async () => {
  type Op = { kind: 'put' | 'del'; key: string; value: string } | { kind: 'commit'; wait: boolean };
  const keyArb = fc.string({ unit: fc.constantFrom('a', 'b', '\x00', '\xff'), minLength: 1, maxLength: 3 });
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constantFrom('put' as const, 'del' as const), key: keyArb, value: fc.string({ maxLength: 3 }) }),
    fc.record({ kind: fc.constant('commit' as const), wait: fc.boolean() }),
  );
  const queryArb = fc.record({ start: fc.option(keyArb, { nil: undefined }), end: fc.option(keyArb, { nil: undefined }), limit: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }) });
  await withBackend(async (b) => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { maxLength: 25 }), fc.array(queryArb, { minLength: 1, maxLength: 4 }), async (ops, queries) => {
        const bucket = run++ % 2 === 0 ? 'lease' : 'auth';
        const model = new Map<string, string>();
        b.forEach(bucket, {}, (k) => void b.delete(bucket, Buffer.from(k)));
        await b.commit();
        const waits: Promise<void>[] = [];
        for (const op of ops) {
          if (op.kind === 'commit') {
            const p = b.commit();
            if (op.wait) await p;
            else waits.push(p);
          } else if (op.kind === 'put') {
            b.put(bucket, B(op.key), B(op.value));
            model.set(op.key, op.value);
          } else {
            b.delete(bucket, B(op.key));
            model.delete(op.key);
          }
        }
        for (const q of queries) {
          const want = [...model]
            .filter(([k]) => (q.start === undefined || k >= q.start) && (q.end === undefined || k < q.end))
            .sort(([x], [y]) => (x < y ? -1 : 1))
            .slice(0, q.limit ?? Infinity)
            .map(([k, v]) => `${k}=${v}`);
          const got: string[] = [];
          const opts = { ...(q.start !== undefined ? { start: B(q.start) } : {}), ...(q.end !== undefined ? { end: B(q.end) } : {}), ...(q.limit !== undefined ? { limit: q.limit } : {}) };
          b.forEach(bucket, opts, (k, v) => void got.push(`${k.toString('latin1')}=${v.toString('latin1')}`));
          assert.deepEqual(got, want);
          for (const [k, v] of model) assert.equal(b.get(bucket, B(k))?.toString('latin1'), v);
        }
        await Promise.all(waits);
      }),
      { numRuns: 60 },
    );
  });
});

test('the consistent index persists with its batch across reopen', async () => {
  const dir = tmpDir();
  try {
    const b = Backend.open(dir);
    assert.deepEqual(b.consistentIndex(), { index: 0, term: 0 });
    b.put('key', B('k'), B('v'));
    b.setConsistentIndex({ index: 2 ** 40 + 5, term: 3 });
    assert.deepEqual(b.consistentIndex(), { index: 2 ** 40 + 5, term: 3 });
    await b.close();
    const again = Backend.open(dir);
    assert.deepEqual(again.consistentIndex(), { index: 2 ** 40 + 5, term: 3 });
    assert.equal(again.get('key', B('k'))?.toString(), 'v');
    assert.throws(() => again.setConsistentIndex({ index: -1, term: 0 }));
    await again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the batch limit commits at the consistent-index safe point; the interval commits the rest', async () => {
  await withBackend(
    async (b) => {
      for (let i = 0; i < 5; i++) b.put('key', B(`k${i}`), B('v'));
      assert.equal(b.pendingWrites, 5, 'plain writes never commit by themselves');
      b.setConsistentIndex({ index: 1, term: 1 });
      assert.equal(b.pendingWrites, 0, 'limit reached at the safe point: handed to LMDB');
      b.put('key', B('late'), B('v'));
      await until(() => b.pendingWrites === 0, 'interval commit');
    },
    { batchLimit: 6, batchIntervalMs: 10 },
  );
});

const here = path.dirname(fileURLToPath(import.meta.url));

test('a SIGKILL mid-run leaves exactly the entries up to the stored consistent index', { timeout: 60_000 }, async () => {
  for (const seed of [1, 2, 3]) {
    const dir = tmpDir();
    try {
      const child = spawnSync(process.execPath, [path.join(here, 'backend-crash-child.js'), dir, String(seed)], { encoding: 'utf8' });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const b = Backend.open(dir);
      const { index } = b.consistentIndex();
      let present = 0;
      b.forEach('key', {}, (k) => {
        present++;
        assert.ok(Number(k.toString().split('-')[0]) <= index, `entry ${k.toString()} above consistent index ${index}`);
      });
      assert.equal(present, index * 3, `every write of entries 1..${index} is there`);
      assert.ok(index > 0, 'some batches were committed before the kill');
      await b.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('size, sizeInUse and defragment: free pages are returned and data and concurrent writes survive', async () => {
  await withBackend(async (b, dir) => {
    const value = Buffer.alloc(300, 7);
    for (let i = 0; i < 3000; i++) b.put('key', B(`k${String(i).padStart(5, '0')}`), value);
    await b.commit();
    for (let i = 0; i < 3000; i += 3) {
      if (i % 3 !== 0) continue;
      b.delete('key', B(`k${String(i).padStart(5, '0')}`));
      b.delete('key', B(`k${String(i + 1).padStart(5, '0')}`));
    }
    await b.commit();
    await b.commit();
    const before = b.size();
    assert.ok(b.sizeInUse() < before, `in use ${b.sizeInUse()} < size ${before}`);
    const defrag = b.defragment();
    b.put('key', B('during'), B('x'));
    await defrag;
    assert.ok(b.size() < before, `defragmented ${b.size()} < ${before}`);
    assert.equal(b.get('key', B('during'))?.toString(), 'x');
    assert.equal(b.get('key', B('k00002'))?.length, 300);
    assert.equal(b.get('key', B('k00003')), undefined);
    await b.commit();
    assert.deepEqual(fs.readdirSync(dir), ['db']);
    let n = 0;
    b.forEach('key', {}, () => void n++);
    assert.equal(n, 1000 + 1);
  });
});

test('snapshotTo copies exactly the committed state with its consistent index', async () => {
  await withBackend(async (b, dir) => {
    b.put('key', B('a'), B('1'));
    b.setConsistentIndex({ index: 7, term: 2 });
    const snap = b.snapshotTo(path.join(dir, 'snap.db'));
    b.put('key', B('b'), B('2'));
    b.setConsistentIndex({ index: 8, term: 2 });
    const meta = await snap;
    assert.deepEqual({ index: meta.index, term: meta.term }, { index: 7, term: 2 });
    assert.ok(meta.sizeBytes > 0);
    assert.equal(b.get('key', B('b'))?.toString(), '2', 'writes during the copy are kept');
    const restored = path.join(dir, 'restored');
    fs.mkdirSync(path.join(restored, 'db'), { recursive: true });
    fs.renameSync(path.join(dir, 'snap.db'), path.join(restored, 'db', 'data.mdb'));
    const r = Backend.open(restored);
    assert.deepEqual(r.consistentIndex(), { index: 7, term: 2 });
    assert.equal(r.get('key', B('a'))?.toString(), '1');
    assert.equal(r.get('key', B('b')), undefined);
    await r.close();
  });
});

test('open finishes a defragmentation interrupted between its renames, or discards an incomplete one', async () => {
  const dir = tmpDir();
  try {
    const b = Backend.open(dir);
    b.put('key', B('a'), B('1'));
    await b.close();
    fs.renameSync(path.join(dir, 'db'), path.join(dir, 'db.defrag-1-1'));
    fs.mkdirSync(path.join(dir, 'db.old-1-1'));
    const r = Backend.open(dir);
    assert.equal(r.get('key', B('a'))?.toString(), '1');
    await r.close();
    fs.mkdirSync(path.join(dir, 'db.defrag-2-1'));
    const r2 = Backend.open(dir);
    assert.deepEqual(fs.readdirSync(dir), ['db']);
    await r2.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
