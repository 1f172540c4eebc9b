import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTransport } from './peer-transport.js';
import { CLUSTER, FAST_LIMITS, recordingLogger, startNode, waitFor } from './test-support.js';

test('each answered PING to a peer reports its round-trip time, with the peer id', async () => {
  const b = await startNode(2n);
  const rtts: Array<{ peer: bigint; ms: number }> = [];
  const a = new PeerTransport({
    localId: 1n, clusterId: CLUSTER, listenUrls: [new URL('http://127.0.0.1:0')], log: recordingLogger().log,
    onMessage: () => {}, onUnreachable: () => {}, onSnapshotStatus: () => {},
    onRtt: (peer, ms) => rtts.push({ peer, ms }),
    limits: FAST_LIMITS,
  });
  await a.start();
  try {
    a.addPeer(2n, [b.url()]);
    await waitFor('two round trips to peer 2', () => rtts.length >= 2);
    assert.ok(rtts.every((r) => r.peer === 2n && r.ms >= 0 && r.ms < 5000), JSON.stringify(rtts.map((r) => r.ms)));
  } finally {
    await a.close();
    await b.t.close();
  }
});
