import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2, { type Http2Server } from 'node:http2';
import { EtcdError, isEtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { NotPrimaryError, type LeaseView } from '../lease/lessor.js';
import { leaseForwardLimits, leaseHandler, LeaseForwarder, leasePath, peerRequests } from './lease-forward.js';

const silent: Logger = {
  debug: () => {}, info: () => {}, warn: () => {}, error: () => {},
  child: () => silent,
} as unknown as Logger;

/** A lessor whose answers the test sets: primary or not, which leases exist, how many renewals it served. */
class FakeLessor {
  isPrimary = false;
  renewals = 0;
  readonly leases = new Map<bigint, LeaseView>();
  async renew(id: bigint): Promise<number> {
    if (!this.isPrimary) throw new NotPrimaryError();
    const l = this.leases.get(id);
    if (l === undefined) throw new EtcdError('LeaseNotFound');
    this.renewals++;
    return l.ttlSeconds;
  }
  lookup(id: bigint): LeaseView | undefined {
    return this.leases.get(id);
  }
  waitPrimary(timeoutMs: number): Promise<void> {
    return this.isPrimary ? Promise.resolve() : new Promise((_ok, fail) => setTimeout(() => fail(new EtcdError('Timeout')), timeoutMs));
  }
}

/** A member's peer port serving the lease paths (and 404 for the rest). */
async function peerServer(lessor: FakeLessor, isLeader: () => boolean): Promise<{ url: string; server: Http2Server; requests: () => number }> {
  const handle = peerRequests([leaseHandler({ lessor, isLeader, log: silent })]);
  const server = http2.createServer();
  let requests = 0;
  server.on('stream', (stream, headers) => {
    requests++;
    if (!handle(stream, headers)) {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { url: `http://127.0.0.1:${address.port}`, server, requests: () => requests };
}

async function closeAll(servers: readonly Http2Server[], fwd: LeaseForwarder): Promise<void> {
  fwd.close();
  await Promise.all(servers.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
}

const lease = (ttlSeconds: number, remainingMs: number, keys: string[] = []): LeaseView => ({ id: 0n, ttlSeconds, remainingMs, keys });

test('a follower renews and reads time-to-live through the leader; an unknown lease ends the retries at once', async () => {
  const leaderLessor = new FakeLessor();
  leaderLessor.isPrimary = true;
  leaderLessor.leases.set(7n, lease(30, 12_900, ['a', 'b']));
  const leader = await peerServer(leaderLessor, () => true);
  const fwd = new LeaseForwarder({
    localId: 1n, lessor: new FakeLessor(), leader: () => 2n, peerUrls: (id) => (id === 2n ? [leader.url] : undefined),
    electionMs: 100, log: silent,
  });
  try {
    assert.equal(await fwd.renew(7n, { deadlineMs: Date.now() + 2000 }), 30n);
    assert.equal(leaderLessor.renewals, 1);
    const ttl = await fwd.timeToLive({ ID: 7n, keys: true }, { deadlineMs: Date.now() + 2000 });
    assert.deepEqual({ ...ttl, keys: ttl.keys.map(String) }, { ID: 7n, TTL: 12n, grantedTTL: 30n, keys: ['a', 'b'] });
    const started = Date.now();
    await assert.rejects(fwd.renew(8n, { deadlineMs: Date.now() + 5000 }), (e) => isEtcdError(e, 'LeaseNotFound'));
    await assert.rejects(fwd.timeToLive({ ID: 8n, keys: false }, { deadlineMs: Date.now() + 5000 }), (e) => isEtcdError(e, 'LeaseNotFound'));
    assert.ok(Date.now() - started < 2000, 'not found is final, not retried until the deadline');
  } finally {
    await closeAll([leader.server], fwd);
  }
});

test('a member that lost leadership refuses; the follower asks again and the new leader answers', async () => {
  const oldLessor = new FakeLessor();
  const newLessor = new FakeLessor();
  newLessor.isPrimary = true;
  newLessor.leases.set(5n, lease(10, 10_000));
  const oldLeader = await peerServer(oldLessor, () => false);
  const newLeader = await peerServer(newLessor, () => true);
  let lead = 2n;
  const urls = new Map([[2n, [oldLeader.url]], [3n, [newLeader.url]]]);
  const fwd = new LeaseForwarder({ localId: 1n, lessor: new FakeLessor(), leader: () => lead, peerUrls: (id) => urls.get(id), electionMs: 100, log: silent });
  try {
    const renewed = fwd.renew(5n, { deadlineMs: Date.now() + 5000 });
    // Refused twice (the forwarder keeps asking the member it believes leads), then the leader changes.
    while (oldLeader.requests() < 2) await new Promise((ok) => setTimeout(ok, 10));
    assert.equal(newLessor.renewals, 0);
    lead = 3n;
    fwd.onLeaderChange();
    assert.equal(await renewed, 10n);
    assert.equal(newLessor.renewals, 1);
  } finally {
    await closeAll([oldLeader.server, newLeader.server], fwd);
  }
});

test('at the deadline: "no leader" without a leader, "request timed out" when the leader does not answer', async () => {
  let lead = 0n;
  const fwd = new LeaseForwarder({
    // Port 9 on loopback: nothing listens, every attempt fails at once.
    localId: 1n, lessor: new FakeLessor(), leader: () => lead, peerUrls: () => ['http://127.0.0.1:9'], electionMs: 100, log: silent,
  });
  try {
    await assert.rejects(fwd.renew(1n, { deadlineMs: Date.now() + 200 }), (e) => isEtcdError(e, 'NoLeader'));
    lead = 2n;
    await assert.rejects(fwd.timeToLive({ ID: 1n, keys: false }, { deadlineMs: Date.now() + 300 }), (e) => isEtcdError(e, 'Timeout'));
    fwd.close();
    await assert.rejects(fwd.renew(1n, { deadlineMs: Date.now() + 300 }), (e) => isEtcdError(e, 'Stopped'));
  } finally {
    fwd.close();
  }
});

test('the primary answers locally; a leader not yet primary waits for it', async () => {
  const lessor = new FakeLessor();
  lessor.leases.set(3n, lease(20, Infinity));
  const fwd = new LeaseForwarder({ localId: 1n, lessor, leader: () => 1n, peerUrls: () => [], electionMs: 50, log: silent });
  try {
    setTimeout(() => {
      lessor.isPrimary = true;
    }, 120);
    assert.equal(await fwd.renew(3n, { deadlineMs: Date.now() + 2000 }), 20n);
    assert.equal((await fwd.timeToLive({ ID: 3n, keys: false }, { deadlineMs: Date.now() + 2000 })).TTL, 9_223_372_036n);
  } finally {
    fwd.close();
  }
});

test('the peer handler refuses other methods and bad bodies', async () => {
  const peer = await peerServer(new FakeLessor(), () => false);
  const session = http2.connect(peer.url);
  const ask = (method: string, body: Buffer): Promise<number> => new Promise((ok, fail) => {
    const req = session.request({ ':method': method, ':path': leasePath });
    req.on('response', (h) => ok(Number(h[':status'])));
    req.on('error', fail);
    req.resume();
    req.end(method === 'POST' ? body : undefined);
  });
  try {
    assert.equal(await ask('GET', Buffer.alloc(0)), 405);
    assert.equal(await ask('POST', Buffer.from([0xff, 0xff, 0xff])), 400);
    // A member that is not the leader (nor primary) refuses a valid request with 400: the caller asks again.
    assert.equal(await ask('POST', Buffer.from([0x08, 0x01])), 400);
  } finally {
    session.destroy();
    await new Promise<void>((ok) => peer.server.close(() => ok()));
  }
});

test('renewals of one turn travel in one request; each gets its own answer', async () => {
  const leaderLessor = new FakeLessor();
  leaderLessor.isPrimary = true;
  for (let id = 1n; id <= 300n; id++) leaderLessor.leases.set(id, lease(Number(id % 7n) + 5, 1000));
  const leader = await peerServer(leaderLessor, () => true);
  const fwd = new LeaseForwarder({ localId: 1n, lessor: new FakeLessor(), leader: () => 2n, peerUrls: () => [leader.url], electionMs: 100, log: silent });
  try {
    const ids = Array.from({ length: 310 }, (_, i) => BigInt(i + 1));
    const answers = await Promise.all(ids.map((id) => fwd.renew(id, { deadlineMs: Date.now() + 5000 }).catch((e: unknown) => e)));
    ids.forEach((id, i) => {
      if (id <= 300n) assert.equal(answers[i], id % 7n + 5n);
      else assert.ok(isEtcdError(answers[i], 'LeaseNotFound'), `lease ${id}: ${String(answers[i])}`);
    });
    assert.equal(leader.requests(), 1, 'one request for the whole turn');
    assert.equal(leaderLessor.renewals, 300);
  } finally {
    await closeAll([leader.server], fwd);
  }
});

test('batches are pipelined: a later turn is sent while an earlier batch is unanswered; a full batch leaves at once', async () => {
  const leaderLessor = new FakeLessor();
  leaderLessor.isPrimary = true;
  const total = leaseForwardLimits.renewBatchMax + 1;
  for (let id = 1n; id <= BigInt(total); id++) leaderLessor.leases.set(id, lease(9, 1000));
  // The leader holds lease 1's renewal until the test lets it go.
  let release = (): void => {};
  const held = new Promise<void>((ok) => { release = ok; });
  const renew = leaderLessor.renew.bind(leaderLessor);
  leaderLessor.renew = async (id) => {
    if (id === 1n) await held;
    return renew(id);
  };
  const leader = await peerServer(leaderLessor, () => true);
  const fwd = new LeaseForwarder({ localId: 1n, lessor: new FakeLessor(), leader: () => 2n, peerUrls: () => [leader.url], electionMs: 100, log: silent });
  try {
    const first = fwd.renew(1n, { deadlineMs: Date.now() + 5000 });
    await waitFor(() => leader.requests() === 1);
    // A later turn, one over a full batch: two more requests, while the first is still unanswered.
    const later = Array.from({ length: total - 1 }, (_, i) => fwd.renew(BigInt(i + 2), { deadlineMs: Date.now() + 5000 }));
    later.push(fwd.renew(2n, { deadlineMs: Date.now() + 5000 }));
    assert.deepEqual(new Set(await Promise.all(later)), new Set([9n]));
    assert.equal(leader.requests(), 3, 'the held batch, a full batch, and the rest of the turn');
    release();
    assert.equal(await first, 9n);
  } finally {
    release();
    await closeAll([leader.server], fwd);
  }
});

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    assert.ok(Date.now() < deadline, 'condition not met before the deadline');
    await new Promise((ok) => setTimeout(ok, 5));
  }
}
