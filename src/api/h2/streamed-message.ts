/**
 * A response message written in pieces: a handler that would otherwise build a very large message (a Range
 * over millions of keys) hands this to the call instead, and the call writes the length prefix and then
 * the payload chunk by chunk as HTTP/2 takes it, so memory holds a chunk or two, not the message.
 *
 * Only calls served by this package can write one: a handler learns it may return one from the call
 * object's `streamedResponses` flag (grpc-js's server has no such flag and always gets plain messages).
 */
import type { Http2Session, ServerHttp2Stream } from 'node:http2';
import http2 from 'node:http2';
import { assert } from '../../base/assert.js';
import { messagePrefixBytes } from './grpc-wire.js';

export interface StreamedMessage {
  /** The encoded length of the whole message, known before the first chunk. */
  readonly byteLength: number;
  /** The next chunk of the encoded message; undefined once all byteLength bytes were returned. */
  next(): Buffer | undefined;
  /** Releases what the message holds (a pinned revision); called once, whether or not it was written whole. */
  close(): void;
  /** HTTP/2 is done with a chunk next() returned: its memory may serve a later chunk. */
  recycle?(chunk: Buffer): void;
}

/** etcd's server sends messages of at most math.MaxInt32 bytes (grpc.MaxSendMsgSize in v3rpc). */
export const sendMessageBytesMax = 2 ** 31 - 1;

/** Go's text when a response is over the send limit (grpc server.go sendResponse). */
export function sendTooLargeDetails(bytes: number): string {
  return `grpc: trying to send message larger than max (${bytes} vs. ${sendMessageBytesMax})`;
}

export function isStreamedMessage(value: unknown): value is StreamedMessage {
  return (
    typeof value === 'object' && value !== null &&
    typeof (value as StreamedMessage).next === 'function' &&
    typeof (value as StreamedMessage).close === 'function' &&
    typeof (value as StreamedMessage).byteLength === 'number'
  );
}

/**
 * Go's server forgives a client's pings whenever it has sent a DATA frame since the last one, and Go
 * clients ping (BDP estimation) about once per round trip while data arrives: far more often than our
 * chunks are handed over. So while a session has a streamed response under way, each ping is preceded by
 * a forgiving write note. One listener per session, however many such responses it carries.
 */
const streamingSessions = new WeakMap<Http2Session, { active: number; listener: () => void }>();

function noteWritesOnPing(session: Http2Session | undefined, onWrite: () => void): () => void {
  if (session === undefined) return () => {};
  let entry = streamingSessions.get(session);
  if (entry === undefined) {
    const created = { active: 0, listener: onWrite };
    entry = created;
    streamingSessions.set(session, created);
    session.prependListener('ping', created.listener);
  }
  entry.active++;
  const held = entry;
  return () => {
    if (--held.active > 0) return;
    session.off('ping', held.listener);
    streamingSessions.delete(session);
  };
}

/**
 * Writes prefix and payload to the stream, waiting for 'drain' whenever the stream's buffer is full, then
 * ends it (the trailers follow through 'wantTrailers'). A failure while producing chunks cannot become a
 * status any more (part of the message is out): the stream is reset, as Go's server does on a write error.
 * `onError` hears about such failures; `onWrite` about every chunk written; the message is closed in every case.
 */
export function writeStreamedMessage(
  stream: ServerHttp2Stream,
  message: StreamedMessage,
  hooks: { onError: (err: unknown) => void; onWrite: () => void },
): void {
  let written = 0;
  let closed = false;
  const stopNoting = noteWritesOnPing(stream.session, hooks.onWrite);
  const finish = (): void => {
    if (closed) return;
    closed = true;
    stopNoting();
    stream.off('drain', pump);
    stream.off('close', finish);
    message.close();
  };
  const fail = (err: unknown): void => {
    finish();
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    hooks.onError(err);
  };
  function pump(): void {
    try {
      for (;;) {
        if (closed || stream.destroyed || stream.closed) return finish();
        const chunk = message.next();
        if (chunk === undefined) {
          assert(written === message.byteLength, () => `streamed message ended at ${written} of ${message.byteLength} bytes`);
          finish();
          stream.end();
          return;
        }
        written += chunk.length;
        assert(written <= message.byteLength, () => `streamed message overran its length ${message.byteLength}`);
        // Each write counts as one for the ping policy: Go clients ping (BDP estimation) as data arrives.
        hooks.onWrite();
        const ok = stream.write(chunk, (err) => {
          if (!closed && !err) message.recycle?.(chunk);
        });
        if (!ok) return;
      }
    } catch (err) {
      fail(err);
    }
  }
  assert(message.byteLength >= 0 && message.byteLength <= sendMessageBytesMax, 'streamed message over the send limit');
  stream.on('close', finish);
  stream.on('drain', pump);
  const prefix = Buffer.allocUnsafe(messagePrefixBytes);
  prefix[0] = 0;
  prefix.writeUInt32BE(message.byteLength, 1);
  if (stream.write(prefix)) pump();
}
