/**
 * Leases through a whole member started in this process (bootstrap, raft, apply, backend, gRPC): grant,
 * keys attached by puts, the keep-alive stream, expiry through raft deleting every key of a lease in one
 * revision, and leases with their keys surviving a restart.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { silentLogger } from '../../src/base/logger.js';
import { loadConfig } from '../../src/server/config.js';
import { startMember, type RunningMember } from '../../src/server/bootstrap.js';
import {
  LeaseClient, LeaseLeasesRequest, LeaseTimeToLiveRequest,
  type LeaseKeepAliveRequest, type LeaseKeepAliveResponse, type LeaseLeasesResponse, type LeaseTimeToLiveResponse,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { EtcdRpc } from '../e2e/grpc-client.js';

const b = (s: string): Buffer => Buffer.from(s);

/** heartbeat 50 ms, election 500 ms: etcd's minimum TTL is then ceil(0.75 s) = 1 s. */
function config(dataDir: string): ReturnType<typeof loadConfig> {
  return loadConfig([
    `--data-dir=${dataDir}`, '--listen-client-urls=http://127.0.0.1:0', '--advertise-client-urls=http://127.0.0.1:0',
    '--listen-peer-urls=http://127.0.0.1:0', '--initial-advertise-peer-urls=http://127.0.0.1:1',
    '--initial-cluster=default=http://127.0.0.1:1', '--heartbeat-interval=50', '--election-timeout=500',
  ], {});
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

class Client {
  readonly rpc: EtcdRpc;
  readonly lease: LeaseClient;
  constructor(port: number) {
    this.rpc = new EtcdRpc(`127.0.0.1:${port}`);
    this.lease = new LeaseClient(`127.0.0.1:${port}`, credentials.createInsecure(), { channelOverride: this.rpc.kvClient.getChannel() });
  }
  timeToLive(id: bigint, keys = false): Promise<LeaseTimeToLiveResponse> {
    return new Promise((ok, fail) => this.lease.leaseTimeToLive(LeaseTimeToLiveRequest.fromPartial({ ID: id, keys }), (e, r) => (e ? fail(e) : ok(r))));
  }
  leases(): Promise<LeaseLeasesResponse> {
    return new Promise((ok, fail) => this.lease.leaseLeases(LeaseLeasesRequest.fromPartial({}), (e, r) => (e ? fail(e) : ok(r))));
  }
  close(): void {
    this.lease.close();
    this.rpc.close();
  }
}

/** Sends `ids` on one keep-alive stream, half-closes it, and collects every response until the server ends it. */
function keepAlive(client: Client, ids: readonly bigint[]): Promise<LeaseKeepAliveResponse[]> {
  return new Promise((resolve, reject) => {
    const stream: ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> = client.lease.leaseKeepAlive(new Metadata());
    const out: LeaseKeepAliveResponse[] = [];
    stream.on('data', (r: LeaseKeepAliveResponse) => out.push(r));
    stream.on('error', (e: ServiceError) => reject(e));
    stream.on('end', () => resolve(out));
    for (const ID of ids) stream.write({ ID });
    stream.end();
  });
}

describe('leases in an in-process member', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lease-server-'));
  let member: RunningMember;
  let client: Client;

  before(async () => {
    member = await startMember(config(join(dir, 'data')), silentLogger);
    client = new Client(member.clientPorts[0]!);
  });

  after(async () => {
    client?.close();
    await member?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('grants server-chosen positive ids, attaches keys, and answers time-to-live with the keys', async () => {
    const granted = await client.rpc.leaseGrant({ TTL: 60n });
    assert.ok(granted.ID > 0n, `server-chosen id ${granted.ID}`);
    assert.equal(granted.TTL, 60n);
    assert.equal(granted.header?.memberId, member.memberId);
    await client.rpc.put({ key: b('a/2'), value: b('x'), lease: granted.ID });
    await client.rpc.put({ key: b('a/1'), value: b('y'), lease: granted.ID });
    const ttl = await client.timeToLive(granted.ID, true);
    assert.equal(ttl.grantedTTL, 60n);
    assert.ok(ttl.TTL >= 58n && ttl.TTL <= 60n, `remaining ${ttl.TTL}`);
    assert.deepEqual(ttl.keys.map(String), ['a/1', 'a/2']);
    const short = await client.rpc.leaseGrant({ ID: 77n, TTL: 0n });
    assert.equal(short.TTL, 1n, 'a TTL below the minimum is raised to it');
    await client.rpc.leaseRevoke({ ID: 77n });
    await client.rpc.leaseRevoke({ ID: granted.ID });
    assert.equal((await client.timeToLive(granted.ID)).TTL, -1n);
  });

  it('keep-alive stream: answers each request in order, TTL 0 for an unknown lease, ends when the client does', async () => {
    const a = (await client.rpc.leaseGrant({ ID: 100n, TTL: 30n })).ID;
    const c = (await client.rpc.leaseGrant({ ID: 101n, TTL: 40n })).ID;
    const responses = await keepAlive(client, [a, 999n, c, a]);
    assert.deepEqual(responses.map((r) => [r.ID, r.TTL]), [[a, 30n], [999n, 0n], [c, 40n], [a, 30n]]);
    assert.ok(responses.every((r) => r.header?.memberId === member.memberId && r.header.revision > 0n));
    // a stream the client cancels leaves the server serving
    const stream = client.lease.leaseKeepAlive(new Metadata());
    stream.on('error', () => {});
    stream.write({ ID: a });
    stream.cancel();
    assert.equal((await client.timeToLive(a)).grantedTTL, 30n);
    await client.rpc.leaseRevoke({ ID: a });
    await client.rpc.leaseRevoke({ ID: c });
  });

  it('an expired lease is revoked through raft: all its keys go in one revision', async () => {
    const id = (await client.rpc.leaseGrant({ ID: 200n, TTL: 1n })).ID;
    await client.rpc.put({ key: b('e/1'), value: b('1'), lease: id });
    const before = (await client.rpc.put({ key: b('e/2'), value: b('2'), lease: id })).header!.revision;
    const after = await waitFor('the lease to expire', async () => {
      const res = await client.rpc.range({ key: b('e/'), rangeEnd: b('e0') });
      return res.kvs.length === 0 ? res.header!.revision : undefined;
    });
    assert.equal(after, before + 1n, 'one revision deletes every key of the lease');
    assert.equal((await client.rpc.range({ key: b('e/'), rangeEnd: b('e0'), revision: before })).kvs.length, 2);
    assert.equal((await client.timeToLive(id)).TTL, -1n);
    assert.ok(!(await client.leases()).leases.some((l) => l.ID === id));
  });

  it('leases and their keys survive a restart; a kept-alive lease then starts its TTL again', async () => {
    await client.rpc.leaseGrant({ ID: 300n, TTL: 120n });
    await client.rpc.put({ key: b('r/k'), value: b('v'), lease: 300n });
    client.close();
    await member.stop();
    member = await startMember(config(join(dir, 'data')), silentLogger);
    client = new Client(member.clientPorts[0]!);
    const ttl = await client.timeToLive(300n, true);
    assert.equal(ttl.grantedTTL, 120n);
    assert.deepEqual(ttl.keys.map(String), ['r/k']);
    assert.deepEqual((await client.leases()).leases.map((l) => l.ID), [300n]);
    assert.deepEqual((await keepAlive(client, [300n])).map((r) => r.TTL), [120n]);
    await client.rpc.leaseRevoke({ ID: 300n });
    assert.equal((await client.rpc.range({ key: b('r/k') })).kvs.length, 0);
  });
});
