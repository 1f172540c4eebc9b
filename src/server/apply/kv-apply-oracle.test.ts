/**
 * Differential test against real etcd (skipped when /usr/bin/etcd is not installed): the same seeded
 * random KV requests go to an etcd 3.4 process and to kv-validate + kv-apply over our store; responses must
 * be byte-identical on the wire (top-level header ids aside) and errors must carry the same code and message.
 * At the end, HashKV of both stores must be equal, which needs identical records and compaction.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import * as rpc from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { validateDeleteRange, validatePut, validateRange, validateTxn } from '../../api/kv-validate.js';
import { KvStore } from '../../mvcc/kv-store.js';
import { Backend } from '../../storage/backend/backend.js';
import { KvApplier } from './kv-apply.js';

const etcdBin = '/usr/bin/etcd';
const hasEtcd = fs.existsSync(etcdBin);
const seed = Number(process.env.KV_ORACLE_SEED ?? 20261125);
const steps = Number(process.env.KV_ORACLE_STEPS ?? 300);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function rng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outcome = { error: string } | { bytes: Buffer; json: unknown };
type Kind = 'range' | 'put' | 'deleteRange' | 'txn' | 'compact';
const codecs = {
  range: rpc.RangeResponse,
  put: rpc.PutResponse,
  deleteRange: rpc.DeleteRangeResponse,
  txn: rpc.TxnResponse,
  compact: rpc.CompactionResponse,
} as const;

function encodeOutcome(kind: Kind, resp: { header: rpc.ResponseHeader | undefined }): Outcome {
  const normalized = { ...resp, header: resp.header && { ...resp.header, clusterId: 0n, memberId: 0n, raftTerm: 0n } };
  const codec = codecs[kind] as { encode(m: unknown): { finish(): Uint8Array }; toJSON(m: unknown): unknown };
  return { bytes: Buffer.from(codec.encode(normalized).finish()), json: codec.toJSON(normalized) };
}

class Gen {
  constructor(readonly r: () => number, readonly lease: bigint) {}
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  key(): Buffer {
    return Buffer.from(this.pick(['a', 'b', 'c', 'd', 'e', 'f', 'a\x00', 'b\xff']), 'latin1');
  }
  end(): Buffer {
    return this.pick([Buffer.alloc(0), Buffer.alloc(0), Buffer.from([0]), Buffer.from('c'), Buffer.from('g'), Buffer.from('a')]);
  }
  rev(cur: number): bigint {
    return BigInt(this.chance(0.6) ? 0 : this.int(-1, cur + 2));
  }
  range(cur: number): rpc.RangeRequest {
    const filter = () => (this.chance(0.85) ? 0n : BigInt(this.int(-1, cur + 1)));
    return rpc.RangeRequest.fromPartial({
      key: this.key(), rangeEnd: this.end(), limit: BigInt(this.chance(0.6) ? 0 : this.int(-1, 3)), revision: this.rev(cur),
      sortOrder: this.int(0, 2), sortTarget: this.chance(0.5) ? 0 : this.int(0, 4), keysOnly: this.chance(0.2), countOnly: this.chance(0.15),
      minModRevision: filter(), maxModRevision: filter(), minCreateRevision: filter(), maxCreateRevision: filter(),
    });
  }
  put(): rpc.PutRequest {
    const ignoreValue = this.chance(0.15);
    const ignoreLease = this.chance(0.15);
    return rpc.PutRequest.fromPartial({
      key: this.key(), value: ignoreValue && this.chance(0.8) ? Buffer.alloc(0) : Buffer.from(this.pick(['', 'x', 'yy', 'zzz'])),
      lease: ignoreLease && this.chance(0.8) ? 0n : this.pick([0n, 0n, 0n, this.lease, 424242n]),
      prevKv: this.chance(0.3), ignoreValue, ignoreLease,
    });
  }
  del(): rpc.DeleteRangeRequest {
    return rpc.DeleteRangeRequest.fromPartial({ key: this.key(), rangeEnd: this.end(), prevKv: this.chance(0.4) });
  }
  compare(cur: number): rpc.Compare {
    const target = this.chance(0.95) ? this.int(0, 4) : 7;
    const unions: rpc.Compare['targetUnion'][] = [
      { $case: 'version', value: BigInt(this.int(0, 3)) },
      { $case: 'createRevision', value: BigInt(this.int(0, cur)) },
      { $case: 'modRevision', value: BigInt(this.int(0, cur)) },
      { $case: 'value', value: Buffer.from(this.pick(['', 'x', 'yy'])) },
      { $case: 'lease', value: this.pick([0n, this.lease]) },
    ];
    const union = this.chance(0.85) && target < 5 ? unions[target] : this.pick(unions);
    return { key: this.key(), rangeEnd: this.chance(0.7) ? Buffer.alloc(0) : this.end(), target, result: this.chance(0.95) ? this.int(0, 3) : 6, targetUnion: union };
  }
  ops(cur: number, depth: number): rpc.RequestOp[] {
    return Array.from({ length: this.int(0, 3) }, (): rpc.RequestOp => {
      const k = this.r();
      if (k < 0.3) return { request: { $case: 'requestRange', value: this.range(cur) } };
      if (k < 0.65) return { request: { $case: 'requestPut', value: this.put() } };
      if (k < 0.85 || depth >= 2) return { request: { $case: 'requestDeleteRange', value: this.del() } };
      return { request: { $case: 'requestTxn', value: this.txn(cur, depth + 1) } };
    });
  }
  txn(cur: number, depth = 0): rpc.TxnRequest {
    for (;;) {
      const t = rpc.TxnRequest.fromPartial({ compare: Array.from({ length: this.int(0, 2) }, () => this.compare(cur)), success: this.ops(cur, depth), failure: this.ops(cur, depth) });
      if (depth > 0 || !panicsEtcd(t)) return t;
    }
  }
}

/**
 * etcd 3.4 panics applying a txn that deletes from a key on ("\0" end) and then puts with ignore_value or
 * ignore_lease (see kv-apply.ts); such txns are not sent to it.
 */
function panicsEtcd(t: rpc.TxnRequest): boolean {
  const ops = (x: rpc.TxnRequest): rpc.RequestOp[] => [...x.success, ...x.failure].flatMap((o) => (o.request?.$case === 'requestTxn' ? ops(o.request.value) : [o]));
  const all = ops(t);
  const fromKeyDelete = all.some((o) => o.request?.$case === 'requestDeleteRange' && o.request.value.rangeEnd.length === 1 && o.request.value.rangeEnd[0] === 0);
  return fromKeyDelete && all.some((o) => o.request?.$case === 'requestPut' && (o.request.value.ignoreValue || o.request.value.ignoreLease));
}

async function startEtcd(dir: string): Promise<{ proc: ChildProcess; port: number }> {
  const [port, peer] = [await freePort(), await freePort()];
  const peerUrl = `http://127.0.0.1:${peer}`;
  const proc = spawn(etcdBin, [
    '--name', 'oracle', '--data-dir', path.join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${port}`, '--advertise-client-urls', `http://127.0.0.1:${port}`,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `oracle=${peerUrl}`,
  ], { stdio: 'ignore' });
  return { proc, port };
}

function call<Req, Res>(fn: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

test('kv-apply answers as etcd 3.4 to seeded random requests, and HashKV agrees', { skip: !hasEtcd && 'etcd not installed', timeout: 180_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-oracle-'));
  const { proc, port } = await startEtcd(dir);
  const kv = new rpc.KVClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const lessor = new rpc.LeaseClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const maint = new rpc.MaintenanceClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const backend = Backend.open(path.join(dir, 'ours'));
  const store = KvStore.open(backend, { compactionPauseMs: 0, compactionBatchLimit: 5 });
  try {
    const deadline = Date.now() + 30_000;
    let grant: rpc.LeaseGrantResponse | undefined;
    while (grant === undefined) {
      grant = await call<rpc.LeaseGrantRequest, rpc.LeaseGrantResponse>(lessor.leaseGrant.bind(lessor), rpc.LeaseGrantRequest.fromPartial({ TTL: 3600n })).catch((e) => {
        if (Date.now() > deadline) throw e;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 100));
      });
    }
    const leases = new Set([grant.ID]);
    const ours = new KvApplier({ store, leases: { exists: (id) => leases.has(id) } });
    const g = new Gen(rng(seed), grant.ID);
    const tally = new Map<string, number>();
    for (let i = 0; i < steps; i++) {
      const cur = store.revision;
      const p = g.r();
      const [kind, req]: [Kind, unknown] =
        p < 0.3 ? ['put', g.put()] : p < 0.55 ? ['range', g.range(cur)] : p < 0.65 ? ['deleteRange', g.del()] : p < 0.95 ? ['txn', g.txn(cur)] : ['compact', rpc.CompactionRequest.fromPartial({ revision: BigInt(g.int(store.compactRevision - 1, cur + 1)), physical: g.chance(0.5) })];
      const theirs: Outcome = await call((kv as unknown as Record<Kind, (r: unknown, cb: (e: grpc.ServiceError | null, r: { header: rpc.ResponseHeader | undefined }) => void) => void>)[kind].bind(kv), req).then(
        (res) => encodeOutcome(kind, res),
        (err: grpc.ServiceError) => ({ error: `${err.code} ${err.details}` }),
      );
      let mine: Outcome;
      try {
        mine = encodeOutcome(kind, await applyOurs(ours, kind, req));
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        mine = { error: `${err.grpcCode} ${err.message}` };
      }
      const describe = () => `step ${i} (seed ${seed}) ${kind} ${JSON.stringify(codecsReq[kind].toJSON(req))}\netcd: ${JSON.stringify('json' in theirs ? theirs.json : theirs)}\nours: ${JSON.stringify('json' in mine ? mine.json : mine)}`;
      const label = 'error' in theirs ? `${kind}: ${theirs.error}` : kind;
      tally.set(label, (tally.get(label) ?? 0) + 1);
      if ('error' in theirs || 'error' in mine) assert.deepEqual(mine, theirs, describe());
      else assert.ok(mine.bytes.equals(theirs.bytes), describe());
    }
    t.diagnostic(JSON.stringify(Object.fromEntries([...tally].sort())));
    await store.compactionBarrier();
    const theirHash = await call<rpc.HashKVRequest, rpc.HashKVResponse>(maint.hashKv.bind(maint), rpc.HashKVRequest.fromPartial({ revision: 0n }));
    const ourHash = await store.hashKv(0);
    assert.deepEqual([ourHash.hash, BigInt(ourHash.compactRevision)], [theirHash.hash, theirHash.compactRevision]);
  } finally {
    kv.close();
    lessor.close();
    maint.close();
    proc.kill('SIGKILL');
    await store.close();
    await backend.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

const codecsReq = {
  range: rpc.RangeRequest,
  put: rpc.PutRequest,
  deleteRange: rpc.DeleteRangeRequest,
  txn: rpc.TxnRequest,
  compact: rpc.CompactionRequest,
} as unknown as Record<Kind, { toJSON(m: unknown): unknown }>;

async function applyOurs(a: KvApplier, kind: Kind, req: unknown): Promise<{ header: rpc.ResponseHeader | undefined }> {
  switch (kind) {
    case 'range':
      validateRange(req as rpc.RangeRequest);
      return a.range(req as rpc.RangeRequest);
    case 'put':
      validatePut(req as rpc.PutRequest);
      return a.put(req as rpc.PutRequest).response;
    case 'deleteRange':
      validateDeleteRange(req as rpc.DeleteRangeRequest);
      return a.deleteRange(req as rpc.DeleteRangeRequest).response;
    case 'txn':
      validateTxn(req as rpc.TxnRequest);
      return a.txn(req as rpc.TxnRequest).response;
    case 'compact': {
      const { response, physicalDone } = a.compact(req as rpc.CompactionRequest);
      if ((req as rpc.CompactionRequest).physical) await physicalDone;
      return response;
    }
  }
}
