/**
 * One gRPC call on one HTTP/2 stream, in bytes: reads length-prefixed messages, enforces the deadline,
 * notices cancellation, and writes response headers, messages and the status. It knows nothing of
 * protobuf or of handler shapes (grpc-js-compat.ts adapts it to grpc-js handlers).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { GrpcCode } from '../../base/errors.js';
import {
  encodeGrpcMessage, frameMessage, frameMessages, GrpcStatusError, MessageReader, messagePrefixBytes, type MessageEncoding,
} from './grpc-wire.js';
import { canceledCode, noopMethodMetrics, type GrpcMethodMetrics } from './grpc-metrics.js';
import { sendMessageBytesMax, sendTooLargeDetails, type StreamedMessage, writeStreamedMessage } from './streamed-message.js';

/** What a call reports to whoever serves it. Every callback runs at most once per event, never after onCancel. */
export interface CallListener {
  onMessage(payload: Buffer): void;
  onHalfClose(): void;
  /** The client went away, the deadline passed, or the request was malformed: stop working on the call. */
  onCancel(reason: CancelReason): void;
}

export type CancelReason = 'cancelled' | 'deadline' | 'protocol';

/** How a call ends: a gRPC code, its message, and any trailing metadata as headers. */
export interface CallStatus {
  readonly code: GrpcCode;
  readonly details: string;
  readonly trailers?: OutgoingHttpHeaders | undefined;
}

/** The connection's view of its calls: Go forgives the client's pings after each server write. */
export interface CallObserver {
  noteWrite(): void;
  noteCallStarted(): void;
  noteCallEnded(): void;
}

export interface GrpcCallOptions {
  readonly receiveBytesMax: number;
  readonly encoding: MessageEncoding;
  /** Milliseconds left for the call, from grpc-timeout; Infinity when the client set none. */
  readonly timeoutMs: number;
  readonly observer: CallObserver;
  /** The method's counters, bound at registration (default: none). */
  readonly metrics?: GrpcMethodMetrics;
}

const contentType = 'application/grpc';
const okHeaders: OutgoingHttpHeaders = { ':status': 200, 'content-type': contentType };
const okTrailers: OutgoingHttpHeaders = { 'grpc-status': '0' };
const respondWithTrailers = { waitForTrailers: true, sendDate: false } as const;
const respondAndEnd = { endStream: true, sendDate: false } as const;

function ignoreError(): void {
  // A stream's errors reach the call through 'close'; this listener only keeps them from being thrown.
}

/** The trailers for a status; Metadata-derived headers, when given, travel in the same block. */
function statusTrailers(status: CallStatus): OutgoingHttpHeaders {
  const { code, details, trailers: extra } = status;
  if (code === GrpcCode.OK && details === '' && extra === undefined) return okTrailers;
  const trailers: OutgoingHttpHeaders = extra === undefined ? {} : { ...extra };
  trailers['grpc-status'] = String(code);
  if (details !== '') trailers['grpc-message'] = encodeGrpcMessage(details);
  return trailers;
}

/** Answers a stream with a status and nothing else (the trailers-only form), for calls refused up front. */
export function refuseStream(stream: ServerHttp2Stream, status: CallStatus): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.on('error', ignoreError);
  const headers: OutgoingHttpHeaders = { ...okHeaders, ...statusTrailers(status) };
  stream.respond(headers, respondAndEnd);
  // The request body, if any, is of no interest; reading it lets the stream close normally.
  stream.resume();
}

export class GrpcCall {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly #observer: CallObserver;
  readonly #metrics: GrpcMethodMetrics;
  readonly #reader: MessageReader;
  readonly #deadline: number;
  #listener: CallListener | null = null;
  #timer: NodeJS.Timeout | null = null;
  #trailers: OutgoingHttpHeaders = okTrailers;
  #statusSent = false;
  #cancelled = false;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: GrpcCallOptions) {
    this.stream = stream;
    this.headers = headers;
    this.#observer = options.observer;
    this.#metrics = options.metrics ?? noopMethodMetrics;
    const version = headers['client-api-version'];
    this.#metrics.started(Array.isArray(version) ? version[0] : version);
    this.#reader = new MessageReader({ maxBytes: options.receiveBytesMax, encoding: options.encoding });
    this.#deadline = options.timeoutMs === Infinity ? Infinity : Date.now() + options.timeoutMs;
    stream.on('error', ignoreError);
    stream.on('close', () => this.#onClose());
    this.#observer.noteCallStarted();
    if (options.timeoutMs !== Infinity) {
      this.#timer = setTimeout(() => this.#onDeadline(), options.timeoutMs);
    }
  }

  /** True once the call can no longer complete: the client left, the deadline passed, or it was refused. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Whether a status went out; after that nothing more is written. */
  get finished(): boolean {
    return this.#statusSent;
  }

  /** Absolute deadline in ms since the epoch, or Infinity. */
  get deadline(): number {
    return this.#deadline;
  }

  /** Starts delivering messages; the listener stays for the call's life. */
  start(listener: CallListener): void {
    this.#listener = listener;
    this.stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.stream.on('end', () => this.#onEnd());
  }

  /** Stops reading: HTTP/2 flow control then holds the client back once the window is used up. */
  pauseReading(): void {
    this.stream.pause();
  }

  resumeReading(): void {
    this.stream.resume();
  }

  /** Sends the response headers now (grpc-js sendMetadata); otherwise they go with the first message. */
  sendHeaders(extra?: OutgoingHttpHeaders): void {
    if (this.#statusSent || this.stream.headersSent || !this.#writable()) return;
    const headers = extra === undefined ? okHeaders : { ...extra, ...okHeaders };
    this.#observer.noteWrite();
    this.stream.respond(headers, respondWithTrailers);
    // on, not once: the stream emits it at most once and is dropped after the call.
    this.stream.on('wantTrailers', () => this.#sendTrailers());
  }

  /**
   * Writes one message. Returns false when the stream's buffer is full: wait for 'drain' before writing more.
   * `done` runs when HTTP/2 has taken the bytes (flow control permitting), or at once if the call is over.
   */
  sendMessage(payload: Uint8Array, done?: (err?: Error | null) => void): boolean {
    if (this.#statusSent || !this.#writable()) {
      if (done !== undefined) process.nextTick(done);
      return false;
    }
    this.sendHeaders();
    this.#metrics.sent(1, payload.length);
    return this.#write(frameMessage(payload), done);
  }

  /** Writes several messages as one chunk: what a streaming call's buffered writes become. */
  sendMessages(payloads: readonly Uint8Array[], done?: (err?: Error | null) => void): boolean {
    if (this.#statusSent || !this.#writable()) {
      if (done !== undefined) process.nextTick(done);
      return false;
    }
    this.sendHeaders();
    let bytes = 0;
    for (const p of payloads) bytes += p.length;
    this.#metrics.sent(payloads.length, bytes);
    return this.#write(frameMessages(payloads), done);
  }

  /** Writes messages framed by the caller (FramedMessages), as they are. */
  sendFramed(framed: Buffer, count: number, done?: (err?: Error | null) => void): boolean {
    if (this.#statusSent || !this.#writable()) {
      if (done !== undefined) process.nextTick(done);
      return false;
    }
    this.sendHeaders();
    this.#metrics.sent(count, framed.length - count * messagePrefixBytes);
    return this.#write(framed, done);
  }

  /** The unary answer: headers, the message and the OK trailers leave in one turn. */
  sendUnaryResponse(payload: Uint8Array, trailers?: OutgoingHttpHeaders): void {
    if (this.#statusSent || !this.#writable()) return;
    this.sendHeaders();
    this.#metrics.sent(1, payload.length);
    this.#finish({ code: GrpcCode.OK, details: '', trailers });
    const framed = frameMessage(payload);
    if (Buffer.isBuffer(framed)) {
      this.stream.end(framed);
      return;
    }
    this.stream.cork();
    this.stream.write(framed[0]);
    this.stream.end(framed[1]);
    this.stream.uncork();
  }

  /**
   * The unary answer written in chunks as HTTP/2 takes them (streamed-message.ts); the OK trailers follow
   * the last chunk. A message over Go's send limit is refused with its status instead, nothing written.
   */
  sendStreamedUnaryResponse(message: StreamedMessage, opts: { trailers?: OutgoingHttpHeaders | undefined; onError: (err: unknown) => void }): void {
    if (this.#statusSent || !this.#writable()) {
      message.close();
      return;
    }
    if (message.byteLength > sendMessageBytesMax) {
      message.close();
      this.sendStatus({ code: GrpcCode.ResourceExhausted, details: sendTooLargeDetails(message.byteLength) });
      return;
    }
    this.sendHeaders();
    this.#finish({ code: GrpcCode.OK, details: '', trailers: opts.trailers });
    writeStreamedMessage(this.stream, message, { onError: opts.onError, onWrite: () => this.#observer.noteWrite() });
  }

  /** Ends the call with a status. Before any header went out this is a trailers-only response. */
  sendStatus(status: CallStatus): void {
    if (this.#statusSent || !this.#writable()) return;
    if (!this.stream.headersSent) {
      this.#finish(status);
      this.#observer.noteWrite();
      this.stream.respond({ ...okHeaders, ...this.#trailers }, respondAndEnd);
      return;
    }
    this.#finish(status);
    this.stream.end();
  }

  #write(chunk: Buffer | [Buffer, Uint8Array], done: ((err?: Error | null) => void) | undefined): boolean {
    this.#observer.noteWrite();
    if (Buffer.isBuffer(chunk)) return done === undefined ? this.stream.write(chunk) : this.stream.write(chunk, done);
    this.stream.cork();
    this.stream.write(chunk[0]);
    const ok = done === undefined ? this.stream.write(chunk[1]) : this.stream.write(chunk[1], done);
    this.stream.uncork();
    return ok;
  }

  #writable(): boolean {
    return !this.stream.destroyed && !this.stream.closed && !this.stream.writableEnded;
  }

  #finish(status: CallStatus): void {
    this.#statusSent = true;
    this.#metrics.handled(status.code);
    this.#trailers = statusTrailers(status);
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    // The call is over: whatever the client still sends is read and dropped, so a stream that was paused
    // for back-pressure cannot leave the client stuck on a closed window. (A flowing stream needs nothing:
    // resume() would cost a tick per call.)
    if (this.stream.readableFlowing !== true) this.stream.resume();
  }

  #sendTrailers(): void {
    if (this.stream.destroyed || this.stream.closed) return;
    this.#observer.noteWrite();
    this.stream.sendTrailers(this.#trailers);
  }

  /** Made once per call rather than once per DATA chunk. */
  readonly #deliver = (payload: Buffer): void => {
    if (this.#cancelled) return;
    this.#metrics.received(payload.length);
    this.#listener?.onMessage(payload);
  };

  #onData(chunk: Buffer): void {
    if (this.#cancelled || this.#statusSent) return;
    try {
      this.#reader.push(chunk, this.#deliver);
    } catch (err) {
      if (!(err instanceof GrpcStatusError)) throw err;
      this.fail(err.code, err.details);
    }
  }

  #onEnd(): void {
    if (this.#cancelled || this.#statusSent) return;
    if (this.#reader.midMessage) {
      this.fail(GrpcCode.Internal, 'grpc: the request stream ended inside a message');
      return;
    }
    this.#listener?.onHalfClose();
  }

  /** Refuses the call (bad input, a protocol error) and tells the handler to stop. */
  fail(code: GrpcCode, details: string): void {
    this.sendStatus({ code, details });
    this.#cancel('protocol');
  }

  #onDeadline(): void {
    this.#timer = null;
    if (this.#statusSent) return;
    this.sendStatus({ code: GrpcCode.DeadlineExceeded, details: 'context deadline exceeded' });
    this.#cancel('deadline');
  }

  #onClose(): void {
    this.#observer.noteCallEnded();
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (!this.#statusSent) {
      // No status will go out: the handler sees its call canceled, which is how etcd's counts it.
      this.#metrics.handled(canceledCode);
      this.#cancel('cancelled');
    }
  }

  #cancel(reason: CancelReason): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#listener?.onCancel(reason);
  }
}
