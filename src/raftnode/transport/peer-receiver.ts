/**
 * The receiving side of the peer protocol: checks who is talking (cluster id, protocol, addressee, removed
 * members), then turns a message stream into onMessage calls in arrival order, or reassembles a snapshot,
 * verifies its length and checksum, and hands it over before answering 204.
 *
 * Refusals answer as etcd's rafthttp does (412 for a foreign cluster or the wrong addressee, 410 for a
 * removed member) and are logged; a stream that breaks the framing or carries an undecodable message is
 * reset, since nothing after the bad bytes can be trusted.
 */
import { createHash, type Hash } from 'node:crypto';
import http2 from 'node:http2';
import type { IncomingHttpHeaders, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Logger } from '../../base/logger.js';
import { MessageType, type Message, type NodeId } from '../../raft/types.js';
import { CodecError, decodeMessage } from '../codec.js';
import type { TransportLimits } from './limits.js';
import { Liveness } from './liveness.js';
import {
  FrameError, FrameReader, Header, PROTOCOL_VERSION, SNAPSHOT_PATH, STREAM_PATH, Status, idToHex, isSha256Hex, parseHexId,
} from './wire.js';

export interface ReceiverContext {
  readonly localId: NodeId;
  readonly clusterId: NodeId;
  readonly limits: TransportLimits;
  readonly log: Logger;
  readonly deliver: (m: Message) => void;
  readonly isRemoved: (id: NodeId) => boolean;
  /** Requests on other paths (the member list for joining members); returns false to refuse with 404. */
  readonly otherRequest?: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;
}

export interface ReceiverStats {
  messagesReceived: number;
  bytesReceived: number;
  /** Streams and snapshots refused: foreign cluster, wrong addressee, removed member, bad request. */
  requestsRefused: number;
  /** Messages dropped from an accepted stream: addressed to another member or claiming another sender. */
  messagesRejected: number;
  /** Streams reset for bad framing or an undecodable message. */
  streamsBroken: number;
  snapshotsReceived: number;
  snapshotsRejected: number;
}

type Refusal = { readonly status: number; readonly reason: string };

export class PeerReceiver {
  readonly #c: ReceiverContext;
  readonly #sessions = new Map<ServerHttp2Session, Liveness>();
  /** The current message stream of each sender: a newer one replaces (and resets) an older one. */
  readonly #streams = new Map<NodeId, ServerHttp2Stream>();
  #snapshotsActive = 0;
  readonly stats: ReceiverStats = {
    messagesReceived: 0, bytesReceived: 0, requestsRefused: 0, messagesRejected: 0, streamsBroken: 0,
    snapshotsReceived: 0, snapshotsRejected: 0,
  };

  constructor(context: ReceiverContext) {
    this.#c = context;
  }

  get incomingConnections(): number {
    return this.#sessions.size;
  }

  get incomingStreams(): number {
    return this.#streams.size;
  }

  /** Every inbound connection is pinged too, so a sender that vanished silently does not hold it open. */
  onSession(session: ServerHttp2Session): void {
    const liveness = new Liveness(session, {
      intervalMs: this.#c.limits.pingIntervalMs,
      timeoutMs: this.#c.limits.pingTimeoutMs,
      onRtt: () => {},
      onDead: (reason) => {
        this.#c.log.warn('closing silent inbound peer connection', { error: reason });
        session.destroy();
      },
    });
    this.#sessions.set(session, liveness);
    session.on('error', (err) => this.#c.log.debug('inbound peer connection error', { error: err.message }));
    session.on('close', () => {
      liveness.stop();
      this.#sessions.delete(session);
    });
    liveness.start();
  }

  onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void {
    stream.on('error', (err) => this.#c.log.debug('inbound peer stream error', { error: err.message }));
    const path = headers[':path'];
    if (path !== STREAM_PATH && path !== SNAPSHOT_PATH) {
      if (this.#c.otherRequest?.(stream, headers)) return;
      this.#refuse(stream, { status: Status.notFound, reason: 'invalid path' }, headers);
      return;
    }
    if (headers[':method'] !== 'POST') {
      this.#refuse(stream, { status: Status.methodNotAllowed, reason: 'method not allowed' }, headers);
      return;
    }
    const from = this.#identify(headers);
    if (typeof from !== 'bigint') {
      this.#refuse(stream, from, headers);
      return;
    }
    if (path === STREAM_PATH) this.#acceptStream(stream, from);
    else this.#acceptSnapshot(stream, from, headers);
  }

  /** Resets a sender's message stream (it was removed from the cluster; it will be refused from now on). */
  resetStreamFrom(id: NodeId): void {
    this.#streams.get(id)?.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Destroys every inbound connection (transport shutdown). */
  destroyAll(): void {
    for (const [session, liveness] of this.#sessions) {
      liveness.stop();
      session.destroy();
    }
  }

  /** The sender's id, or why it is refused. */
  #identify(headers: IncomingHttpHeaders): NodeId | Refusal {
    if (text(headers[Header.protocol]) !== PROTOCOL_VERSION) {
      return { status: Status.preconditionFailed, reason: 'incompatible version' };
    }
    if (parseHexId(text(headers[Header.clusterId])) !== this.#c.clusterId) {
      return { status: Status.preconditionFailed, reason: 'cluster ID mismatch' };
    }
    const from = parseHexId(text(headers[Header.from]));
    if (from === null) return { status: Status.badRequest, reason: 'invalid from' };
    if (parseHexId(text(headers[Header.to])) !== this.#c.localId) {
      return { status: Status.preconditionFailed, reason: 'to field mismatch' };
    }
    if (this.#c.isRemoved(from)) return { status: Status.gone, reason: 'removed member' };
    return from;
  }

  #refuse(stream: ServerHttp2Stream, refusal: Refusal, headers: IncomingHttpHeaders): void {
    this.stats.requestsRefused++;
    this.#c.log.warn('refused peer request', {
      reason: refusal.reason, status: refusal.status, path: headers[':path'],
      'remote-peer-id': text(headers[Header.from]), 'remote-peer-cluster-id': text(headers[Header.clusterId]),
      'local-member-id': idToHex(this.#c.localId), 'local-member-cluster-id': idToHex(this.#c.clusterId),
    });
    stream.resume(); // discard whatever body the sender already put on the way
    respondEnd(stream, refusal.status, this.#c.clusterId, refusal.reason);
  }

  // ---- message stream ----

  #acceptStream(stream: ServerHttp2Stream, from: NodeId): void {
    const previous = this.#streams.get(from);
    if (previous !== undefined) previous.close(http2.constants.NGHTTP2_CANCEL);
    this.#streams.set(from, stream);
    stream.respond({ ':status': Status.ok, [Header.clusterId]: idToHex(this.#c.clusterId) });
    let broken = false;
    const reader = new FrameReader({
      frameBytesMax: this.#c.limits.frameBytesMax,
      onFrame: (frame) => this.#deliverFrame(from, frame),
    });
    stream.on('data', (chunk: Buffer) => {
      if (broken) return;
      try {
        reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError || err instanceof CodecError)) throw err;
        broken = true;
        this.stats.streamsBroken++;
        this.#c.log.warn('reset malformed peer stream', { 'remote-peer-id': idToHex(from), error: err.message });
        stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    // The sender ended its side (it is shutting down or replacing the stream): end ours.
    stream.on('end', () => {
      if (!stream.closed && !stream.destroyed) stream.end();
    });
    stream.on('close', () => {
      if (this.#streams.get(from) === stream) this.#streams.delete(from);
    });
    this.#c.log.info('established inbound message stream', { 'remote-peer-id': idToHex(from) });
  }

  #deliverFrame(from: NodeId, frame: Uint8Array): void {
    const m = decodeMessage(frame);
    // Snapshots have their own path; one on the stream would bypass its size limit and checksum.
    if (m.to !== this.#c.localId || m.from !== from || m.type === MessageType.Snap) {
      this.stats.messagesRejected++;
      this.#c.log.warn('dropped misaddressed peer message', {
        'remote-peer-id': idToHex(from), 'message-from': idToHex(m.from), 'message-to': idToHex(m.to), type: m.type,
      });
      return;
    }
    this.stats.messagesReceived++;
    this.stats.bytesReceived += frame.length;
    this.#c.deliver(m);
  }

  // ---- snapshots ----

  #snapshotRefusal(headers: IncomingHttpHeaders): Refusal | number {
    const total = Number(text(headers[Header.snapshotBytes]) ?? Number.NaN);
    if (!Number.isSafeInteger(total) || total <= 0) return { status: Status.badRequest, reason: 'bad snapshot size' };
    if (total > this.#c.limits.snapshotBytesMax) {
      return { status: Status.tooLarge, reason: `snapshot of ${total} bytes exceeds ${this.#c.limits.snapshotBytesMax}` };
    }
    if (this.#snapshotsActive >= this.#c.limits.incomingSnapshotsMax) {
      return { status: Status.busy, reason: 'too many snapshots in flight' };
    }
    return total;
  }

  #acceptSnapshot(stream: ServerHttp2Stream, from: NodeId, headers: IncomingHttpHeaders): void {
    const total = this.#snapshotRefusal(headers);
    if (typeof total !== 'number') {
      this.stats.snapshotsRejected++;
      this.#refuse(stream, total, headers);
      return;
    }
    this.#snapshotsActive++;
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), this.#c.limits.snapshotTimeoutMs);
    stream.on('close', () => {
      this.#snapshotsActive--;
      clearTimeout(timer);
    });
    const body = new SnapshotBody(total);
    let failed = false;
    stream.on('data', (chunk: Buffer) => {
      if (failed || body.add(chunk)) return;
      failed = true;
      this.#rejectSnapshot(stream, from, `more bytes than the announced ${total}`);
    });
    let sha256: string | undefined;
    stream.on('trailers', (trailers: IncomingHttpHeaders) => {
      sha256 = text(trailers[Header.snapshotSha256]);
    });
    stream.on('end', () => {
      if (!failed) this.#finishSnapshot(stream, from, body, sha256);
    });
  }

  #finishSnapshot(stream: ServerHttp2Stream, from: NodeId, body: SnapshotBody, sha256: string | undefined): void {
    const problem = body.problem(sha256);
    if (problem !== null) {
      this.#rejectSnapshot(stream, from, problem);
      return;
    }
    let m: Message;
    try {
      // The buffer belongs to this message alone: let the snapshot data share it rather than copy it.
      m = decodeMessage(body.bytes, { alias: true });
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.#rejectSnapshot(stream, from, err.message);
      return;
    }
    if (m.type !== MessageType.Snap || m.to !== this.#c.localId || m.from !== from || m.snapshot === null) {
      this.#rejectSnapshot(stream, from, 'not a snapshot message from the sender to this member');
      return;
    }
    this.stats.snapshotsReceived++;
    this.#c.log.info('received database snapshot', {
      'remote-peer-id': idToHex(from), 'snapshot-index': m.snapshot.metadata.index, bytes: body.bytes.length,
    });
    this.#c.deliver(m);
    respondEnd(stream, Status.noContent, this.#c.clusterId, '');
  }

  #rejectSnapshot(stream: ServerHttp2Stream, from: NodeId, reason: string): void {
    this.stats.snapshotsRejected++;
    this.#c.log.warn('rejected incoming snapshot', { 'remote-peer-id': idToHex(from), error: reason });
    respondEnd(stream, Status.badRequest, this.#c.clusterId, reason);
  }
}

/** A snapshot body being reassembled: a buffer of the announced size and a running hash. */
class SnapshotBody {
  readonly bytes: Uint8Array;
  readonly #hash: Hash = createHash('sha256');
  #fill = 0;

  constructor(total: number) {
    this.bytes = Buffer.allocUnsafe(total);
  }

  /** False when the chunk would overflow the announced size. */
  add(chunk: Uint8Array): boolean {
    if (this.#fill + chunk.length > this.bytes.length) return false;
    this.bytes.set(chunk, this.#fill);
    this.#fill += chunk.length;
    this.#hash.update(chunk);
    return true;
  }

  problem(sha256: string | undefined): string | null {
    if (this.#fill !== this.bytes.length) return `truncated: ${this.#fill} of ${this.bytes.length} bytes`;
    if (!isSha256Hex(sha256)) return 'no checksum trailer';
    const actual = this.#hash.digest('hex');
    return actual === sha256 ? null : `checksum mismatch: got ${actual}, sender said ${sha256}`;
  }
}

function text(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Answers and ends the response; a 204 carries no body (HTTP/2 forbids one). */
function respondEnd(stream: ServerHttp2Stream, status: number, clusterId: NodeId, body: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  if (status === Status.noContent) {
    stream.respond({ ':status': status, [Header.clusterId]: idToHex(clusterId) }, { endStream: true });
    return;
  }
  stream.respond({ ':status': status, [Header.clusterId]: idToHex(clusterId), 'content-type': 'text/plain' });
  stream.end(body);
}
