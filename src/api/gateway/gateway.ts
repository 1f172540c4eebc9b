/**
 * etcd's HTTP/JSON gateway on the client URLs: POST /v3/<service>/<method> (and /v3beta/...) with a
 * jsonpb body, answered with jsonpb, by the SAME handlers the gRPC server runs. Nothing here knows a
 * service: a path maps to a gRPC method (routes.ts), the method's message types come from the proto
 * descriptors (jsonpb.ts), its handler from the registrations the gRPC server was built with. A method
 * whose service is not registered answers what a gRPC server without it answers (Unimplemented).
 *
 *   const gateway = createGateway({ services, receiveBytesMax, log });
 *   if (!gateway(req, res)) ...   // false: not a gateway path, the caller serves it
 *
 * The caller first applies go-mux.ts's preRoute (the /v3beta/ rewrite, Go's clean-path redirects).
 *
 * As etcd's gateway (a gRPC client of its own server): the Authorization header travels as metadata
 * ("authorization", and "token", the key etcd's server reads), Grpc-Metadata-* headers as metadata,
 * Grpc-Timeout as the deadline; a unary body is its first JSON value, a streaming body a sequence of them.
 */
import type { Http2ServerRequest } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { UntypedHandleCall } from '@grpc/grpc-js';
import { GrpcCode } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { H2ServiceRegistration } from '../h2/h2-server.js';
import { methodKind, serveCall, type BoundMethod } from '../h2/grpc-js-compat.js';
import { GrpcStatusError, parseGrpcTimeout } from '../h2/grpc-wire.js';
import { GatewayCall, sendGatewayError, type GatewayRequest, type GatewayResponse } from './gateway-call.js';
import { GoJsonError, parseValid, ValueScanner, type JsonNode } from './go-json.js';
import { JsonMapper, type MethodTypes } from './jsonpb.js';
import { gatewayRoutes } from './routes.js';

export interface GatewayOptions {
  /** The gRPC server's registrations (src/server/bootstrap.ts builds them once for both). */
  readonly services: readonly H2ServiceRegistration[];
  /** The gRPC server's receive limit (--max-request-bytes plus gRPC's allowance). */
  readonly receiveBytesMax: number;
  readonly log: Logger;
}

export type GatewayHandler = (req: GatewayRequest, res: GatewayResponse) => boolean;

/** A JSON body may be this many times the protobuf limit (base64 and quoting inflate it). */
const jsonBodyFactor = 4;

interface Route {
  readonly path: string;
  readonly types: MethodTypes;
  readonly method: BoundMethod | undefined;
}

function bindMethods(services: readonly H2ServiceRegistration[], log: Logger): { methods: Map<string, BoundMethod>; names: Set<string> } {
  const methods = new Map<string, BoundMethod>();
  const names = new Set<string>();
  for (const { definition, implementation } of services) {
    for (const [name, def] of Object.entries(definition)) {
      names.add(def.path.slice(1, def.path.lastIndexOf('/')));
      const handler: UntypedHandleCall | undefined = implementation[name];
      if (handler === undefined) continue;
      methods.set(def.path, {
        path: def.path, kind: methodKind(def), handler, log,
        deserialize: (bytes) => def.requestDeserialize(bytes),
        serialize: (value) => def.responseSerialize(value as never),
      });
    }
  }
  return { methods, names };
}

/** grpc-go's texts for a method the server does not have. */
function unimplementedText(path: string, services: ReadonlySet<string>): string {
  const slash = path.lastIndexOf('/');
  const service = path.slice(1, slash);
  return services.has(service) ? `unknown method ${path.slice(slash + 1)} for service ${service}` : `unknown service ${service}`;
}

/** Go's http.Error, as grpc-gateway's mux answers paths and methods it does not serve. */
function plainError(res: GatewayResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(`${text}\n`);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The metadata etcd's gateway forwards (grpc-gateway's AnnotateContext). */
function callHeaders(req: GatewayRequest): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = { 'content-type': 'application/grpc' };
  const authority = single((req as Http2ServerRequest).headers[':authority']) ?? req.headers.host;
  if (authority !== undefined) headers[':authority'] = authority;
  for (const [key, value] of Object.entries(req.headers)) {
    if (value === undefined || key.startsWith(':')) continue;
    if (key === 'authorization') {
      headers['authorization'] = single(value);
      headers['token'] = single(value);
    } else if (key.startsWith('grpc-metadata-') && key.length > 'grpc-metadata-'.length) {
      headers[key.slice('grpc-metadata-'.length)] = value;
    }
  }
  return headers;
}

export function createGateway(options: GatewayOptions): GatewayHandler {
  const mapper = JsonMapper.fromProtoDescriptors();
  const { methods, names } = bindMethods(options.services, options.log);
  const routes = new Map<string, Route>();
  for (const [httpPath, grpcPath] of gatewayRoutes) {
    const types = mapper.method(grpcPath);
    if (types === undefined) throw new Error(`gateway route ${httpPath}: no method ${grpcPath} in proto/`);
    routes.set(httpPath, { path: grpcPath, types, method: methods.get(grpcPath) });
  }
  const serve = { mapper, names, receiveBytesMax: options.receiveBytesMax, log: options.log };
  return (req, res) => {
    const url = req.url ?? '/';
    const query = url.indexOf('?');
    const path = query < 0 ? url : url.slice(0, query);
    if (!path.startsWith('/v3/')) return false;
    const route = routes.get(path);
    if (route === undefined) plainError(res, 404, 'Not Found');
    else if (req.method !== 'POST') plainError(res, 405, 'Method Not Allowed');
    else startCall(req, res, route, serve);
    return true;
  };
}

interface Serving {
  readonly mapper: JsonMapper;
  readonly names: ReadonlySet<string>;
  readonly receiveBytesMax: number;
  readonly log: Logger;
}

function startCall(req: GatewayRequest, res: GatewayResponse, route: Route, s: Serving): void {
  let deadline = Infinity;
  const timeout = single(req.headers['grpc-timeout']);
  if (timeout !== undefined) {
    try {
      deadline = Date.now() + parseGrpcTimeout(timeout);
    } catch (err) {
      if (!(err instanceof GrpcStatusError)) throw err;
      sendGatewayError(res, GrpcCode.InvalidArgument, `invalid grpc-timeout: ${timeout}`);
      return;
    }
  }
  const call = new GatewayCall(req, res, {
    headers: callHeaders(req), deadline, streaming: route.types.responseStream, output: route.types.output, mapper: s.mapper,
  });
  const reader = new BodyReader(req, { bytesMax: s.receiveBytesMax * jsonBodyFactor });
  const begin = (): boolean => {
    if (call.finished) return false;
    if (route.method === undefined) {
      call.sendStatus({ code: GrpcCode.Unimplemented, details: unimplementedText(route.path, s.names) });
      return false;
    }
    serveCall(call, route.method);
    return true;
  };
  const encode = (node: JsonNode | null): Uint8Array | GoJsonError => {
    try {
      return s.mapper.encodeRequest(route.types.input, node);
    } catch (err) {
      if (err instanceof GoJsonError) return err;
      throw err;
    }
  };
  const tooLarge = (bytes: Uint8Array): boolean => {
    if (bytes.length <= s.receiveBytesMax) return false;
    call.sendStatus({ code: GrpcCode.ResourceExhausted, details: `grpc: received message larger than max (${bytes.length} vs. ${s.receiveBytesMax})` });
    return true;
  };
  // A bug of ours must not become an unhandled rejection (the process would exit): it fails this request.
  const failed = (err: unknown): void => {
    s.log.error('gateway request failed', { path: route.path, error: String((err as Error)?.stack ?? err) });
    call.fail(GrpcCode.Internal, String((err as Error)?.message ?? err));
  };
  if (!route.types.requestStream) {
    reader.next().then((value) => {
      reader.discard();
      if (value instanceof GoJsonError) return sendGatewayError(res, GrpcCode.InvalidArgument, value.message);
      const bytes = encode(value);
      if (bytes instanceof GoJsonError) return sendGatewayError(res, GrpcCode.InvalidArgument, bytes.message);
      if (tooLarge(bytes) || !begin()) return undefined;
      call.deliver(bytes);
      call.halfClose();
      return undefined;
    }).catch(failed);
    return;
  }
  streamRequests(reader, { call, encode, begin, tooLarge, res }).catch(failed);
}

/**
 * A streaming body: the first value decides whether the call starts (etcd's gateway sends it before
 * answering; a bad one fails the request as Unknown); after that a bad value ends the requests, as
 * grpc-gateway's send loop stops and half-closes, while the responses go on.
 */
async function streamRequests(reader: BodyReader, o: {
  call: GatewayCall; res: GatewayResponse; begin: () => boolean;
  encode: (node: JsonNode | null) => Uint8Array | GoJsonError; tooLarge: (bytes: Uint8Array) => boolean;
}): Promise<void> {
  let started = false;
  for (;;) {
    const value = await reader.next();
    if (o.call.finished) return;
    if (value === null) break;
    const bytes = value instanceof GoJsonError ? value : o.encode(value);
    if (bytes instanceof GoJsonError) {
      if (!started) {
        sendGatewayError(o.res, GrpcCode.Unknown, bytes.message);
        return;
      }
      break;
    }
    if (!started) {
      if (!o.begin()) return;
      started = true;
    }
    if (o.tooLarge(bytes)) return;
    o.call.deliver(bytes);
  }
  reader.discard();
  if (!started && !o.begin()) return;
  o.call.halfClose();
}

/** Splits a request body into JSON values as Go's json.Decoder does, holding at most bytesMax unparsed. */
class BodyReader {
  readonly #req: GatewayRequest;
  readonly #bytesMax: number;
  readonly #scanner = new ValueScanner();
  #buf: Buffer = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | null = null;

  constructor(req: GatewayRequest, options: { bytesMax: number }) {
    this.#req = req;
    this.#bytesMax = options.bytesMax;
    req.on('data', (chunk: Buffer) => {
      this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
      if (this.#buf.length > this.#bytesMax) req.pause();
      this.#notify();
    });
    req.once('end', () => {
      this.#ended = true;
      this.#notify();
    });
    req.once('close', () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The next value; null at the end of the body; a GoJsonError for bad syntax or an oversized value. */
  async next(): Promise<JsonNode | null | GoJsonError> {
    for (;;) {
      const r = this.#scanner.scan(this.#buf, this.#ended);
      if (r.kind === 'value') {
        const text = this.#buf.toString('utf8', r.start, r.end);
        this.#buf = this.#buf.subarray(r.end);
        this.#scanner.reset(0);
        this.#req.resume();
        return parseValid(text);
      }
      if (r.kind === 'eof') return null;
      if (r.kind === 'error') return new GoJsonError(r.message);
      if (this.#buf.length > this.#bytesMax) return new GoJsonError('http: request body too large');
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /** Reads and drops the rest of the body. */
  discard(): void {
    this.#buf = Buffer.alloc(0);
    this.#req.removeAllListeners('data');
    this.#req.resume();
  }
}
