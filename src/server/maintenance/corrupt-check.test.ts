import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { silentLogger } from '../../base/logger.js';
import { EtcdError, isEtcdError } from '../../base/errors.js';
import { AlarmType, type AlarmRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { CorruptMonitor, fetchPeerHashKv, hashKvPeerHandler, initialCorruptCheck, type HashKvSource } from './corrupt-check.js';

interface FakeState {
  hash: number;
  rev: number;
  compactRev: number;
}

function source(state: FakeState): HashKvSource {
  return {
    rev: () => state.rev,
    hashKV: async (revision) => {
      if (revision > 0 && revision <= state.compactRev) throw new EtcdError('Compacted');
      if (revision > state.rev) throw new EtcdError('FutureRev');
      return { hash: state.hash, hashRevision: state.rev, compactRevision: state.compactRev };
    },
  };
}

async function peer(id: bigint, state: FakeState): Promise<{ url: string; close(): Promise<void> }> {
  const handler = hashKvPeerHandler({ localId: id, store: source(state) });
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    if (!handler(stream, headers)) {
      stream.respond({ ':status': 404 });
      stream.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('peer hashkv: answers a member\'s hash at a revision, or its Compacted / FutureRev error', async () => {
  const state = { hash: 123, rev: 10, compactRev: 4 };
  const p = await peer(0xabn, state);
  try {
    assert.deepEqual(await fetchPeerHashKv(p.url, 7, { timeoutMs: 2000 }), { memberId: 0xabn, revision: 10, hash: 123, compactRevision: 4 });
    await assert.rejects(fetchPeerHashKv(p.url, 3, { timeoutMs: 2000 }), (e) => isEtcdError(e, 'Compacted'));
    await assert.rejects(fetchPeerHashKv(p.url, 11, { timeoutMs: 2000 }), (e) => isEtcdError(e, 'FutureRev'));
  } finally {
    await p.close();
  }
});

test('initial check: a peer with another hash at the same compact revision stops the start; others pass', async () => {
  const same = await peer(2n, { hash: 5, rev: 10, compactRev: 4 });
  const otherCompact = await peer(3n, { hash: 6, rev: 10, compactRev: 8 });
  const slow = await peer(4n, { hash: 6, rev: 9, compactRev: 4 });
  const bad = await peer(5n, { hash: 7, rev: 10, compactRev: 4 });
  try {
    const base = { localId: 1n, store: source({ hash: 5, rev: 10, compactRev: 4 }), log: silentLogger, timeoutMs: 2000 };
    const ok = [same, otherCompact, slow].map((p, i) => ({ id: BigInt(i + 2), peerUrls: [p.url] }));
    await initialCorruptCheck({ ...base, peers: [...ok, { id: 9n, peerUrls: ['http://127.0.0.1:1'] }] });
    await assert.rejects(initialCorruptCheck({ ...base, peers: [...ok, { id: 5n, peerUrls: [bad.url] }] }), /found data inconsistency with peers/);
  } finally {
    await Promise.all([same, otherCompact, slow, bad].map((p) => p.close()));
  }
});

test('periodic check (leader): raises CORRUPT with member id 0 for a follower ahead of it or with another hash', async () => {
  const follower = { hash: 5, rev: 10, compactRev: 4 };
  const p = await peer(2n, follower);
  try {
    const raised: AlarmRequest[] = [];
    const monitor = new CorruptMonitor({
      localId: 1n, store: source({ hash: 5, rev: 10, compactRev: 4 }), log: silentLogger, timeoutMs: 2000, intervalMs: 0,
      peers: () => [{ id: 2n, peerUrls: [p.url] }], isLeader: () => true, linearizable: async () => {},
      proposeAlarm: async (r) => void raised.push(r),
    });
    assert.deepEqual(await monitor.check(), []);
    assert.equal(raised.length, 0);
    follower.hash = 6;
    assert.deepEqual(await monitor.check(), [2n]);
    assert.deepEqual(raised, [{ action: 1, memberID: 0n, alarm: AlarmType.CORRUPT }]);
    follower.hash = 5;
    follower.rev = 11;
    assert.deepEqual(await monitor.check(), [2n], 'a follower may not be ahead of the leader');
  } finally {
    await p.close();
  }
});
