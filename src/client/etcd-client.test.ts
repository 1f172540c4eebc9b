/** The client against the real etcd 3.4, plus a fake member that answers Unavailable to test failover. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { Server, ServerCredentials, status as grpcStatus, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { GrpcCode, type ErrorKind } from '../base/errors.js';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  KVService,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { EtcdClient, isClientError, prefixRangeEnd, type AttemptFailure } from './index.js';
import { RealEtcd, etcdctlBinary, freePort, haveRealEtcd } from './testing-real-etcd.js';

const skip = haveRealEtcd() ? false : 'the real etcd (/usr/bin/etcd) is not installed';

/** Expects a ClientError of etcd's error table entry `kind`; a failure message shows what came instead. */
async function rejectsWith(call: Promise<unknown>, kind: ErrorKind): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(isClientError(err, kind), `expected etcd error ${kind}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    return true;
  });
}

let etcd: RealEtcd;
let client: EtcdClient;

before(async () => {
  if (skip !== false) return;
  etcd = await RealEtcd.start();
  client = new EtcdClient({ endpoints: [etcd.endpoint] });
});

after(async () => {
  if (skip !== false) return;
  client.close();
  await etcd.stop();
});

test('put, range and deleteRange with previous values, prefixes, limits, sorting and filters', { skip }, async () => {
  const first = await client.kv.put({ key: 'k/1', value: 'one' });
  assert.ok((first.header?.revision ?? 0n) > 1n);
  const second = await client.kv.put({ key: 'k/1', value: 'uno', prevKv: true });
  assert.equal(second.prevKv?.value.toString(), 'one');
  await client.kv.put({ key: 'k/2', value: 'two' });
  await client.kv.put({ key: 'k/3', value: 'three' });
  const key = Buffer.from('k/');
  const page = await client.kv.range({ key, rangeEnd: prefixRangeEnd(key), limit: 2n });
  assert.deepEqual(page.kvs.map((kv) => kv.key.toString()), ['k/1', 'k/2']);
  assert.equal(page.more, true);
  assert.equal(page.count, 3n);
  const sorted = await client.kv.range({
    key,
    rangeEnd: prefixRangeEnd(key),
    sortOrder: RangeRequest_SortOrder.ASCEND,
    sortTarget: RangeRequest_SortTarget.VALUE,
  });
  assert.deepEqual(sorted.kvs.map((kv) => kv.value.toString()), ['three', 'two', 'uno']);
  const keysOnly = await client.kv.range({ key, rangeEnd: prefixRangeEnd(key), keysOnly: true });
  assert.deepEqual(keysOnly.kvs.map((kv) => [kv.key.toString(), kv.value.length]), [['k/1', 0], ['k/2', 0], ['k/3', 0]]);
  const counted = await client.kv.range({ key, rangeEnd: prefixRangeEnd(key), countOnly: true });
  assert.equal(counted.kvs.length, 0);
  assert.equal(counted.count, 3n);
  const modified = await client.kv.range({ key, rangeEnd: prefixRangeEnd(key), minModRevision: second.header?.revision ?? 0n, maxModRevision: second.header?.revision ?? 0n });
  assert.deepEqual(modified.kvs.map((kv) => kv.key.toString()), ['k/1']);
  const deleted = await client.kv.deleteRange({ key, rangeEnd: prefixRangeEnd(key), prevKv: true });
  assert.equal(deleted.deleted, 3n);
  assert.deepEqual(deleted.prevKvs.map((kv) => kv.value.toString()), ['uno', 'two', 'three']);
  const history = await client.kv.range({ key: 'k/1', revision: first.header?.revision ?? 0n });
  assert.equal(history.kvs[0]?.value.toString(), 'one');
});

test('txn compares and runs the success or failure branch atomically', { skip }, async () => {
  await client.kv.put({ key: 'tx', value: 'a' });
  const compare = [{ result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.VALUE, key: Buffer.from('tx'), targetUnion: { $case: 'value' as const, value: Buffer.from('a') }, rangeEnd: Buffer.alloc(0) }];
  const put = { request: { $case: 'requestPut' as const, value: { key: Buffer.from('tx'), value: Buffer.from('b'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } } };
  const get = { request: { $case: 'requestRange' as const, value: { key: Buffer.from('tx'), rangeEnd: Buffer.alloc(0), limit: 0n, revision: 0n, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false, countOnly: false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n } } };
  const won = await client.kv.txn({ compare, success: [put], failure: [get] });
  assert.equal(won.succeeded, true);
  assert.equal(won.responses[0]?.response?.$case, 'responsePut');
  const lost = await client.kv.txn({ compare, success: [put], failure: [get] });
  assert.equal(lost.succeeded, false);
  const r = lost.responses[0]?.response;
  assert.ok(r?.$case === 'responseRange' && r.value.kvs[0]?.value.toString() === 'b');
});

test("etcd's errors surface as ClientError with the gRPC code and etcd's exact message", { skip }, async () => {
  await assert.rejects(client.kv.put({ key: '', value: 'x' }), (err: unknown) => {
    assert.ok(isClientError(err, 'EmptyKey'));
    assert.equal(err.code, GrpcCode.InvalidArgument);
    assert.equal(err.message, 'etcdserver: key is not provided');
    assert.equal(err.endpoint, etcd.endpoint);
    return true;
  });
  const { header } = await client.kv.put({ key: 'c', value: '1' });
  const rev = header?.revision ?? 0n;
  await client.kv.put({ key: 'c', value: '2' });
  await client.kv.compact({ revision: rev, physical: true });
  await assert.rejects(client.kv.range({ key: 'c', revision: rev - 1n }), (err: unknown) => isClientError(err, 'Compacted') && err.code === GrpcCode.OutOfRange);
  await rejectsWith(client.kv.range({ key: 'c', revision: rev + 1000n }), 'FutureRev');
  await assert.rejects(client.kv.put({ key: 'c', value: 'x', lease: 12345n }), (err: unknown) => isClientError(err, 'LeaseNotFound') && err.code === GrpcCode.NotFound);
});

test('leases: grant, attach, time to live with keys, list, revoke', { skip }, async () => {
  const grant = await client.lease.grant({ TTL: 60n });
  assert.ok(grant.ID > 0n);
  assert.equal(grant.TTL, 60n);
  await client.kv.put({ key: 'leased', value: 'v', lease: grant.ID });
  const ttl = await client.lease.timeToLive({ ID: grant.ID, keys: true });
  assert.equal(ttl.grantedTTL, 60n);
  assert.deepEqual(ttl.keys.map((k) => k.toString()), ['leased']);
  const { leases } = await client.lease.leases();
  assert.ok(leases.some((l) => l.ID === grant.ID));
  await client.lease.revoke({ ID: grant.ID });
  assert.equal((await client.kv.range({ key: 'leased' })).count, 0n);
  await rejectsWith(client.lease.revoke({ ID: grant.ID }), 'LeaseNotFound');
});

test('maintenance: status, hashKV, alarms, defragment; 64-bit ids are unsigned bigints', { skip }, async () => {
  const status = await client.maintenance.status();
  assert.equal(status.version, '3.4.23');
  assert.equal(status.leader, status.header?.memberId);
  assert.ok(typeof status.leader === 'bigint' && status.leader > 0n);
  const hash = await client.maintenance.hashKV({ revision: 0n });
  assert.ok(hash.hash > 0);
  assert.deepEqual((await client.maintenance.alarm()).alarms, []);
  await client.maintenance.defragment();
  const pinned = await client.maintenance.status({ endpoint: `http://${etcd.endpoint}` });
  assert.equal(pinned.header?.memberId, status.header?.memberId);
});

test('cluster: list, add a learner, update it, promotion refused, remove it', { skip }, async () => {
  const { members } = await client.cluster.memberList();
  assert.equal(members.length, 1);
  assert.equal(members[0]?.name, 'default');
  const added = await client.cluster.memberAdd({ peerURLs: ['http://127.0.0.1:1'], isLearner: true });
  const id = added.member?.ID ?? 0n;
  assert.ok(id > 0n && added.member?.isLearner === true);
  const updated = await client.cluster.memberUpdate({ ID: id, peerURLs: ['http://127.0.0.1:2'] });
  assert.deepEqual(updated.members.find((m) => m.ID === id)?.peerURLs, ['http://127.0.0.1:2']);
  await rejectsWith(client.cluster.memberPromote({ ID: id }), 'LearnerNotReady');
  const removed = await client.cluster.memberRemove({ ID: id });
  assert.equal(removed.members.length, 1);
  await rejectsWith(client.cluster.memberRemove({ ID: id }), 'MemberNotFound');
});

test('fails over to the next endpoint when one cannot be reached', { skip }, async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const failures: AttemptFailure[] = [];
  const c = new EtcdClient({ endpoints: [dead, etcd.endpoint], dialTimeoutMs: 1000, onAttemptFailed: (f) => failures.push(f) });
  try {
    const started = Date.now();
    await c.kv.put({ key: 'failover', value: 'ok' });
    assert.equal((await c.kv.range({ key: 'failover' })).kvs[0]?.value.toString(), 'ok');
    assert.ok(Date.now() - started < 3000, 'a refused connection moves on without waiting for the deadline');
    assert.equal(failures.length, 0, 'no request was sent to the dead endpoint');
  } finally {
    c.close();
  }
});

test('with no reachable endpoint a call fails with DeadlineExceeded at its deadline', { skip }, async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const c = new EtcdClient({ endpoints: [dead], dialTimeoutMs: 100, requestTimeoutMs: 600 });
  try {
    const started = Date.now();
    await assert.rejects(c.kv.range({ key: 'x' }), (err: unknown) => isClientError(err) && err.code === GrpcCode.DeadlineExceeded && err.message === 'context deadline exceeded' && !err.sent);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 550 && elapsed < 3000, `gave up after ${elapsed} ms`);
  } finally {
    c.close();
  }
});

/** A member that answers every KV call with Unavailable, as a member without a leader does. */
async function startUnavailableMember(): Promise<{ endpoint: string; calls: () => number; stop: () => Promise<void> }> {
  const server = new Server();
  let calls = 0;
  const unavailable = (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
    calls++;
    callback({ code: grpcStatus.UNAVAILABLE, details: 'etcdserver: no leader' });
  };
  server.addService(KVService, { range: unavailable, put: unavailable, deleteRange: unavailable, txn: unavailable, compact: unavailable });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return {
    endpoint: `127.0.0.1:${port}`,
    calls: () => calls,
    stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

test('reads fail over on Unavailable; writes are not resent after an ambiguous Unavailable', { skip }, async () => {
  const sick = await startUnavailableMember();
  const failures: AttemptFailure[] = [];
  const c = new EtcdClient({ endpoints: [sick.endpoint, etcd.endpoint], onAttemptFailed: (f) => failures.push(f) });
  try {
    await client.kv.put({ key: 'ro', value: 'v' });
    assert.equal((await c.kv.range({ key: 'ro' })).kvs[0]?.value.toString(), 'v');
    assert.equal(failures.length, 1);
    assert.equal(failures[0]?.endpoint, sick.endpoint);
    assert.equal(failures[0]?.error.message, 'etcdserver: no leader');
    const c2 = new EtcdClient({ endpoints: [sick.endpoint, etcd.endpoint] });
    try {
      await assert.rejects(c2.kv.put({ key: 'rw', value: 'v' }), (err: unknown) => isClientError(err, 'NoLeader') && err.code === GrpcCode.Unavailable);
    } finally {
      c2.close();
    }
    assert.equal(sick.calls(), 2);
    assert.equal((await client.kv.range({ key: 'rw' })).count, 0n, 'the write was not resent to the healthy member');
  } finally {
    c.close();
    await sick.stop();
  }
});

test('close() refuses later calls; an aborted signal cancels a call', { skip }, async () => {
  const c = new EtcdClient({ endpoints: [etcd.endpoint] });
  await c.kv.range({ key: 'x' });
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(c.kv.range({ key: 'x' }, { signal: controller.signal }), (err: unknown) => isClientError(err) && err.code === GrpcCode.Canceled);
  c.close();
  await assert.rejects(c.kv.range({ key: 'x' }), (err: unknown) => isClientError(err) && err.code === GrpcCode.Canceled && err.message === 'the client is closed');
});

test('username and password: a token is fetched and sent; wrong credentials are refused', { skip }, async () => {
  const ctl = (...args: string[]): string =>
    execFileSync(etcdctlBinary, ['--endpoints', etcd.endpoint, ...args], { env: { ETCDCTL_API: '3' }, encoding: 'utf8' });
  ctl('user', 'add', 'root:rootpw');
  ctl('auth', 'enable');
  const good = new EtcdClient({ endpoints: [etcd.endpoint], username: 'root', password: 'rootpw' });
  const bad = new EtcdClient({ endpoints: [etcd.endpoint], username: 'root', password: 'nope' });
  const anonymous = new EtcdClient({ endpoints: [etcd.endpoint] });
  try {
    await good.kv.put({ key: 'secure', value: 'v' });
    assert.equal((await good.kv.range({ key: 'secure' })).count, 1n);
    await rejectsWith(bad.kv.range({ key: 'secure' }), 'AuthFailed');
    await rejectsWith(anonymous.kv.range({ key: 'secure' }), 'UserEmpty');
  } finally {
    good.close();
    bad.close();
    anonymous.close();
    ctl('--user', 'root:rootpw', 'auth', 'disable');
  }
});
