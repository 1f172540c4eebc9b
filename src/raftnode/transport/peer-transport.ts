/**
 * The peer transport: carries raft messages between members over --listen-peer-urls.
 *
 * Outgoing, one PeerSender per peer (its own queue, connection and back-off, so a slow or dead peer never
 * holds up the others or the caller); incoming, one PeerReceiver behind every listener. send() encodes
 * each message once, routes it, and returns: it never blocks and never throws. Events for the raft node
 * (onUnreachable, onSnapshotStatus) are delivered on a later microtask, never from inside send(), so the
 * raft node may call back into its core from them while it is in the middle of handling a Ready.
 */
import { assert } from '../../base/assert.js';
import type { Logger } from '../../base/logger.js';
import { MessageType, type Message, type NodeId } from '../../raft/types.js';
import { ByteWriter, encodeMessage } from '../codec.js';
import type { RaftTransport } from '../raft-node.js';
import { checkPeerUrl, listenPeer, type ConnectionSettings, type PeerListener, type PeerTls } from './connection.js';
import { resolveLimits, type TransportLimits } from './limits.js';
import { PeerReceiver, type ReceiverContext, type ReceiverStats } from './peer-receiver.js';
import { PeerSender, type PeerStats, type SenderContext, type SnapshotStatus } from './peer-sender.js';
import { appendFrame, idToHex } from './wire.js';

export type { PeerStats, SnapshotStatus } from './peer-sender.js';
export type { ReceiverStats } from './peer-receiver.js';
export type { TransportLimits } from './limits.js';
export type { PeerTls, TlsRejection } from './connection.js';

export interface PeerTransportOptions {
  readonly localId: NodeId;
  readonly clusterId: NodeId;
  /** Where to accept peers; a port of 0 binds a free port (see boundUrls()). May be empty: send only. */
  readonly listenUrls: readonly URL[];
  readonly log: Logger;
  /**
   * Every message received, in the order each sender sent it. Runs on the network's turn: it must not block,
   * and an exception it throws is not caught (it is a bug of the receiver, not of the peer).
   */
  readonly onMessage: (m: Message) => void;
  /** A message to this peer was dropped or its connection failed: raft should probe it (reportUnreachable). */
  readonly onUnreachable: (peer: NodeId) => void;
  /** A MsgSnap was delivered (finish) or could not be (failure): raft's reportSnapshot. */
  readonly onSnapshotStatus: (peer: NodeId, status: SnapshotStatus) => void;
  /** A peer refused us as removed from the cluster: this member should stop. */
  readonly onRemoved?: (byPeer: NodeId) => void;
  /** The round-trip time of each answered PING to a peer. */
  readonly onRtt?: (peer: NodeId, rttMs: number) => void;
  readonly limits?: Partial<TransportLimits>;
  /** Requests on paths other than raft's (e.g. GET /members for a member joining the cluster). */
  readonly otherRequest?: ReceiverContext['otherRequest'];
  /** Certificates and checks for https:// URLs (listening and dialling); required for them. */
  readonly tls?: PeerTls;
  /** Jitter for reconnection delays; values in [0, 1). Default Math.random. */
  readonly rng?: () => number;
}

export interface TransportStats extends ReceiverStats {
  /** Messages for an id that is not a peer (never added, or removed). */
  readonly unknownPeerDropped: number;
  /** Messages that could not be encoded or exceed frameBytesMax / snapshotBytesMax. */
  readonly unsendable: number;
  readonly peers: number;
  readonly incomingConnections: number;
  readonly incomingStreams: number;
}

/** Ids of removed members remembered (to refuse them with 410); the oldest are forgotten past this. */
const REMOVED_IDS_MAX = 1024;

const SCRATCH_KEEP_BYTES = 1024 * 1024;

type Lifecycle = 'new' | 'starting' | 'started' | 'closed';

export class PeerTransport implements RaftTransport {
  readonly #o: PeerTransportOptions;
  readonly #limits: TransportLimits;
  readonly #settings: ConnectionSettings;
  readonly #log: Logger;
  readonly #peers = new Map<NodeId, PeerSender>();
  /** Insertion-ordered, so the oldest is dropped first when the bound is reached. */
  readonly #removed = new Set<NodeId>();
  readonly #receiver: PeerReceiver;
  #listeners: PeerListener[] = [];
  #lifecycle: Lifecycle = 'new';
  /** One scratch buffer for encoding: each message is encoded once, then copied into its peer's queue. */
  #scratch = new ByteWriter(4096);
  #unknownPeerDropped = 0;
  #unsendable = 0;

  constructor(options: PeerTransportOptions) {
    assert(options.localId !== 0n, 'the local member id must not be 0');
    this.#o = options;
    this.#limits = resolveLimits(options.limits);
    this.#log = options.log;
    for (const url of options.listenUrls) checkPeerUrl(url);
    const l = this.#limits;
    this.#settings = {
      streamWindowBytes: l.streamWindowBytes,
      connectionWindowBytes: l.connectionWindowBytes,
      incomingConnectionsMax: l.incomingConnectionsMax,
      // nghttp2 counts data not yet on the wire: room for a full queue and a snapshot's chunks in flight.
      sessionMemoryMb: Math.ceil((l.queueBytesMax + 4 * l.snapshotChunkBytes + l.connectionWindowBytes) / 2 ** 20) + 16,
      ...(options.tls !== undefined ? { tls: options.tls } : {}),
    };
    this.#receiver = new PeerReceiver({
      localId: options.localId,
      clusterId: options.clusterId,
      limits: this.#limits,
      log: this.#log,
      deliver: (m) => {
        if (this.#lifecycle !== 'closed') this.#o.onMessage(m);
      },
      isRemoved: (id) => this.#removed.has(id),
      ...(options.otherRequest ? { otherRequest: options.otherRequest } : {}),
    });
  }

  /** Binds every listen URL; rejects (and releases what was bound) if one cannot be bound. */
  async start(): Promise<void> {
    assert(this.#lifecycle === 'new', () => `peer transport start() while ${this.#lifecycle}`);
    this.#lifecycle = 'starting';
    const handlers = {
      onSession: this.#receiver.onSession.bind(this.#receiver),
      onStream: this.#receiver.onStream.bind(this.#receiver),
      onError: (err: Error) => this.#log.error('peer listener error', { error: err.message }),
    };
    try {
      for (const url of this.#o.listenUrls) {
        this.#listeners.push(await listenPeer(url, this.#settings, handlers));
        this.#log.info('listening for peers', { address: this.#listeners.at(-1)?.url.href });
      }
    } catch (err) {
      await this.#closeListeners();
      this.#lifecycle = 'closed';
      throw err;
    }
    if (this.#lifecycle === 'starting') this.#lifecycle = 'started';
  }

  /** The listen URLs as bound (ports filled in); empty before start(). */
  boundUrls(): URL[] {
    return this.#listeners.map((l) => new URL(l.url.href));
  }

  /** Routes each message to its peer's queue (or snapshot path). Never blocks, never throws. */
  send(messages: readonly Message[]): void {
    if (this.#lifecycle === 'closed') return;
    let dropped: Set<PeerSender> | null = null;
    for (const m of messages) {
      const peer = this.#peers.get(m.to);
      if (peer === undefined) {
        this.#unknownPeerDropped++;
        continue;
      }
      if (!this.#route(peer, m)) (dropped ??= new Set()).add(peer);
    }
    // One report per peer per call is enough for raft to fall back to probing it.
    if (dropped !== null) for (const peer of dropped) this.#reportUnreachable(peer.id);
  }

  /** Starts sending to a member; with an id already known it behaves as updatePeer. Throws for bad URLs. */
  addPeer(id: NodeId, urls: readonly (URL | string)[]): void {
    assert(id !== this.#o.localId && id !== 0n, () => `cannot add ${idToHex(id)} as a peer of itself`);
    const parsed = parseUrls(urls);
    if (this.#lifecycle === 'closed') return;
    const existing = this.#peers.get(id);
    if (existing !== undefined) {
      existing.updateUrls(parsed);
      return;
    }
    this.#removed.delete(id);
    this.#peers.set(id, new PeerSender(this.#senderContext(), { id, urls: parsed }));
    this.#log.info('added remote peer', { 'remote-peer-id': idToHex(id), 'remote-peer-urls': parsed.map((u) => u.href) });
  }

  /** Stops sending to a member and refuses its connections from now on (410, as etcd does). */
  removePeer(id: NodeId): void {
    const peer = this.#peers.get(id);
    this.#peers.delete(id);
    this.#removed.add(id);
    if (this.#removed.size > REMOVED_IDS_MAX) this.#removed.delete(this.#removed.values().next().value!);
    this.#receiver.resetStreamFrom(id);
    if (peer === undefined) return;
    void peer.close();
    this.#log.info('removed remote peer', { 'remote-peer-id': idToHex(id) });
  }

  /** New URLs for a member; a no-op for an unknown id (as etcd's UpdatePeer). Throws for bad URLs. */
  updatePeer(id: NodeId, urls: readonly (URL | string)[]): void {
    const parsed = parseUrls(urls);
    this.#peers.get(id)?.updateUrls(parsed);
  }

  hasPeer(id: NodeId): boolean {
    return this.#peers.has(id);
  }

  /** The last measured round-trip time to a peer (HTTP/2 PING), or null before the first answer. */
  rttMs(peer: NodeId): number | null {
    return this.#peers.get(peer)?.rttMs ?? null;
  }

  peerStats(peer: NodeId): PeerStats | null {
    return this.#peers.get(peer)?.stats() ?? null;
  }

  stats(): TransportStats {
    return {
      ...this.#receiver.stats,
      unknownPeerDropped: this.#unknownPeerDropped,
      unsendable: this.#unsendable,
      peers: this.#peers.size,
      incomingConnections: this.#receiver.incomingConnections,
      incomingStreams: this.#receiver.incomingStreams,
    };
  }

  /** Stops listening, drops every connection and timer; no callback runs after this is called. */
  async close(): Promise<void> {
    if (this.#lifecycle === 'closed') return;
    this.#lifecycle = 'closed';
    const closing = [...this.#peers.values()].map((p) => p.close());
    this.#peers.clear();
    this.#receiver.destroyAll();
    await Promise.all([...closing, this.#closeListeners()]);
    // libuv releases closed handles in its close phase, after this turn's immediates: wait it out, so that
    // a caller that checks for open handles (or exits) right after close() finds none.
    await new Promise((resolve) => setImmediate(resolve));
  }

  // ---- internals ----

  /** False when the message was dropped. */
  #route(peer: PeerSender, m: Message): boolean {
    try {
      if (m.type === MessageType.Snap) {
        this.#sendSnapshot(peer, m);
        return true;
      }
      this.#scratch.reset();
      const frameBytes = appendFrame(this.#scratch, m);
      if (frameBytes - 4 > this.#limits.frameBytesMax) {
        this.#unsendable++;
        this.#log.error('dropped raft message larger than the frame limit', {
          'remote-peer-id': idToHex(m.to), type: m.type, bytes: frameBytes, limit: this.#limits.frameBytesMax,
        });
        return false;
      }
      const queued = peer.enqueue(this.#scratch.view());
      // One huge append must not pin its size in the scratch buffer for the life of the process.
      if (frameBytes > SCRATCH_KEEP_BYTES) this.#scratch = new ByteWriter(4096);
      return queued;
    } catch (err) {
      // A message the codec refuses is a bug upstream; the contract of send() is still not to throw.
      this.#unsendable++;
      this.#log.error('failed to encode raft message', { 'remote-peer-id': idToHex(m.to), type: m.type, error: String(err) });
      return false;
    }
  }

  #sendSnapshot(peer: PeerSender, m: Message): void {
    const encoded = encodeMessage(m);
    if (encoded.length > this.#limits.snapshotBytesMax) {
      this.#unsendable++;
      this.#log.error('snapshot message larger than the limit', {
        'remote-peer-id': idToHex(m.to), bytes: encoded.length, limit: this.#limits.snapshotBytesMax,
      });
      this.#reportSnapshot(peer.id, 'failure');
      return;
    }
    peer.sendSnapshot(m, encoded);
  }

  #senderContext(): SenderContext {
    return {
      localId: this.#o.localId,
      clusterId: this.#o.clusterId,
      limits: this.#limits,
      settings: this.#settings,
      log: this.#log,
      rng: this.#o.rng ?? Math.random,
      reportUnreachable: (peer) => this.#reportUnreachable(peer),
      reportSnapshot: (peer, status) => this.#reportSnapshot(peer, status),
      reportRemoved: (peer) => this.#defer(() => this.#o.onRemoved?.(peer)),
      ...(this.#o.onRtt ? { reportRtt: this.#o.onRtt } : {}),
    };
  }

  #reportUnreachable(peer: NodeId): void {
    this.#defer(() => this.#o.onUnreachable(peer));
  }

  #reportSnapshot(peer: NodeId, status: SnapshotStatus): void {
    this.#defer(() => this.#o.onSnapshotStatus(peer, status));
  }

  #defer(event: () => void): void {
    if (this.#lifecycle === 'closed') return;
    queueMicrotask(() => {
      if (this.#lifecycle !== 'closed') event();
    });
  }

  async #closeListeners(): Promise<void> {
    const listeners = this.#listeners;
    this.#listeners = [];
    await Promise.all(listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))));
  }
}

function parseUrls(urls: readonly (URL | string)[]): URL[] {
  if (urls.length === 0) throw new Error('a peer needs at least one URL');
  return urls.map((u) => {
    const url = typeof u === 'string' ? new URL(u) : new URL(u.href);
    checkPeerUrl(url);
    return url;
  });
}
