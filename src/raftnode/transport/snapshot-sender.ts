/**
 * One MsgSnap on its way to a peer: its own HTTP/2 stream on the peer's connection, the encoded message
 * written in chunks as the stream drains, its SHA-256 computed chunk by chunk (so hashing a large snapshot
 * is spread over turns instead of stalling one) and sent as a trailer. Success is the receiver's 204,
 * which it sends only after handing the message to raft.
 */
import { createHash } from 'node:crypto';
import type { ClientHttp2Session, ClientHttp2Stream } from 'node:http2';
import { assert } from '../../base/assert.js';
import type { Logger } from '../../base/logger.js';
import type { Message } from '../../raft/types.js';
import type { TransportLimits } from './limits.js';
import { Header, SNAPSHOT_PATH, Status, idToHex } from './wire.js';

export type SnapshotOutcome = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface OutgoingSnapshotOptions {
  readonly message: Message;
  readonly encoded: Uint8Array;
  readonly limits: TransportLimits;
  readonly log: Logger;
  /** The identification headers every peer request carries. */
  readonly headers: Record<string, string>;
  /** Called exactly once. */
  readonly onDone: (outcome: SnapshotOutcome) => void;
}

/** Bytes of a refusal text kept for the log. */
const REFUSAL_TEXT_BYTES_MAX = 512;

export class OutgoingSnapshot {
  readonly #o: OutgoingSnapshotOptions;
  #stream: ClientHttp2Stream | null = null;
  #timer: NodeJS.Timeout | null = null;
  #settled = false;
  #status: number | null = null;
  #refusal = '';
  #error: string | null = null;
  #startedMs = 0;

  constructor(options: OutgoingSnapshotOptions) {
    this.#o = options;
  }

  start(session: ClientHttp2Session): void {
    if (this.#stream !== null || this.#settled) return;
    const o = this.#o;
    this.#startedMs = Date.now();
    o.log.info('sending database snapshot', {
      'remote-peer-id': idToHex(o.message.to), 'snapshot-index': o.message.snapshot?.metadata.index, bytes: o.encoded.length,
    });
    const stream = session.request(
      {
        ':method': 'POST', ':path': SNAPSHOT_PATH, 'content-type': 'application/octet-stream', ...o.headers,
        [Header.snapshotBytes]: String(o.encoded.length),
      },
      { endStream: false, waitForTrailers: true },
    );
    this.#stream = stream;
    this.#timer = setTimeout(() => this.abort(`not done within ${o.limits.snapshotTimeoutMs} ms`), o.limits.snapshotTimeoutMs);
    stream.on('response', (headers) => {
      this.#status = headers[':status'] ?? null;
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.#refusal.length < REFUSAL_TEXT_BYTES_MAX) this.#refusal += chunk.toString('utf8', 0, REFUSAL_TEXT_BYTES_MAX);
    });
    stream.on('error', (err) => {
      this.#error = err.message;
    });
    stream.on('close', () => this.#onClose());
    this.#pump(stream);
  }

  /** Gives up (connection lost, timeout, transport closing); reports failure unless already settled. */
  abort(reason: string): void {
    this.#settle({ ok: false, reason });
    this.#stream?.destroy();
  }

  #pump(stream: ClientHttp2Stream): void {
    const { encoded, limits } = this.#o;
    const hash = createHash('sha256');
    let offset = 0;
    stream.on('wantTrailers', () => {
      assert(offset === encoded.length, () => `snapshot trailer after ${offset} of ${encoded.length} bytes`);
      stream.sendTrailers({ [Header.snapshotSha256]: hash.digest('hex') });
    });
    const write = (): void => {
      while (offset < encoded.length && !stream.destroyed) {
        const chunk = encoded.subarray(offset, Math.min(offset + limits.snapshotChunkBytes, encoded.length));
        hash.update(chunk);
        offset += chunk.length;
        if (!stream.write(chunk)) {
          stream.once('drain', write);
          return;
        }
      }
      if (!stream.destroyed) stream.end();
    };
    write();
  }

  #onClose(): void {
    if (this.#status === Status.noContent) {
      this.#settle({ ok: true });
      return;
    }
    const why = this.#status !== null
      ? `peer answered ${this.#status}${this.#refusal === '' ? '' : `: ${this.#refusal.trim()}`}`
      : (this.#error ?? 'stream closed before an answer');
    this.#settle({ ok: false, reason: why });
  }

  #settle(outcome: SnapshotOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    const o = this.#o;
    const fields = {
      'remote-peer-id': idToHex(o.message.to), 'snapshot-index': o.message.snapshot?.metadata.index,
      bytes: o.encoded.length, took: this.#stream === null ? null : `${Date.now() - this.#startedMs}ms`,
    };
    if (outcome.ok) o.log.info('sent database snapshot', fields);
    else o.log.warn('failed to send database snapshot', { ...fields, error: outcome.reason });
    o.onDone(outcome);
  }
}
