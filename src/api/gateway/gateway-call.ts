/**
 * One gateway request seen as a gRPC call: the transport half (CallCore) that src/api/h2/grpc-js-compat.ts
 * drives, so an HTTP/JSON request runs the very handler a gRPC client would reach. Requests arrive as
 * protobuf bytes (the gateway converted them from JSON); responses leave as jsonpb text:
 *
 *   unary:     200 and the message, or the error body {"error","message","code"} with the HTTP status of
 *              the gRPC code (grpc-gateway's DefaultHTTPError), and the trailer a trailers-only gRPC
 *              answer carries (Grpc-Trailer-Content-Type), as etcd's gateway relays it;
 *   streaming: one {"result": message} per line; a failure is one last {"error": {...}} object (with the
 *              error's HTTP status when nothing was written yet), grpc-gateway's ForwardResponseStream.
 */
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, IncomingHttpHeaders } from 'node:http2';
import type { DescMessage } from '@bufbuild/protobuf';
import { GrpcCode } from '../../base/errors.js';
import type { CallListener, CallStatus } from '../h2/grpc-call.js';
import type { CallCore } from '../h2/grpc-js-compat.js';
import { goQuote } from './go-json.js';
import type { JsonMapper } from './jsonpb.js';

export type GatewayRequest = IncomingMessage | Http2ServerRequest;
export type GatewayResponse = ServerResponse | Http2ServerResponse;

/** grpc-gateway's HTTPStatusFromCode. */
export function httpStatusOf(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK: return 200;
    case GrpcCode.Canceled: return 408;
    case GrpcCode.InvalidArgument: return 400;
    case GrpcCode.DeadlineExceeded: return 504;
    case GrpcCode.NotFound: return 404;
    case GrpcCode.AlreadyExists: return 409;
    case GrpcCode.PermissionDenied: return 403;
    case GrpcCode.Unauthenticated: return 401;
    case GrpcCode.ResourceExhausted: return 429;
    case GrpcCode.FailedPrecondition: return 412;
    case GrpcCode.Aborted: return 409;
    case GrpcCode.OutOfRange: return 400;
    case GrpcCode.Unimplemented: return 501;
    case GrpcCode.Unavailable: return 503;
    default: return 500;
  }
}

/** The errorBody message through jsonpb: empty strings are left out like any zero field. */
export function errorBody(code: GrpcCode, message: string): string {
  const text = message === '' ? '' : `"error":${goQuote(message)},"message":${goQuote(message)},`;
  return `{${text}"code":${code}}`;
}

/** The internal.StreamError chunk of a failed stream. */
function streamErrorChunk(code: GrpcCode, message: string): string {
  const http = httpStatusOf(code);
  const text = message === '' ? '' : `"message":${goQuote(message)},`;
  return `{"error":{"grpc_code":${code},"http_code":${http},${text}"http_status":${goQuote(STATUS_CODES[http] ?? '')}}}`;
}

/** Go's canonical header spelling: grpc-metadata-foo-bar -> Grpc-Metadata-Foo-Bar. */
function canonical(name: string): string {
  return name.split('-').map((p) => (p.length === 0 ? p : p[0]!.toUpperCase() + p.slice(1).toLowerCase())).join('-');
}

/** Answers with a JSON error body and nothing else: failures of the gateway itself, before any call. */
export function sendGatewayError(res: GatewayResponse, code: GrpcCode, message: string): void {
  if (res.headersSent || res.writableEnded) return;
  res.statusCode = httpStatusOf(code);
  res.setHeader('Content-Type', 'application/json');
  res.end(errorBody(code, message));
}

export interface GatewayCallOptions {
  readonly headers: IncomingHttpHeaders;
  readonly deadline: number;
  readonly streaming: boolean;
  readonly output: DescMessage;
  readonly mapper: JsonMapper;
}

export class GatewayCall implements CallCore {
  readonly headers: IncomingHttpHeaders;
  readonly deadline: number;
  readonly stream: CallCore['stream'];
  readonly #req: GatewayRequest;
  readonly #res: GatewayResponse;
  readonly #options: GatewayCallOptions;
  #listener: CallListener | null = null;
  #metadata: OutgoingHttpHeaders = {};
  #wroteMessage = false;
  #statusSent = false;
  #cancelled = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(req: GatewayRequest, res: GatewayResponse, options: GatewayCallOptions) {
    this.#req = req;
    this.#res = res;
    this.#options = options;
    this.headers = options.headers;
    this.deadline = options.deadline;
    this.stream = { session: { socket: req.socket } };
    res.once('close', () => {
      if (this.#timer !== null) clearTimeout(this.#timer);
      if (!this.#statusSent) this.#cancel();
    });
    if (Number.isFinite(options.deadline)) {
      this.#timer = setTimeout(() => this.#onDeadline(), Math.max(0, options.deadline - Date.now()));
    }
  }

  get finished(): boolean {
    return this.#statusSent || this.#cancelled;
  }

  start(listener: CallListener): void {
    this.#listener = listener;
  }

  /** A request message, already protobuf. */
  deliver(payload: Uint8Array): void {
    if (!this.finished) this.#listener?.onMessage(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  halfClose(): void {
    if (!this.finished) this.#listener?.onHalfClose();
  }

  pauseReading(): void {
    this.#req.pause();
  }

  resumeReading(): void {
    this.#req.resume();
  }

  /** Metadata becomes Grpc-Metadata-* headers, sent with the first message. */
  sendHeaders(extra?: OutgoingHttpHeaders): void {
    if (extra !== undefined) this.#metadata = { ...this.#metadata, ...extra };
  }

  sendMessage(payload: Uint8Array, done?: (err?: Error | null) => void): boolean {
    return this.sendMessages([payload], done);
  }

  sendMessages(payloads: readonly Uint8Array[], done?: (err?: Error | null) => void): boolean {
    if (this.finished || !this.#writable()) {
      if (done !== undefined) process.nextTick(done);
      return false;
    }
    const results = payloads.map((p) => this.#json(p));
    if (results.includes(null)) {
      if (done !== undefined) process.nextTick(done);
      return false;
    }
    const text = results.map((json) => `{"result":${json}}\n`).join('');
    this.#writeHead(200);
    this.#wroteMessage = true;
    return this.#write(text, done);
  }

  sendUnaryResponse(payload: Uint8Array): void {
    if (this.finished || !this.#writable()) return;
    const body = this.#json(payload);
    if (body === null) return;
    this.#finish();
    this.#writeHead(200);
    this.#res.end(body);
  }

  /** The handler's status: the server answered, so its trailers-only form shows in a trailer. */
  sendStatus(status: CallStatus): void {
    this.#endWith(status, { fromServer: true });
  }

  fail(code: GrpcCode, details: string): void {
    this.#endWith({ code, details }, { fromServer: false });
    this.#cancel();
  }

  #endWith(status: CallStatus, o: { fromServer: boolean }): void {
    if (this.finished || !this.#writable()) return;
    this.#finish();
    const res = this.#res;
    if (this.#options.streaming) {
      if (status.code === GrpcCode.OK) {
        this.#writeHead(200);
        res.end();
        return;
      }
      if (!this.#wroteMessage) this.#writeHead(httpStatusOf(status.code));
      res.end(streamErrorChunk(status.code, status.details));
      return;
    }
    if (status.code === GrpcCode.OK) {
      // Only a client-streaming handler ends OK without a message; grpc-go reports that as an error.
      sendGatewayError(res, GrpcCode.Internal, 'grpc: the server sent no response message');
      return;
    }
    res.statusCode = httpStatusOf(status.code);
    res.setHeader('Content-Type', 'application/json');
    if (!o.fromServer) {
      res.end(errorBody(status.code, status.details));
      return;
    }
    res.setHeader('Trailer', 'Grpc-Trailer-Content-Type');
    this.#write(errorBody(status.code, status.details));
    res.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
    res.end();
  }

  /** A response as jsonpb text; a message that does not decode fails the call as grpc-go's client would. */
  #json(payload: Uint8Array): string | null {
    try {
      return this.#options.mapper.decodeResponse(this.#options.output, payload);
    } catch (err) {
      this.fail(GrpcCode.Internal, `grpc: failed to unmarshal the received message ${String((err as Error)?.message ?? err)}`);
      return null;
    }
  }

  #writeHead(status: number): void {
    const res = this.#res;
    if (res.headersSent) return;
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    if (status === 200) {
      const metadata: OutgoingHttpHeaders = { ...this.#metadata, 'content-type': 'application/grpc' };
      for (const [key, value] of Object.entries(metadata)) {
        if (key.startsWith(':') || value === undefined) continue;
        res.setHeader(canonical(`grpc-metadata-${key}`), typeof value === 'number' ? String(value) : value);
      }
    }
  }

  /** HTTP/1 and HTTP/2 responses write alike; their declared overloads do not unify. */
  #write(text: string, done?: (err?: Error | null) => void): boolean {
    const out = this.#res as unknown as { write(chunk: string, cb?: (err?: Error | null) => void): boolean };
    return done === undefined ? out.write(text) : out.write(text, done);
  }

  #writable(): boolean {
    return !this.#res.writableEnded && !this.#res.destroyed;
  }

  #finish(): void {
    this.#statusSent = true;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    // What the client still sends is of no interest once the call is over.
    this.#req.resume();
  }

  #onDeadline(): void {
    this.#timer = null;
    this.fail(GrpcCode.DeadlineExceeded, 'context deadline exceeded');
  }

  #cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#listener?.onCancel('cancelled');
  }
}
