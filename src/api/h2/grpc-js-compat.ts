/**
 * Runs grpc-js-shaped handlers (the ones src/api/grpc registers) on our calls. The objects handed to
 * handlers behave as grpc-js's ServerUnaryCall / ServerReadableStream / ServerWritableStream /
 * ServerDuplexStream do: objectMode streams with .metadata, .cancelled and a 'cancelled' event, end(metadata)
 * for trailers, and emit('error', {code, details}) to fail a call.
 */
import { EventEmitter } from 'node:events';
import { Duplex, Readable, Writable } from 'node:stream';
import { TLSSocket, type PeerCertificate } from 'node:tls';
import {
  Metadata,
  type handleBidiStreamingCall, type handleClientStreamingCall, type handleServerStreamingCall,
  type handleUnaryCall, type sendUnaryData, type ServerDuplexStream, type ServerReadableStream,
  type ServerUnaryCall, type ServerWritableStream, type UntypedHandleCall,
} from '@grpc/grpc-js';
import { GrpcCode } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { CallListener, CallStatus } from './grpc-call.js';
import { isStreamedMessage, type StreamedMessage } from './streamed-message.js';
import { FramedMessages } from './grpc-wire.js';

/**
 * What the call objects need from the transport: GrpcCall (gRPC over HTTP/2) is one, the HTTP/JSON
 * gateway's call (src/api/gateway) another, so both run the very same handlers.
 */
export interface CallCore {
  readonly headers: IncomingHttpHeaders;
  /** Absolute deadline in ms since the epoch, or Infinity. */
  readonly deadline: number;
  readonly stream: { readonly session?: { readonly socket?: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined } } | undefined };
  start(listener: CallListener): void;
  pauseReading(): void;
  resumeReading(): void;
  sendHeaders(extra?: OutgoingHttpHeaders): void;
  sendMessage(payload: Uint8Array, done?: (err?: Error | null) => void): boolean;
  sendMessages(payloads: readonly Uint8Array[], done?: (err?: Error | null) => void): boolean;
  /** Messages framed by the handler (FramedMessages), written as they are; without it they are split. */
  sendFramed?(framed: Buffer, count: number, done?: (err?: Error | null) => void): boolean;
  sendUnaryResponse(payload: Uint8Array, trailers?: OutgoingHttpHeaders): void;
  /** Writes a large response piece by piece (streamed-message.ts); absent where the transport cannot. */
  sendStreamedUnaryResponse?(message: StreamedMessage, opts: { trailers?: OutgoingHttpHeaders | undefined; onError: (err: unknown) => void }): void;
  sendStatus(status: CallStatus): void;
  fail(code: GrpcCode, details: string): void;
}

/** The part of a generated grpc-js method definition we use (ts-proto's shape). */
export interface MethodDefinitionLike {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
}

export type MethodKind = 'unary' | 'serverStream' | 'clientStream' | 'bidi';

/** A method as the dispatcher holds it: codec, handler and kind resolved once at registration. */
export interface BoundMethod {
  readonly path: string;
  readonly kind: MethodKind;
  readonly deserialize: (bytes: Buffer) => unknown;
  readonly serialize: (value: unknown) => Uint8Array;
  readonly handler: UntypedHandleCall;
  readonly log: Logger;
}

export function methodKind(def: Pick<MethodDefinitionLike, 'requestStream' | 'responseStream'>): MethodKind {
  if (def.requestStream) return def.responseStream ? 'bidi' : 'clientStream';
  return def.responseStream ? 'serverStream' : 'unary';
}

/** Headers that are transport, not metadata (grpc-js strips the same ones). */
const transportHeaders = ['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type'];
const objectModeHighWaterMark = 16;

type WriteDone = (err?: Error | null) => void;

function requestMetadata(call: CallCore): Metadata {
  const md = Metadata.fromHttp2Headers(call.headers);
  for (const h of transportHeaders) md.remove(h);
  return md;
}

function isGrpcCode(code: unknown): code is GrpcCode {
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16;
}

/** grpc-js's serverErrorToStatus: an integer code and string details win, else UNKNOWN with the message. */
export function errorToStatus(err: unknown, trailer?: Metadata | null): CallStatus {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
  const md = trailer ?? (e.metadata instanceof Metadata ? e.metadata : undefined);
  const message = typeof e.message === 'string' ? e.message : 'Unknown Error';
  const code = isGrpcCode(e.code) ? e.code : GrpcCode.Unknown;
  const details = isGrpcCode(e.code) && typeof e.details === 'string' ? e.details : message;
  return { code, details, trailers: md?.toHttp2Headers() };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** grpc-js's AuthContext (not exported by its index). */
export interface AuthContext {
  transportSecurityType?: string;
  sslPeerCertificate?: PeerCertificate;
}

/** Shared by the four call shapes: everything grpc-js's ServerSurfaceCall offers that handlers use. */
class CallContext {
  readonly core: CallCore;
  readonly method: BoundMethod;
  #metadata: Metadata | null = null;

  constructor(core: CallCore, method: BoundMethod) {
    this.core = core;
    this.method = method;
  }

  /** Built on first use: most calls never look at their metadata. */
  metadata(): Metadata {
    this.#metadata ??= requestMetadata(this.core);
    return this.#metadata;
  }

  peer(): string {
    const socket = this.core.stream.session?.socket;
    return socket === undefined ? 'unknown' : `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
  }

  host(): string {
    return this.core.headers[':authority'] ?? '';
  }

  /**
   * grpc-js's getAuthContext(): on a TLS connection whose client certificate was verified, the certificate
   * (the auth layer takes its CN as the user under --client-cert-auth); {} otherwise.
   */
  authContext(): AuthContext {
    const socket = this.core.stream.session?.socket;
    if (!(socket instanceof TLSSocket) || !socket.authorized) return {};
    const cert = socket.getPeerCertificate();
    return { transportSecurityType: 'ssl', ...(cert.raw !== undefined ? { sslPeerCertificate: cert } : {}) };
  }

  sendMetadata(md: Metadata): void {
    this.core.sendHeaders(md.toHttp2Headers());
  }

  sendStatus(status: CallStatus): void {
    this.core.sendStatus(status);
  }

  /** A handler that throws is a bug in us; the client gets UNKNOWN as grpc-js answers, the log gets the stack. */
  handlerThrew(err: unknown): void {
    this.method.log.error('gRPC handler threw', { method: this.method.path, error: String((err as Error)?.stack ?? err) });
    this.core.sendStatus({ code: GrpcCode.Unknown, details: 'Unknown error' });
  }

  serialize(value: unknown): Uint8Array | null {
    try {
      return this.method.serialize(value);
    } catch (err) {
      this.core.sendStatus({ code: GrpcCode.Internal, details: `grpc: error while marshaling: ${errorText(err)}` });
      return null;
    }
  }

  /** A streamed response failed half-way (its stream was reset): a bug or a store closing under it. */
  #streamFailed(err: unknown): void {
    this.method.log.warn('streamed response failed', { method: this.method.path, error: String((err as Error)?.stack ?? err) });
  }

  /** The unary/client-streaming callback: a response or an error, at most once. */
  responder(): sendUnaryData<unknown> {
    return (err, value, trailer) => {
      if (err !== null && err !== undefined) {
        this.sendStatus(errorToStatus(err, trailer));
        return;
      }
      if (isStreamedMessage(value)) {
        if (this.core.sendStreamedUnaryResponse === undefined) throw new Error('a streamed response on a transport that cannot write one');
        this.core.sendStreamedUnaryResponse(value, { trailers: trailer?.toHttp2Headers(), onError: (e) => this.#streamFailed(e) });
        return;
      }
      const bytes = this.serialize(value);
      if (bytes !== null) this.core.sendUnaryResponse(bytes, trailer?.toHttp2Headers());
    };
  }
}

/** Decodes a request message, or refuses the call with INTERNAL as Go does. */
function decode(ctx: CallContext, payload: Buffer, unary: boolean): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: ctx.method.deserialize(payload) };
  } catch (err) {
    // Go's two texts differ in punctuation too.
    const text = unary ? `grpc: error unmarshalling request: ${errorText(err)}` : `grpc: failed to unmarshal the received message ${errorText(err)}`;
    ctx.core.fail(GrpcCode.Internal, text);
    return { ok: false };
  }
}

/** ServerUnaryCall, and the listener that waits for its single request. Server streaming reuses the reading. */
class UnaryCall extends EventEmitter implements CallListener {
  readonly #ctx: CallContext;
  request: unknown = undefined;
  cancelled = false;
  /** Whether the handler may answer with a StreamedMessage (streamed-message.ts): our HTTP/2 calls can write one, grpc-js and the JSON gateway cannot. */
  get streamedResponses(): boolean {
    return this.#ctx.core.sendStreamedUnaryResponse !== undefined;
  }
  #received = false;

  constructor(ctx: CallContext) {
    super();
    this.#ctx = ctx;
  }

  get metadata(): Metadata {
    return this.#ctx.metadata();
  }
  getAuthContext(): AuthContext {
    return this.#ctx.authContext();
  }
  getPeer(): string {
    return this.#ctx.peer();
  }
  getDeadline(): number {
    return this.#ctx.core.deadline;
  }
  getPath(): string {
    return this.#ctx.method.path;
  }
  getHost(): string {
    return this.#ctx.host();
  }
  sendMetadata(md: Metadata): void {
    this.#ctx.sendMetadata(md);
  }

  onMessage(payload: Buffer): void {
    // Go reads exactly one request for a unary call and never looks at what follows.
    if (this.#received) return;
    this.#received = true;
    const decoded = decode(this.#ctx, payload, true);
    if (!decoded.ok) return;
    this.request = decoded.value;
    try {
      (this.#ctx.method.handler as handleUnaryCall<unknown, unknown>)(
        this as unknown as ServerUnaryCall<unknown, unknown>, this.#ctx.responder());
    } catch (err) {
      this.#ctx.handlerThrew(err);
    }
  }

  onHalfClose(): void {
    if (!this.#received) this.#ctx.core.fail(GrpcCode.Internal, 'grpc: the client sent no request message');
  }

  onCancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

/** What the writing side of ServerWritableStream and ServerDuplexStream share. */
class ResponseWriter {
  readonly #ctx: CallContext;
  #pending: CallStatus = { code: GrpcCode.OK, details: '' };
  #trailing: Metadata | null = null;

  constructor(ctx: CallContext) {
    this.#ctx = ctx;
  }

  write(chunk: unknown, done: (err?: Error | null) => void): void {
    if (chunk instanceof FramedMessages) return this.#sendFramed([chunk], done);
    const bytes = this.#ctx.serialize(chunk);
    if (bytes === null) done();
    else this.#ctx.core.sendMessage(bytes, done);
  }

  writev(chunks: ReadonlyArray<{ chunk: unknown }>, done: (err?: Error | null) => void): void {
    if (chunks.every((c) => c.chunk instanceof FramedMessages)) {
      return this.#sendFramed(chunks.map((c) => c.chunk as FramedMessages), done);
    }
    const payloads: Uint8Array[] = [];
    for (const c of chunks) {
      if (c.chunk instanceof FramedMessages) {
        payloads.push(...c.chunk.payloads());
        continue;
      }
      const bytes = this.#ctx.serialize(c.chunk);
      if (bytes === null) {
        done();
        return;
      }
      payloads.push(bytes);
    }
    this.#ctx.core.sendMessages(payloads, done);
  }

  /** Pre-framed chunks leave as one write; a transport that frames by itself gets the messages. */
  #sendFramed(chunks: readonly FramedMessages[], done: (err?: Error | null) => void): void {
    const core = this.#ctx.core;
    if (core.sendFramed === undefined) {
      core.sendMessages(chunks.flatMap((c) => c.payloads()), done);
      return;
    }
    let count = 0;
    for (const c of chunks) count += c.count;
    const bytes = chunks.length === 1 ? chunks[0]!.bytes : Buffer.concat(chunks.map((c) => c.bytes));
    core.sendFramed(bytes, count, done);
  }

  #corked = false;

  /** Corks the stream until the end of this turn: a burst of writes (a txn's watch events) leaves as one
   * _writev, one gRPC DATA write, instead of a first lone message and then the rest. */
  corkTurn(stream: Writable): void {
    if (this.#corked) return;
    this.#corked = true;
    stream.cork();
    process.nextTick(() => {
      this.#corked = false;
      stream.uncork();
    });
  }

  setTrailing(metadata: unknown): void {
    if (metadata instanceof Metadata) this.#trailing = metadata;
  }

  /** The handler emitted 'error' (or destroyed the stream with one): that becomes the status. */
  onError(err: unknown, stream: Writable): void {
    this.#pending = errorToStatus(err);
    if (stream.destroyed || stream.writableFinished) this.final();
    else stream.end();
  }

  final(): void {
    const trailers = this.#pending.trailers ?? this.#trailing?.toHttp2Headers();
    this.#ctx.sendStatus({ ...this.#pending, trailers });
  }
}

class ServerStreamCall extends Writable implements CallListener {
  readonly #ctx: CallContext;
  readonly #writer: ResponseWriter;
  request: unknown = undefined;
  cancelled = false;
  #received = false;

  constructor(ctx: CallContext) {
    super({ objectMode: true, highWaterMark: objectModeHighWaterMark });
    this.#ctx = ctx;
    this.#writer = new ResponseWriter(ctx);
    this.on('error', (err) => this.#writer.onError(err, this));
  }

  get metadata(): Metadata {
    return this.#ctx.metadata();
  }
  getAuthContext(): AuthContext {
    return this.#ctx.authContext();
  }
  getPeer(): string {
    return this.#ctx.peer();
  }
  getDeadline(): number {
    return this.#ctx.core.deadline;
  }
  getPath(): string {
    return this.#ctx.method.path;
  }
  getHost(): string {
    return this.#ctx.host();
  }
  sendMetadata(md: Metadata): void {
    this.#ctx.sendMetadata(md);
  }

  override _write(chunk: unknown, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#writer.write(chunk, done);
  }
  override _writev(chunks: Array<{ chunk: unknown }>, done: (err?: Error | null) => void): void {
    this.#writer.writev(chunks, done);
  }
  override _final(done: (err?: Error | null) => void): void {
    done();
    this.#writer.final();
  }
  override write(chunk: unknown, encoding?: BufferEncoding | WriteDone, done?: WriteDone): boolean {
    // Pre-framed chunks are batched by their writer already: corking them would only add a turn's work.
    if (!(chunk instanceof FramedMessages)) this.#writer.corkTurn(this);
    return typeof encoding === 'function' ? super.write(chunk, encoding) : super.write(chunk, encoding ?? 'utf8', done);
  }
  /** As grpc-js: the argument is trailing metadata, not a last message. */
  override end(metadata?: unknown): this {
    this.#writer.setTrailing(metadata);
    return super.end();
  }

  onMessage(payload: Buffer): void {
    if (this.#received) return;
    this.#received = true;
    const decoded = decode(this.#ctx, payload, false);
    if (!decoded.ok) return;
    this.request = decoded.value;
    try {
      (this.#ctx.method.handler as handleServerStreamingCall<unknown, unknown>)(
        this as unknown as ServerWritableStream<unknown, unknown>);
    } catch (err) {
      this.#ctx.handlerThrew(err);
    }
  }

  onHalfClose(): void {
    if (!this.#received) this.#ctx.core.fail(GrpcCode.Internal, 'grpc: the client sent no request message');
  }

  onCancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
    this.destroy();
  }
}

/** Feeds decoded requests into a readable side, pausing the HTTP/2 stream while the handler lags. */
function pushRequest(ctx: CallContext, stream: Readable, payload: Buffer): void {
  const decoded = decode(ctx, payload, false);
  if (decoded.ok && !stream.push(decoded.value)) ctx.core.pauseReading();
}

class ClientStreamCall extends Readable implements CallListener {
  readonly #ctx: CallContext;
  cancelled = false;

  constructor(ctx: CallContext) {
    super({ objectMode: true, highWaterMark: objectModeHighWaterMark });
    this.#ctx = ctx;
  }

  get metadata(): Metadata {
    return this.#ctx.metadata();
  }
  getAuthContext(): AuthContext {
    return this.#ctx.authContext();
  }
  getPeer(): string {
    return this.#ctx.peer();
  }
  getDeadline(): number {
    return this.#ctx.core.deadline;
  }
  getPath(): string {
    return this.#ctx.method.path;
  }
  getHost(): string {
    return this.#ctx.host();
  }
  sendMetadata(md: Metadata): void {
    this.#ctx.sendMetadata(md);
  }

  override _read(): void {
    this.#ctx.core.resumeReading();
  }

  invoke(): void {
    try {
      (this.#ctx.method.handler as handleClientStreamingCall<unknown, unknown>)(
        this as unknown as ServerReadableStream<unknown, unknown>, this.#ctx.responder());
    } catch (err) {
      this.#ctx.handlerThrew(err);
    }
  }

  onMessage(payload: Buffer): void {
    pushRequest(this.#ctx, this, payload);
  }

  onHalfClose(): void {
    this.push(null);
  }

  onCancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
    this.destroy();
  }
}

class BidiCall extends Duplex implements CallListener {
  readonly #ctx: CallContext;
  readonly #writer: ResponseWriter;
  cancelled = false;

  constructor(ctx: CallContext) {
    super({ objectMode: true, readableHighWaterMark: objectModeHighWaterMark, writableHighWaterMark: objectModeHighWaterMark });
    this.#ctx = ctx;
    this.#writer = new ResponseWriter(ctx);
    this.on('error', (err) => this.#writer.onError(err, this));
  }

  get metadata(): Metadata {
    return this.#ctx.metadata();
  }
  getAuthContext(): AuthContext {
    return this.#ctx.authContext();
  }
  getPeer(): string {
    return this.#ctx.peer();
  }
  getDeadline(): number {
    return this.#ctx.core.deadline;
  }
  getPath(): string {
    return this.#ctx.method.path;
  }
  getHost(): string {
    return this.#ctx.host();
  }
  sendMetadata(md: Metadata): void {
    this.#ctx.sendMetadata(md);
  }

  override _read(): void {
    this.#ctx.core.resumeReading();
  }
  override _write(chunk: unknown, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.#writer.write(chunk, done);
  }
  override _writev(chunks: Array<{ chunk: unknown }>, done: (err?: Error | null) => void): void {
    this.#writer.writev(chunks, done);
  }
  override _final(done: (err?: Error | null) => void): void {
    done();
    this.#writer.final();
  }
  override write(chunk: unknown, encoding?: BufferEncoding | WriteDone, done?: WriteDone): boolean {
    // Pre-framed chunks are batched by their writer already: corking them would only add a turn's work.
    if (!(chunk instanceof FramedMessages)) this.#writer.corkTurn(this);
    return typeof encoding === 'function' ? super.write(chunk, encoding) : super.write(chunk, encoding ?? 'utf8', done);
  }
  override end(metadata?: unknown): this {
    this.#writer.setTrailing(metadata);
    return super.end();
  }

  invoke(): void {
    try {
      (this.#ctx.method.handler as handleBidiStreamingCall<unknown, unknown>)(
        this as unknown as ServerDuplexStream<unknown, unknown>);
    } catch (err) {
      this.#ctx.handlerThrew(err);
    }
  }

  onMessage(payload: Buffer): void {
    pushRequest(this.#ctx, this, payload);
  }

  onHalfClose(): void {
    this.push(null);
  }

  onCancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
    this.destroy();
  }
}

/** Starts serving one call with the method's grpc-js handler. */
export function serveCall(core: CallCore, method: BoundMethod): void {
  const ctx = new CallContext(core, method);
  switch (method.kind) {
    case 'unary':
      core.start(new UnaryCall(ctx));
      return;
    case 'serverStream':
      core.start(new ServerStreamCall(ctx));
      return;
    case 'clientStream': {
      const call = new ClientStreamCall(ctx);
      core.start(call);
      call.invoke();
      return;
    }
    case 'bidi': {
      const call = new BidiCall(ctx);
      core.start(call);
      call.invoke();
      return;
    }
  }
}
