/**
 * Issue 5: leases across a leader change, on a 3-member cluster, against every target.
 *
 * Two leases are granted through a FOLLOWER: `kept` is kept alive through that follower (a keep-alive
 * stream, one request per second), `left` is not. Keys are attached to both; a watcher on the other
 * follower records every event. Then the leader is SIGKILLed.
 *  - Keep-alive and TimeToLive asked of a follower are answered by the leader's lessor: every keep-alive
 *    answers the granted TTL, and TimeToLive reports at most the granted TTL (a member that is not the
 *    primary would report "forever" if it answered itself).
 *  - The new leader extends every lease by the election timeout and no more (etcd's Promote): `left`
 *    expires no sooner than TTL + election after the kill (a lease is never cut short by an election)
 *    and no later than TTL + election after the new leader is known, plus the primary's 500 ms poll and
 *    a margin for a loaded machine.
 *  - Its keys are deleted exactly once: the watcher sees one DELETE per key, also after the old leader
 *    restarts and rejoins (a write made after that is the fence: the watcher has seen everything before).
 *  - `kept` survives: keep-alives through a follower go on working across the change (the stream waits
 *    for the new leader; no error), through the other survivor and through the restarted old leader.
 *  - An unknown lease, asked through a follower: keep-alive answers TTL 0, TimeToLive TTL -1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import {
  KVClient, LeaseClient, WatchClient, WatchCreateRequest,
  type LeaseGrantResponse, type LeaseKeepAliveRequest, type LeaseKeepAliveResponse, type LeaseTimeToLiveResponse,
  type PutResponse, type WatchRequest, type WatchResponse,
} from '../../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType } from '../../../src/gen/etcd/mvcc/mvccpb/kv.js';
import { targetsFromEnv, type Target } from '../harness.js';
import { timing, withCluster, type Cluster, type ClusterMember } from './cluster.js';

const config = {
  ttlSeconds: 5,
  keysPerLease: 3,
  keepAliveEveryMs: 1000,
  callDeadlineMs: 5_000,
  /** The new leader's lessor polls for expired leases every 500 ms; then the revocation commits. */
  expiryLateMarginMs: 500 + 1_500,
  phaseTimeoutMs: 30_000,
  pollMs: 25,
} as const;

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: () => string, timeoutMs = config.phaseTimeoutMs): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await sleep(config.pollMs);
  }
}

function call<Res>(fn: (md: Metadata, opts: { deadline: number }, cb: (e: Error | null, r: Res) => void) => unknown): Promise<Res> {
  return new Promise((ok, fail) => {
    fn(new Metadata(), { deadline: Date.now() + config.callDeadlineMs }, (e, r) => (e ? fail(e) : ok(r)));
  });
}

/** Lease and KV calls to one member. */
class Client {
  readonly lease: LeaseClient;
  readonly kv: KVClient;
  constructor(readonly member: ClusterMember) {
    this.lease = new LeaseClient(member.endpoint, credentials.createInsecure());
    this.kv = new KVClient(member.endpoint, credentials.createInsecure(), { channelOverride: this.lease.getChannel() });
  }
  grant(ttl: number): Promise<LeaseGrantResponse> {
    return call((md, o, cb) => this.lease.leaseGrant({ TTL: BigInt(ttl), ID: 0n }, md, o, cb));
  }
  timeToLive(id: bigint): Promise<LeaseTimeToLiveResponse> {
    return call((md, o, cb) => this.lease.leaseTimeToLive({ ID: id, keys: true }, md, o, cb));
  }
  put(key: string, options: { lease?: bigint } = {}): Promise<PutResponse> {
    return call((md, o, cb) => this.kv.put({ key: Buffer.from(key), value: Buffer.from('v'), lease: options.lease ?? 0n,
      prevKv: false, ignoreValue: false, ignoreLease: false }, md, o, cb));
  }
  /** One keep-alive on a fresh stream: the TTL answered. */
  async keepAliveOnce(id: bigint): Promise<bigint> {
    const ka = new KeepAlive(this.lease);
    try {
      ka.send(id);
      const r = await until(() => ka.responses[0] ?? (ka.error ? Promise.reject(ka.error) : undefined), () => 'a keep-alive answer');
      return r.TTL;
    } finally {
      ka.close();
    }
  }
  close(): void {
    this.lease.close();
  }
}

class KeepAlive {
  readonly stream: ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>;
  readonly responses: LeaseKeepAliveResponse[] = [];
  error: Error | undefined;
  constructor(lease: LeaseClient) {
    this.stream = lease.leaseKeepAlive();
    this.stream.on('data', (r: LeaseKeepAliveResponse) => this.responses.push(r));
    this.stream.on('error', (e: Error) => {
      this.error = e;
    });
  }
  send(id: bigint): void {
    this.stream.write({ ID: id });
  }
  close(): void {
    this.stream.cancel();
  }
}

/** Every event under the test's prefixes, as a follower's watch delivers them. */
class Recorder {
  readonly client: WatchClient;
  readonly stream: ClientDuplexStream<WatchRequest, WatchResponse>;
  readonly events: Array<{ type: Event_EventType; key: string; atMs: number; revision: bigint }> = [];
  error: Error | undefined;
  constructor(member: ClusterMember) {
    this.client = new WatchClient(member.endpoint, credentials.createInsecure());
    this.stream = this.client.watch();
    this.stream.on('data', (r: WatchResponse) => {
      for (const e of r.events) {
        this.events.push({ type: e.type, key: e.kv?.key.toString() ?? '', atMs: Date.now(), revision: e.kv?.modRevision ?? 0n });
      }
    });
    this.stream.on('error', (e: Error) => {
      this.error = e;
    });
    this.stream.write({ requestUnion: { $case: 'createRequest', value: WatchCreateRequest.fromPartial({ key: Buffer.from('l/'), rangeEnd: Buffer.from('l0') }) } });
  }
  deletesOf(prefix: string): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.events) if (e.type === Event_EventType.DELETE && e.key.startsWith(prefix)) out.set(e.key, (out.get(e.key) ?? 0) + 1);
    return out;
  }
  /** Writes a fence key through `via` and waits until this watcher has delivered it. */
  async fence(via: Client, name: string): Promise<void> {
    const key = `l/fence/${name}`;
    await via.put(key);
    await until(() => (this.error ? Promise.reject(this.error) : this.events.some((e) => e.key === key) || undefined), () => `fence ${key}`);
  }
  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}

async function scenario(cluster: Cluster, log: (m: string) => void): Promise<void> {
  const { leader } = await cluster.waitLeader();
  const [viaMember, watchMember] = cluster.members.filter((m) => m !== leader) as [ClusterMember, ClusterMember];
  const via = new Client(viaMember);
  const other = new Client(watchMember);
  const watch = new Recorder(watchMember);
  const keepAlive = new KeepAlive(via.lease);
  let keeping = true;
  try {
    await watch.fence(via, 'start');
    const kept = (await via.grant(config.ttlSeconds)).ID;
    const left = (await via.grant(config.ttlSeconds)).ID;
    for (let i = 0; i < config.keysPerLease; i++) {
      await via.put(`l/kept/${i}`, { lease: kept });
      await via.put(`l/left/${i}`, { lease: left });
    }
    // Unknown leases through a follower: etcd's answers, not errors.
    assert.equal(await via.keepAliveOnce(0x7e57n), 0n, 'keep-alive of an unknown lease');
    assert.equal((await via.timeToLive(0x7e57n)).TTL, -1n, 'time-to-live of an unknown lease');

    const keeper = (async () => {
      while (keeping) {
        keepAlive.send(kept);
        await sleep(config.keepAliveEveryMs);
      }
    })();
    await until(() => keepAlive.responses.length >= 1 || undefined, () => 'the first keep-alive answer');
    const before = await via.timeToLive(left);
    assert.equal(before.grantedTTL, BigInt(config.ttlSeconds));
    assert.ok(before.TTL >= 0n && before.TTL <= BigInt(config.ttlSeconds), `TTL through a follower before the kill: ${before.TTL}`);
    assert.deepEqual(before.keys.map(String).sort(), [0, 1, 2].map((i) => `l/left/${i}`));

    const killedAtMs = Date.now();
    await leader.kill();
    const survivors = cluster.members.filter((m) => m !== leader);
    const { leader: newLeader } = await cluster.waitLeader({ among: survivors });
    const leaderKnownAtMs = Date.now();
    log(`killed leader ${leader.name}; new leader ${newLeader.name} known ${leaderKnownAtMs - killedAtMs} ms later`);

    const during = await via.timeToLive(left);
    assert.ok(during.TTL >= 0n && during.TTL <= BigInt(config.ttlSeconds),
      `TTL of the lease left alone after the leader change: ${during.TTL} (granted ${config.ttlSeconds})`);

    await until(() => {
      if (watch.error) throw watch.error;
      const d = watch.deletesOf('l/left/');
      return d.size === config.keysPerLease ? true : undefined;
    }, () => `the deletes of the expired lease's keys (${JSON.stringify([...watch.deletesOf('l/left/')])})`);
    const deleteTimes = watch.events.filter((e) => e.type === Event_EventType.DELETE && e.key.startsWith('l/left/')).map((e) => e.atMs);
    const expiredAtMs = Math.min(...deleteTimes);
    const expiredAtMsAll = Math.max(...deleteTimes);
    const ttlMs = config.ttlSeconds * 1000;
    log(`lease left alone expired ${expiredAtMsAll - killedAtMs} ms after the kill, ${expiredAtMsAll - leaderKnownAtMs} ms after the new leader was known`);
    assert.ok(expiredAtMs - killedAtMs >= ttlMs + timing.electionMs,
      `cut short: expired ${expiredAtMs - killedAtMs} ms after the kill (TTL ${ttlMs} ms + election ${timing.electionMs} ms)`);
    assert.ok(expiredAtMsAll - leaderKnownAtMs <= ttlMs + timing.electionMs + config.expiryLateMarginMs,
      `expired ${expiredAtMsAll - leaderKnownAtMs} ms after the new leader was known`);
    assert.equal((await via.timeToLive(left)).TTL, -1n, 'the expired lease is gone');

    // Keep-alive through a follower works after the change: the stream, the other survivor (if it is a
    // follower) and the old leader restarted as a follower.
    const answered = keepAlive.responses.length;
    await until(() => (keepAlive.error ? Promise.reject(keepAlive.error) : keepAlive.responses.length >= answered + 2 || undefined),
      () => 'keep-alives on the stream after the leader change');
    for (const r of keepAlive.responses) assert.equal(r.TTL, BigInt(config.ttlSeconds), `keep-alive answered TTL ${r.TTL}`);
    if (watchMember !== newLeader) assert.equal(await other.keepAliveOnce(kept), BigInt(config.ttlSeconds));
    await leader.restart();
    const restarted = new Client(leader);
    try {
      assert.equal(await restarted.keepAliveOnce(kept), BigInt(config.ttlSeconds), 'keep-alive through the restarted old leader');
      const ttl = await restarted.timeToLive(kept);
      assert.ok(ttl.TTL > 0n && ttl.TTL <= BigInt(config.ttlSeconds), `kept lease TTL through the restarted member: ${ttl.TTL}`);
      await watch.fence(restarted, 'restarted');
    } finally {
      restarted.close();
    }
    keeping = false;
    await keeper;
    assert.equal(keepAlive.error, undefined, 'the keep-alive stream through the follower failed');

    const leftDeletes = watch.deletesOf('l/left/');
    assert.deepEqual([...leftDeletes.entries()].sort(), [0, 1, 2].map((i) => [`l/left/${i}`, 1]), 'one DELETE per key of the expired lease');
    assert.equal(watch.deletesOf('l/kept/').size, 0, 'a key of the kept lease was deleted');
    assert.equal(watch.error, undefined);
  } finally {
    keeping = false;
    keepAlive.close();
    watch.close();
    via.close();
    other.close();
  }
}

for (const target of targetsFromEnv()) {
  test(`${target.label}: leases kept alive through a follower survive a leader SIGKILL; the one left alone expires once`, { timeout: 120_000 }, async (t) => {
    await withCluster({ target: target satisfies Target, names: ['m1', 'm2', 'm3'] }, (cluster) => scenario(cluster, (m) => t.diagnostic(m)));
  });
}
