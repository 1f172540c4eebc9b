/**
 * Everything this member sends to one peer: a bounded queue of encoded messages, the connection and its
 * message stream, snapshot transfers, reconnection with back-off, and the round-trip time.
 *
 * States: connecting (queue fills, nothing written until the receiver accepts the stream) -> streaming
 * (queue written as one batch per turn, honouring the stream's back-pressure) -> on any failure, back-off
 * (the queue is discarded and new messages are dropped at once: raft retransmits, and stale appends or
 * heartbeats are worth nothing after a reconnect) -> connecting again, to the next of the peer's URLs.
 *
 * Nothing here blocks or throws towards the caller; events (unreachable, snapshot status) go through the
 * transport, which delivers them on a later tick.
 */
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import { assert } from '../../base/assert.js';
import type { Logger } from '../../base/logger.js';
import type { Message, NodeId } from '../../raft/types.js';
import { ByteWriter } from '../codec.js';
import { dialPeer, type ConnectionSettings } from './connection.js';
import type { TransportLimits } from './limits.js';
import { Liveness } from './liveness.js';
import { OutgoingSnapshot, type SnapshotOutcome } from './snapshot-sender.js';
import { Header, PROTOCOL_VERSION, STREAM_PATH, Status, idToHex, parseHexId } from './wire.js';

export type PeerState = 'connecting' | 'streaming' | 'backoff' | 'closed';
export type SnapshotStatus = 'finish' | 'failure';

/** What a sender needs from its transport; shared by all peers. */
export interface SenderContext {
  readonly localId: NodeId;
  readonly clusterId: NodeId;
  readonly limits: TransportLimits;
  readonly settings: ConnectionSettings;
  readonly log: Logger;
  readonly rng: () => number;
  readonly reportUnreachable: (peer: NodeId) => void;
  readonly reportSnapshot: (peer: NodeId, status: SnapshotStatus) => void;
  /** A peer told us we were removed from the cluster (HTTP 410). */
  readonly reportRemoved: (peer: NodeId) => void;
  /** Each answered PING on the connection to a peer (etcd_network_peer_round_trip_time_seconds). */
  readonly reportRtt?: (peer: NodeId, rttMs: number) => void;
}

export interface PeerStats {
  readonly id: NodeId;
  readonly state: PeerState;
  readonly url: string;
  readonly messagesSent: number;
  readonly bytesSent: number;
  /** Dropped because the queue was full or the peer was unreachable (raft retransmits). */
  readonly messagesDropped: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  /** Successful stream set-ups after the first. */
  readonly reconnects: number;
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  readonly rttMs: number | null;
  /** Since when (ms since the epoch) the message stream has been up; null while it is not. */
  readonly streamingSinceMs: number | null;
}

/** A batch buffer that grew past this is replaced after a flush, so one burst does not pin memory. */
const BATCH_KEEP_BYTES = 8 * 1024 * 1024;

export class PeerSender {
  readonly id: NodeId;
  readonly #c: SenderContext;
  readonly #log: Logger;
  #urls: readonly URL[];
  #urlIndex = 0;
  #state: PeerState = 'connecting';
  /** Bumped on every connection attempt and failure: events of an older attempt are ignored. */
  #generation = 0;
  #session: ClientHttp2Session | null = null;
  /** Sessions destroyed or live whose 'close' has not come yet: close() waits for them. */
  readonly #unclosed = new Set<Promise<void>>();
  #stream: ClientHttp2Stream | null = null;
  #liveness: Liveness | null = null;
  /** The connect timeout while connecting, the reconnection delay during back-off. */
  #timer: NodeJS.Timeout | null = null;
  #batch = new ByteWriter(4096);
  #batchCount = 0;
  #flushQueued = false;
  #awaitingDrain = false;
  readonly #snapshots: OutgoingSnapshot[] = [];
  #failures = 0;
  #everStreamed = false;
  #lastError: string | null = null;
  #rttMs: number | null = null;
  #streamingSinceMs: number | null = null;
  #sent = 0;
  #bytesSent = 0;
  #dropped = 0;
  #snapshotsSent = 0;
  #snapshotsFailed = 0;
  #reconnects = 0;

  constructor(context: SenderContext, options: { id: NodeId; urls: readonly URL[] }) {
    assert(options.urls.length > 0, () => `peer ${idToHex(options.id)} has no URL`);
    this.id = options.id;
    this.#c = context;
    this.#urls = options.urls;
    this.#log = context.log;
    this.#connect();
  }

  get state(): PeerState {
    return this.#state;
  }

  get rttMs(): number | null {
    return this.#rttMs;
  }

  /**
   * Queues one encoded frame (copied: the caller reuses its buffer). False when it was dropped: the peer
   * is unreachable or its queue is full.
   */
  enqueue(frame: Uint8Array): boolean {
    const limits = this.#c.limits;
    const full = this.#batchCount >= limits.queueMessagesMax || this.#batch.length + frame.length > limits.queueBytesMax;
    if (this.#state === 'backoff' || this.#state === 'closed' || full) {
      this.#dropped++;
      return false;
    }
    this.#batch.raw(frame);
    this.#batchCount++;
    this.#scheduleFlush();
    return true;
  }

  /** Sends a MsgSnap on its own stream; the outcome is reported through the context, never thrown. */
  sendSnapshot(message: Message, encoded: Uint8Array): void {
    if (this.#state === 'backoff' || this.#state === 'closed' || this.#snapshots.length >= this.#c.limits.snapshotsPerPeerMax) {
      this.#log.warn('dropped snapshot message', {
        'remote-peer-id': idToHex(this.id), 'snapshot-index': message.snapshot?.metadata.index, state: this.#state,
        'snapshots-in-flight': this.#snapshots.length,
      });
      this.#snapshotsFailed++;
      this.#c.reportUnreachable(this.id);
      this.#c.reportSnapshot(this.id, 'failure');
      return;
    }
    const snap = new OutgoingSnapshot({
      message, encoded, limits: this.#c.limits, log: this.#log, headers: this.#headers(),
      onDone: (outcome) => this.#snapshotDone(snap, outcome),
    });
    this.#snapshots.push(snap);
    if (this.#state === 'streaming' && this.#session !== null) snap.start(this.#session);
  }

  /** New URLs for the peer (membership update); reconnects only if the current URL is no longer listed. */
  updateUrls(urls: readonly URL[]): void {
    assert(urls.length > 0, () => `peer ${idToHex(this.id)} has no URL`);
    const current = this.#currentUrl().href;
    this.#urls = urls;
    const keep = urls.findIndex((u) => u.href === current);
    if (keep >= 0) {
      this.#urlIndex = keep;
      return;
    }
    this.#urlIndex = 0;
    if (this.#state === 'closed') return;
    this.#log.info('peer URLs changed; reconnecting', { 'remote-peer-id': idToHex(this.id), urls: urls.map((u) => u.href) });
    this.#teardown();
    this.#dropQueue();
    this.#failSnapshots();
    this.#connect();
  }

  /** Stops everything; resolves once the connection is fully closed. Queued messages are discarded. */
  close(): Promise<void> {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#generation++;
      this.#teardown();
      this.#dropQueue();
      this.#failSnapshots();
    }
    return Promise.all(this.#unclosed).then(() => {});
  }

  stats(): PeerStats {
    return {
      id: this.id, state: this.#state, url: this.#currentUrl().href, messagesSent: this.#sent,
      bytesSent: this.#bytesSent, messagesDropped: this.#dropped, queuedMessages: this.#batchCount,
      queuedBytes: this.#batch.length, snapshotsSent: this.#snapshotsSent, snapshotsFailed: this.#snapshotsFailed,
      reconnects: this.#reconnects, consecutiveFailures: this.#failures, lastError: this.#lastError, rttMs: this.#rttMs,
      streamingSinceMs: this.#state === 'streaming' ? this.#streamingSinceMs : null,
    };
  }

  #currentUrl(): URL {
    return this.#urls[this.#urlIndex % this.#urls.length]!;
  }

  #headers(): Record<string, string> {
    return {
      [Header.clusterId]: idToHex(this.#c.clusterId),
      [Header.from]: idToHex(this.#c.localId),
      [Header.to]: idToHex(this.id),
      [Header.protocol]: PROTOCOL_VERSION,
    };
  }

  // ---- connection life cycle ----

  #connect(): void {
    const generation = ++this.#generation;
    this.#state = 'connecting';
    let session: ClientHttp2Session;
    try {
      session = dialPeer(this.#currentUrl(), this.#c.settings);
    } catch (err) {
      // URLs are checked when the peer is added; this is a host lookup or socket failure at dial time.
      this.#fail(generation, err instanceof Error ? err.message : String(err));
      return;
    }
    this.#session = session;
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    this.#unclosed.add(closed);
    void closed.then(() => this.#unclosed.delete(closed));
    session.on('error', (err) => this.#fail(generation, err.message));
    session.on('close', () => this.#fail(generation, 'connection closed'));
    const stream = session.request(
      { ':method': 'POST', ':path': STREAM_PATH, 'content-type': 'application/octet-stream', ...this.#headers() },
      { endStream: false },
    );
    this.#stream = stream;
    stream.on('response', (headers) => this.#onResponse(generation, headers));
    // The receiver writes nothing but a refusal text; consume it so the stream can finish.
    stream.on('data', () => {});
    stream.on('error', (err) => this.#fail(generation, err.message));
    stream.on('close', () => this.#fail(generation, `stream closed (code ${stream.rstCode ?? 'none'})`));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#fail(generation, `no stream within ${this.#c.limits.connectTimeoutMs} ms`);
    }, this.#c.limits.connectTimeoutMs);
  }

  #onResponse(generation: number, headers: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
    if (generation !== this.#generation) return;
    const status = headers[':status'];
    const remoteCluster = parseHexId(headerText(headers[Header.clusterId]));
    if (status !== Status.ok) {
      this.#log.warn('peer refused the message stream', {
        'remote-peer-id': idToHex(this.id), status, 'remote-peer-cluster-id': headerText(headers[Header.clusterId]),
        'local-member-cluster-id': idToHex(this.#c.clusterId),
      });
      this.#fail(generation, status === Status.gone ? 'refused: this member was removed' : `refused with status ${status}`);
      if (status === Status.gone) this.#c.reportRemoved(this.id);
      return;
    }
    // The receiver checked our cluster id; check its answer too, so a misrouted proxy cannot pair us up.
    if (remoteCluster !== this.#c.clusterId) {
      this.#fail(generation, `cluster ID mismatch: peer answered ${headerText(headers[Header.clusterId])}`);
      return;
    }
    this.#onStreaming(generation);
  }

  #onStreaming(generation: number): void {
    this.#clearTimer();
    this.#state = 'streaming';
    this.#streamingSinceMs = Date.now();
    if (this.#everStreamed) this.#reconnects++;
    this.#everStreamed = true;
    this.#failures = 0;
    this.#log.info('established TCP streaming connection with remote peer', {
      'remote-peer-id': idToHex(this.id), url: this.#currentUrl().href,
    });
    const session = this.#session;
    assert(session !== null, 'streaming without a session');
    this.#liveness = new Liveness(session, {
      intervalMs: this.#c.limits.pingIntervalMs,
      timeoutMs: this.#c.limits.pingTimeoutMs,
      onRtt: (rttMs) => {
        this.#rttMs = rttMs;
        this.#c.reportRtt?.(this.id, rttMs);
      },
      onDead: (reason) => this.#fail(generation, reason),
    });
    this.#liveness.start();
    for (const snap of this.#snapshots) snap.start(session);
    this.#scheduleFlush();
  }

  #fail(generation: number, reason: string): void {
    if (generation !== this.#generation || this.#state === 'closed') return;
    this.#generation++;
    const wasStreaming = this.#state === 'streaming';
    this.#failures++;
    this.#lastError = reason;
    this.#teardown();
    this.#dropQueue();
    this.#failSnapshots();
    this.#logFailure(wasStreaming, reason);
    this.#c.reportUnreachable(this.id);
    this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#state = 'backoff';
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect();
    }, this.#backoffDelayMs());
  }

  #logFailure(wasStreaming: boolean, reason: string): void {
    const fields = { 'remote-peer-id': idToHex(this.id), url: this.#currentUrl().href, error: reason };
    if (wasStreaming) this.#log.warn('lost TCP streaming connection with remote peer', fields);
    // A peer that stays down would otherwise log every back-off period.
    else if (this.#failures === 1) this.#log.warn('failed to reach remote peer', fields);
    else this.#log.debug('failed to reach remote peer', { ...fields, attempts: this.#failures });
  }

  /** Exponential in the consecutive failures, capped, with jitter so that peers do not retry in step. */
  #backoffDelayMs(): number {
    const { reconnectDelayMinMs: min, reconnectDelayMaxMs: max } = this.#c.limits;
    const exponent = Math.min(this.#failures - 1, 30);
    const base = Math.min(max, min * 2 ** exponent);
    return Math.max(1, Math.round(base * (0.5 + 0.5 * this.#c.rng())));
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Releases the connection and its timers; the session's 'close' arrives later and is ignored. */
  #teardown(): void {
    this.#clearTimer();
    this.#liveness?.stop();
    this.#liveness = null;
    this.#stream?.destroy();
    this.#stream = null;
    this.#session?.destroy();
    this.#session = null;
    this.#awaitingDrain = false;
  }

  #dropQueue(): void {
    this.#dropped += this.#batchCount;
    this.#batchCount = 0;
    this.#batch = new ByteWriter(4096);
  }

  // ---- writing ----

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#awaitingDrain || this.#state !== 'streaming') return;
    this.#flushQueued = true;
    // Everything sent in this turn of the event loop goes out as one write.
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  #flush(): void {
    const stream = this.#stream;
    if (this.#state !== 'streaming' || this.#awaitingDrain || this.#batchCount === 0 || stream === null) return;
    const bytes = this.#batch.copy();
    this.#sent += this.#batchCount;
    this.#bytesSent += bytes.length;
    this.#batchCount = 0;
    if (bytes.length > BATCH_KEEP_BYTES) this.#batch = new ByteWriter(4096);
    else this.#batch.reset();
    if (stream.write(bytes)) return;
    this.#awaitingDrain = true;
    const generation = this.#generation;
    stream.once('drain', () => {
      if (generation !== this.#generation) return;
      this.#awaitingDrain = false;
      this.#flush();
    });
  }

  // ---- snapshots ----

  #snapshotDone(snap: OutgoingSnapshot, outcome: SnapshotOutcome): void {
    const at = this.#snapshots.indexOf(snap);
    if (at >= 0) this.#snapshots.splice(at, 1);
    if (outcome.ok) {
      this.#snapshotsSent++;
      this.#c.reportSnapshot(this.id, 'finish');
      return;
    }
    this.#snapshotsFailed++;
    this.#c.reportUnreachable(this.id);
    this.#c.reportSnapshot(this.id, 'failure');
  }

  #failSnapshots(): void {
    // abort() calls back into #snapshotDone, which edits the list: iterate over a copy.
    for (const snap of [...this.#snapshots]) snap.abort('connection to the peer lost');
  }
}

function headerText(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
