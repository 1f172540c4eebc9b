import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { silentLogger } from '../../base/logger.js';
import { MessageType, type Message, type NodeId } from '../../raft/types.js';
import { PeerTransport } from './peer-transport.js';
import {
  appMessage, mesh, recordingLogger, snapMessage, startNode, waitFor, type Node,
} from './test-support.js';

const open: Node[] = [];
const servers: net.Server[] = [];

async function node(id: NodeId, options: Parameters<typeof startNode>[1] = {}): Promise<Node> {
  const n = await startNode(id, options);
  open.push(n);
  return n;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.t.close()));
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** The indexes of the messages `to` received from `from`, in arrival order. */
function indexesFrom(to: Node, from: NodeId): number[] {
  return to.received.filter((m) => m.from === from).map((m) => m.index);
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}

/** A TCP server that accepts connections and never answers: a peer that hangs (or a black-holed link). */
async function blackHole(): Promise<URL> {
  const held: net.Socket[] = [];
  const server = net.createServer((socket) => {
    held.push(socket);
    socket.pause();
  });
  server.on('close', () => held.forEach((s) => s.destroy()));
  const closeAll = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    held.forEach((s) => s.destroy());
    return closeAll(cb);
  }) as typeof server.close;
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as net.AddressInfo;
  return new URL(`http://127.0.0.1:${address.port}`);
}

/** A port nothing listens on (bound, then released). */
async function deadPort(): Promise<URL> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return new URL(`http://127.0.0.1:${port}`);
}

describe('PeerTransport: delivery', () => {
  it('two members exchange messages in order, intact, in both directions', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    mesh([a, b]);
    const sentAB: Message[] = [];
    for (let i = 0; i < 3000; i++) {
      const m = appMessage({ from: 1n, to: 2n, index: i, entryBytes: (i % 7) * 50 });
      sentAB.push(m);
      a.t.send([m]);
      b.t.send([appMessage({ from: 2n, to: 1n, index: i })]);
      // Spread over many turns so that batches, partial frames and drains all happen.
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('3000 messages each way', () => a.received.length === 3000 && b.received.length === 3000);
    assert.deepEqual(b.received, sentAB);
    assert.deepEqual(indexesFrom(a, 2n), range(0, 3000));
    assert.equal(a.t.peerStats(2n)?.messagesDropped, 0);
    assert.equal(b.t.stats().messagesReceived, 3000);
    assert.deepEqual(a.unreachable, []);
  });

  it('three members: each receives every other member\'s messages in its sending order', async () => {
    const nodes = [await node(1n), await node(2n), await node(3n)];
    mesh(nodes);
    for (let i = 0; i < 500; i++) {
      for (const from of nodes) {
        from.t.send(nodes.filter((to) => to !== from).map((to) => appMessage({ from: from.id, to: to.id, index: i, entryBytes: 16 })));
      }
    }
    await waitFor('1000 messages at every member', () => nodes.every((n) => n.received.length === 1000));
    for (const to of nodes) {
      for (const from of nodes) if (from !== to) assert.deepEqual(indexesFrom(to, from.id), range(0, 500));
    }
  });

  it('measures the round-trip time to each peer', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    mesh([a, b]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
    await waitFor('an RTT sample', () => a.t.rttMs(2n) !== null);
    const rtt = a.t.rttMs(2n)!;
    assert.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt}`);
    assert.equal(a.t.rttMs(99n), null);
  });

  it('delivers callbacks after send() returns, never from inside it', async () => {
    const a = await node(1n);
    a.t.addPeer(7n, [await deadPort()]);
    await waitFor('the dead peer in back-off', () => a.t.peerStats(7n)?.state === 'backoff');
    const before = a.unreachable.length;
    a.t.send([appMessage({ from: 1n, to: 7n, index: 1 })]);
    assert.equal(a.unreachable.length, before, 'onUnreachable ran synchronously inside send()');
    await waitFor('the deferred report', () => a.unreachable.length > before);
  });

  it('send() never throws: unknown peers and unencodable messages are counted and dropped', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    mesh([a, b]);
    const bad = { ...appMessage({ from: 1n, to: 2n, index: 1 }), term: -1 };
    assert.doesNotThrow(() => a.t.send([appMessage({ from: 1n, to: 42n, index: 1 }), bad, appMessage({ from: 1n, to: 2n, index: 2 })]));
    await waitFor('the good message', () => b.received.length === 1);
    assert.equal(b.received[0]?.index, 2);
    assert.equal(a.t.stats().unknownPeerDropped, 1);
    assert.equal(a.t.stats().unsendable, 1);
  });
});

describe('PeerTransport: snapshots', () => {
  it('delivers a large snapshot intact (chunked, checksummed) and reports it finished', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    mesh([a, b]);
    const data = new Uint8Array(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.fill(i / 4096, i, i + 4096);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
    a.t.send([snapMessage({ from: 1n, to: 2n, index: 90_000, data })]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 2 })]);
    await waitFor('the snapshot status', () => a.snapshots.length === 1, 30_000);
    assert.deepEqual(a.snapshots, [{ peer: 2n, status: 'finish' }], `last error: ${a.t.peerStats(2n)?.lastError}`);
    const snap = b.received.find((m) => m.type === MessageType.Snap);
    assert.ok(snap?.snapshot);
    assert.equal(snap.snapshot.metadata.index, 90_000);
    assert.deepEqual(snap.snapshot.metadata.confState.voters, [1n, 2n]);
    const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
    assert.equal(digest(snap.snapshot.data), digest(data));
    await waitFor('the appends around it', () => indexesFrom(b, 1n).filter((i) => i !== 0).length === 2);
    assert.equal(a.t.peerStats(2n)?.snapshotsSent, 1);
    assert.equal(b.t.stats().snapshotsReceived, 1);
  });

  it('reports failure when the receiver refuses the snapshot (above its size limit)', async () => {
    const a = await node(1n);
    const b = await node(2n, { limits: { snapshotBytesMax: 64 * 1024 } });
    mesh([a, b]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
    await waitFor('the stream', () => b.received.length === 1);
    a.t.send([snapMessage({ from: 1n, to: 2n, index: 5, data: new Uint8Array(100 * 1024) })]);
    await waitFor('the snapshot status', () => a.snapshots.length === 1);
    assert.deepEqual(a.snapshots, [{ peer: 2n, status: 'failure' }]);
    assert.ok(a.unreachable.includes(2n));
    assert.equal(b.t.stats().snapshotsRejected, 1);
    assert.equal(b.received.length, 1);
    // The connection survives a refused snapshot.
    a.t.send([appMessage({ from: 1n, to: 2n, index: 2 })]);
    await waitFor('a message after the refusal', () => b.received.length === 2);
  });

  it('reports failure for a snapshot to an unreachable peer', async () => {
    const a = await node(1n);
    a.t.addPeer(2n, [await deadPort()]);
    await waitFor('back-off', () => a.t.peerStats(2n)?.state === 'backoff');
    a.t.send([snapMessage({ from: 1n, to: 2n, index: 5, data: new Uint8Array(10) })]);
    await waitFor('the snapshot status', () => a.snapshots.length === 1);
    assert.deepEqual(a.snapshots, [{ peer: 2n, status: 'failure' }]);
  });
});

describe('PeerTransport: failures and membership', () => {
  it('peer down: messages dropped within bounds, onUnreachable; peer back: stream reconnects and delivers', async () => {
    const a = await node(1n, { limits: { queueMessagesMax: 64 } });
    let b = await node(2n);
    const port = Number(b.url().port);
    mesh([a, b]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 0 })]);
    await waitFor('first delivery', () => b.received.length === 1);
    await b.t.close();
    for (let i = 1; i <= 5000; i++) a.t.send([appMessage({ from: 1n, to: 2n, index: i, entryBytes: 32 })]);
    await waitFor('onUnreachable(2)', () => a.unreachable.includes(2n));
    const down = a.t.peerStats(2n)!;
    assert.ok(down.queuedMessages <= 64, `queued ${down.queuedMessages}`);
    assert.ok(down.messagesSent + down.messagesDropped + down.queuedMessages === 5001);
    assert.ok(down.messagesDropped >= 5000 - 64 - 1, `dropped ${down.messagesDropped}`);

    b = await node(2n, { port });
    // Keep sending, as raft would (heartbeats), until the new incarnation hears from us.
    let next = 10_000;
    await waitFor('delivery after the restart', () => {
      a.t.send([appMessage({ from: 1n, to: 2n, index: next++ })]);
      return b.received.length > 0;
    });
    const first = b.received[0]!.index;
    assert.ok(first >= 10_000, `stale message ${first} delivered after reconnection`);
    // Within the queue bound (64), so none may be dropped now that the link is up.
    for (let i = 0; i < 60; i++) a.t.send([appMessage({ from: 1n, to: 2n, index: 20_000 + i })]);
    await waitFor('the new batch', () => b.received.some((m) => m.index === 20_059));
    const after = b.received.map((m) => m.index).filter((i) => i >= 20_000);
    assert.deepEqual(after, range(20_000, 60));
    assert.equal(a.t.peerStats(2n)?.reconnects, 1);
    assert.equal(a.t.peerStats(2n)?.state, 'streaming');
  });

  it('refuses a sender from another cluster (412, logged) and the sender reports the peer unreachable', async () => {
    const rec = recordingLogger();
    const a = await node(1n, { log: rec.log });
    const x = await node(3n, { clusterId: 0xbadn });
    x.t.addPeer(1n, [a.url()]);
    x.t.send([appMessage({ from: 3n, to: 1n, index: 1 })]);
    await waitFor('a refusal', () => a.t.stats().requestsRefused >= 1);
    await waitFor('the sender notices', () => x.unreachable.includes(1n));
    assert.equal(a.received.length, 0);
    assert.match(x.t.peerStats(1n)?.lastError ?? '', /412/);
    const line = rec.records.find((r) => r.msg === 'refused peer request');
    assert.equal(line?.level, 'warn');
    assert.equal(line?.fields['reason'], 'cluster ID mismatch');
    assert.equal(line?.fields['remote-peer-cluster-id'], 'bad');
  });

  it('refuses a stream addressed to another member id', async () => {
    const a = await node(1n);
    const c = await node(3n);
    // c believes a's URL belongs to member 9.
    c.t.addPeer(9n, [a.url()]);
    c.t.send([appMessage({ from: 3n, to: 9n, index: 1 })]);
    await waitFor('a refusal', () => a.t.stats().requestsRefused >= 1);
    await waitFor('the sender notices', () => /412/.test(c.t.peerStats(9n)?.lastError ?? ''));
    assert.equal(a.received.length, 0);
  });

  it('removePeer stops sends, closes the link, and the removed member is refused with 410', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    mesh([a, b]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
    b.t.send([appMessage({ from: 2n, to: 1n, index: 1 })]);
    await waitFor('both links up', () => a.received.length === 1 && b.received.length === 1);
    a.t.removePeer(2n);
    assert.equal(a.t.hasPeer(2n), false);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 2 })]);
    assert.equal(a.t.stats().unknownPeerDropped, 1);
    await waitFor('b loses a\'s stream', () => b.t.stats().incomingStreams === 0);
    // b still sends to a: its stream was reset and it is now refused as a removed member.
    b.t.send([appMessage({ from: 2n, to: 1n, index: 2 })]);
    await waitFor('b is told it was removed', () => /removed/.test(b.t.peerStats(1n)?.lastError ?? ''));
    assert.equal(b.received.length, 1);
    assert.equal(a.received.length, 1);
  });

  it('updatePeer moves a peer to new URLs', async () => {
    const [a, b] = [await node(1n), await node(2n)];
    a.t.addPeer(2n, [await deadPort()]);
    await waitFor('the wrong URL fails', () => a.unreachable.includes(2n));
    a.t.updatePeer(2n, [b.url()]);
    await waitFor('delivery at the new URL', () => {
      a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
      return b.received.length > 0;
    });
    assert.equal(a.t.peerStats(2n)?.url, b.url().href);
  });

  it('a flood to a hung peer does not delay delivery to a live one', async () => {
    const limits = { queueMessagesMax: 256, connectTimeoutMs: 300 };
    const a = await node(1n, { limits });
    const b = await node(2n);
    a.t.addPeer(2n, [b.url()]);
    a.t.addPeer(3n, [await blackHole()]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 0 })]);
    await waitFor('the live link', () => b.received.length === 1);
    const started = Date.now();
    for (let round = 0; round < 20; round++) {
      const batch: Message[] = [];
      for (let i = 0; i < 2000; i++) batch.push(appMessage({ from: 1n, to: 3n, index: i, entryBytes: 128 }));
      for (let i = 0; i < 50; i++) batch.push(appMessage({ from: 1n, to: 2n, index: 1 + round * 50 + i }));
      a.t.send(batch);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor('all 1000 messages at the live peer', () => b.received.length === 1001, 5_000);
    const elapsedMs = Date.now() - started;
    assert.deepEqual(b.received.map((m) => m.index), range(0, 1001));
    const hung = a.t.peerStats(3n)!;
    assert.ok(hung.queuedMessages <= 256, `queued ${hung.queuedMessages}`);
    assert.ok(hung.messagesDropped >= 40_000 - 256, `dropped ${hung.messagesDropped}`);
    assert.equal(hung.messagesSent, 0);
    assert.ok(elapsedMs < 5_000, `live peer took ${elapsedMs} ms`);
    // Overflowing its queue already reported the hung peer (as etcd does on a full buffer).
    assert.ok(a.unreachable.includes(3n));
    // It never accepts the stream: the attempt times out and the sender backs off.
    await waitFor('the connect timeout', () => /no stream within 300 ms/.test(a.t.peerStats(3n)?.lastError ?? ''));
  });

  it('drops a connection whose peer stops answering PINGs (link frozen by a TCP proxy)', async () => {
    const a = await node(1n, { limits: { pingIntervalMs: 20, pingTimeoutMs: 500 } });
    const b = await node(2n);
    const proxy = await tcpProxy(b.url());
    a.t.addPeer(2n, [proxy.url]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1 })]);
    await waitFor('the link', () => b.received.length === 1);
    // The TCP connection stays up but carries nothing: as with a SIGSTOPped peer or a silent cut.
    proxy.freeze();
    await waitFor('a gives up on b', () => /PING/.test(a.t.peerStats(2n)?.lastError ?? ''), 5_000);
    assert.ok(a.unreachable.includes(2n));
  });
});

/** A TCP proxy in front of `target` whose links can be frozen (nothing forwarded, nothing closed). */
async function tcpProxy(target: URL): Promise<{ url: URL; freeze(): void }> {
  const links: net.Socket[] = [];
  let frozen = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port), target.hostname);
    links.push(client, upstream);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      from.on('data', (chunk) => {
        if (!frozen) to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => to.destroy());
    }
  });
  const closeServer = server.close.bind(server);
  server.close = ((cb?: (err?: Error) => void) => {
    links.forEach((s) => s.destroy());
    return closeServer(cb);
  }) as typeof server.close;
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { url: new URL(`http://127.0.0.1:${port}`), freeze: () => { frozen = true; } };
}

describe('PeerTransport: shutdown', () => {
  it('close() leaves no open handles (servers, sockets, timers)', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    const before = countResources();
    const a = new PeerTransport({
      localId: 1n, clusterId: 5n, listenUrls: [new URL('http://127.0.0.1:0')], log: silentLogger,
      onMessage: () => {}, onUnreachable: () => {}, onSnapshotStatus: () => {}, limits: { pingIntervalMs: 10 },
    });
    const got: Message[] = [];
    const b = new PeerTransport({
      localId: 2n, clusterId: 5n, listenUrls: [new URL('http://127.0.0.1:0')], log: silentLogger,
      onMessage: (m) => got.push(m), onUnreachable: () => {}, onSnapshotStatus: () => {},
    });
    await a.start();
    await b.start();
    a.addPeer(2n, [b.boundUrls()[0]!]);
    b.addPeer(1n, [a.boundUrls()[0]!]);
    a.addPeer(3n, [await deadPort()]); // one peer in back-off, with its timer pending
    a.send([appMessage({ from: 1n, to: 2n, index: 1 }), snapMessage({ from: 1n, to: 2n, index: 2, data: new Uint8Array(1000) })]);
    await waitFor('delivery', () => got.length === 2);
    await Promise.all([a.close(), b.close()]);
    assert.deepEqual(countResources(), before);
    a.send([appMessage({ from: 1n, to: 2n, index: 3 })]); // after close: ignored, no throw
  });
});

function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
