/**
 * Issue 7: a Range over ~50 MB goes through the real H2 server to a client in another process that reads
 * slowly (HTTP/2 back-pressure), checks every key and value, and the server's memory stays bounded while it
 * serves: streamed, its heap + array buffers grow by a fraction of the response; the same range served
 * materialised (the control) grows by more than the whole response, so the measurement can tell.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/base/logger.js';
import { kvService, type KvApi } from '../../src/api/grpc/services.js';
import { startServer, connect, closeSession, waitFor } from '../../src/api/h2/test-support.js';
import { RangeRequest, TxnRequest, type ResponseHeader } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { openKvStore } from '../../src/server/kv-store-impl.js';
import type { KvStore } from '../../src/server/kv-store.js';
import { keyFor, keyPrefix, valueFor } from './big-range-child.js';

const keys = 12_500;
const valueBytes = 4000;
const putsPerTxn = 250;
/**
 * Growth of array buffers (where values live) allowed while streaming a ~50 MB response: a few 256 KiB
 * chunks in flight, socket buffers, with a wide margin. Materialised, the same range needs twice the response.
 */
const streamedBuffersMaxBytes = 12 * 1024 * 1024;
/** Heap growth allowed: a young generation's worth of garbage (which GC timing decides) and then some. */
const streamedHeapMaxBytes = 48 * 1024 * 1024;
const etcdctl = '/usr/bin/etcdctl';
const childScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'big-range-child.js');

function header(revision: number): ResponseHeader {
  return { clusterId: 1n, memberId: 2n, revision: BigInt(revision), raftTerm: 3n };
}

async function load(store: KvStore): Promise<void> {
  for (let i = 0; i < keys; i += putsPerTxn) {
    const success = [];
    for (let j = i; j < Math.min(keys, i + putsPerTxn); j++) {
      success.push({ request: { $case: 'requestPut' as const, value: { key: keyFor(j), value: valueFor(j, valueBytes), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } });
    }
    store.applyTxn(TxnRequest.fromPartial({ success }));
  }
  await store.forceCommit();
}

function kvApi(store: KvStore, streamBytesMin: () => number): KvApi {
  const unused = (): Promise<never> => Promise.reject(new Error('not used by this test'));
  return {
    range: (r) => Promise.resolve({ ...store.range(r), header: header(store.rev()) }),
    rangeStreamed: (r) => store.rangeForWire!(r, { header, streamBytesMin: streamBytesMin() }),
    put: unused, deleteRange: unused, txn: unused, compact: unused,
  };
}

interface Usage {
  heapBytes: number;
  buffersBytes: number;
}

function usageNow(): Usage {
  const m = process.memoryUsage();
  return { heapBytes: m.heapUsed, buffersBytes: m.arrayBuffers };
}

interface ChildResult {
  status: number; kvs: number; count: number; messageBytes: number; error?: string;
}

/** Runs the reading client in a child process while sampling this process's memory every few ms. */
async function readInChild(target: string): Promise<{ result: ChildResult; growth: Usage }> {
  const baseline = usageNow();
  const peak = { ...baseline };
  const sampler = setInterval(() => {
    const now = usageNow();
    peak.heapBytes = Math.max(peak.heapBytes, now.heapBytes);
    peak.buffersBytes = Math.max(peak.buffersBytes, now.buffersBytes);
  }, 2);
  try {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [childScript, target, String(keys), String(valueBytes)], { timeout: 120_000 }, (err, out) =>
        (err ? reject(new Error(`${String(err)}\n${out}`)) : resolve(out)));
    });
    const growth = { heapBytes: peak.heapBytes - baseline.heapBytes, buffersBytes: peak.buffersBytes - baseline.buffersBytes };
    return { result: JSON.parse(stdout.trim()) as ChildResult, growth };
  } finally {
    clearInterval(sampler);
  }
}

const mib = (n: number): string => `${(n / 2 ** 20).toFixed(1)} MiB`;

test('a 50 MB range is streamed to a slow client with bounded server memory, and every kv arrives intact', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'big-range-test-'));
  const store = await openKvStore(dir, { log: silentLogger, batchIntervalMs: 100, batchLimit: 10_000, compactionBatchLimit: 1000 });
  let streamBytesMin = 1024 * 1024;
  const { server, port, target } = await startServer([kvService(kvApi(store, () => streamBytesMin), silentLogger)]);
  try {
    await load(store);
    const streamed = await readInChild(target);
    assert.equal(streamed.result.error, undefined);
    assert.equal(streamed.result.status, 0);
    assert.equal(streamed.result.kvs, keys);
    assert.equal(streamed.result.count, keys);
    assert.ok(streamed.result.messageBytes > keys * valueBytes, `message of ${streamed.result.messageBytes} bytes`);
    const g = streamed.growth;
    assert.ok(g.buffersBytes < streamedBuffersMaxBytes && g.heapBytes < streamedHeapMaxBytes, `streamed: buffers +${mib(g.buffersBytes)}, heap +${mib(g.heapBytes)}`);

    await etcdctlReadsStreamedRange(target);

    streamBytesMin = Infinity;
    const whole = await readInChild(target);
    assert.equal(whole.result.status, 0);
    assert.equal(whole.result.kvs, keys);
    assert.ok(whole.growth.buffersBytes > keys * valueBytes, `materialised: buffers grew only ${mib(whole.growth.buffersBytes)}`);
    streamBytesMin = 1024 * 1024;

    await cancelMidStreamReleasesRevision(store, port);
  } finally {
    await server.close(1000);
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Go's client pings for every round trip of data it receives (BDP estimation); a streamed response must
 * count as data sent for the ping policy, or the connection is closed as too_many_pings half-way.
 */
async function etcdctlReadsStreamedRange(target: string): Promise<void> {
  if (!fs.existsSync(etcdctl)) return;
  const limit = 1000;
  const stdout = await new Promise<string>((resolve, reject) => {
    const args = [`--endpoints=${target}`, '--command-timeout=60s', 'get', keyPrefix, 'big0', `--limit=${limit}`, '-w', 'json'];
    execFile(etcdctl, args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 64 * 1024 * 1024, timeout: 90_000 }, (err, out, errOut) =>
      (err ? reject(new Error(`${String(err)}\n${errOut.slice(-2000)}`)) : resolve(out)));
  });
  const res = JSON.parse(stdout) as { kvs: Array<{ key: string; value: string }>; count: number; more: boolean };
  assert.equal(res.kvs.length, limit);
  assert.equal(res.count, keys);
  assert.equal(res.more, true);
  assert.deepEqual(Buffer.from(res.kvs[limit - 1]!.value, 'base64'), valueFor(limit - 1, valueBytes));
}

/** A client that leaves half-way must not keep its revision pinned: a compaction after it completes. */
async function cancelMidStreamReleasesRevision(store: KvStore, port: number): Promise<void> {
  const session = await connect(port);
  try {
    const body = RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from(keyPrefix), rangeEnd: Buffer.from('big0') })).finish();
    const framed = Buffer.alloc(5 + body.length);
    framed.writeUInt32BE(body.length, 1);
    framed.set(body, 5);
    const call = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' });
    call.on('error', () => {});
    let received = 0;
    call.on('data', (c: Buffer) => void (received += c.length));
    call.end(framed);
    await waitFor(() => received > 0, { what: 'the first bytes of the range', timeoutMs: 20_000 });
    // A new revision above the pinned one, then a compaction that must wait for the stream.
    store.applyTxn(TxnRequest.fromPartial({ success: [{ request: { $case: 'requestPut', value: { key: keyFor(0), value: Buffer.from('x'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } }] }));
    let compacted = false;
    const physical = store.applyCompaction({ revision: BigInt(store.rev()), physical: true }).physical.then(() => void (compacted = true));
    call.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => compacted, { what: 'the compaction after the client left', timeoutMs: 20_000 });
    await physical;
    assert.ok(received < keys * valueBytes, 'the client left before the end');
  } finally {
    await closeSession(session);
  }
}
