/**
 * The client port: gRPC (our own server over node:http2) and HTTP (gateway, /health, /metrics, /version)
 * on the same URLs, as etcd serves them. A drop-in for src/api/grpc/grpc-server.ts's GrpcServer: same
 * registrations, same options, same listen/close/boundPorts:
 *
 *   const server = new H2Server([kvService(api, log), ...], { urls, requestBytesMax, maxConcurrentStreams,
 *     keepaliveMinTimeMs, keepaliveIntervalMs, keepaliveTimeoutMs, log, httpHandler });
 *   await server.listen(urls);   // server.boundPorts: one port per URL (port 0 picks one)
 *   await server.close(graceMs); // GOAWAY, in-flight calls finish until graceMs, then connections are cut
 *
 * gRPC is any HTTP/2 request whose content-type is application/grpc[+proto|;...]; everything else (HTTP/1.1,
 * other HTTP/2 requests) goes to httpHandler, a plain (req, res) handler (default: 404).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, {
  type Http2ServerRequest, type Http2ServerResponse, type Http2Session, type IncomingHttpHeaders, type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { assert } from '../../base/assert.js';
import { GrpcCode } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { createClientListener, listenOnUrl, type ClientProtocol } from './client-listener.js';
import { GrpcCall, refuseStream } from './grpc-call.js';
import { methodKind, serveCall, type BoundMethod, type MethodDefinitionLike } from './grpc-js-compat.js';
import { GrpcStatusError, parseEncoding, parseGrpcTimeout } from './grpc-wire.js';
import { SessionGuard, type KeepaliveOptions } from './session-policy.js';
import { grpcTypeOf, noopGrpcMetrics, splitMethodPath, type GrpcMethodMetrics, type GrpcServerMetrics } from './grpc-metrics.js';
import type { Duplex } from 'node:stream';
import { listenWithAuthorityFix, type AuthorityFixListener } from '../h2-authority/authority-front.js';

/** etcd lets a request's gRPC frame exceed --max-request-bytes by this much; the server checks the rest. */
const grpcOverheadBytes = 512 * 1024;
/** HTTP/2 caps SETTINGS_MAX_CONCURRENT_STREAMS at 2^32-1; etcd's default is that maximum. */
const concurrentStreamsMax = 2 ** 32 - 1;
/** Per-stream receive window: a 1.5 MiB Put needs two window updates instead of two dozen. */
const streamWindowBytes = 1024 * 1024;
/** Per-connection receive window, shared by the connection's streams. */
const connectionWindowBytes = 8 * 1024 * 1024;
/** nghttp2's per-session memory budget (outbound queue, header tables); large responses need room. */
const sessionMemoryMegabytes = 64;
/** A connection must show its protocol (preface, request line, TLS handshake) within this. */
const prefaceTimeoutMs = 10_000;
/** An HTTP/1 connection idle this long is closed. */
const http1IdleTimeoutMs = 120_000;

export type HttpHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/** A service as src/api/grpc/services.ts registers it: a generated grpc-js definition and its handlers. */
export interface H2ServiceRegistration {
  readonly definition: { readonly [method: string]: MethodDefinitionLike };
  readonly implementation: UntypedServiceImplementation;
}

export interface H2ServerOptions {
  readonly urls: readonly URL[];
  readonly requestBytesMax: number;
  readonly maxConcurrentStreams: number;
  readonly keepaliveMinTimeMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  readonly log: Logger;
  /** Serves every request that is not gRPC (HTTP/1.1, or HTTP/2 without application/grpc). Default: 404. */
  readonly httpHandler?: HttpHandler;
  /** Whether clients may ping while they have no call open. etcd (and this default): false. */
  readonly keepalivePermitWithoutStream?: boolean;
  /**
   * Accept plaintext connections through the authority front (src/api/h2-authority), which repairs the
   * :authority some Go clients send. A connection is handed to this server with its first request.
   */
  readonly authorityFront?: boolean;
  /** Certificates for https:// URLs; ALPN then picks h2 or http/1.1. */
  readonly tls?: TlsOptions;
  /** Checks each TLS connection after its handshake; a rejection is logged as "rejected connection". */
  readonly tlsCheck?: (socket: TLSSocket) => Promise<void>;
  /** Called with each TLS listener once created (e.g. to keep its certificate current). */
  readonly onTlsServer?: (server: TlsServer) => void;
  /** How a refused TLS connection is logged (default: a debug line). */
  readonly onTlsReject?: (socket: TLSSocket, err: Error) => void;
  /** Per-method call counters (go-grpc-prometheus's), bound at registration. Default: none. */
  readonly metrics?: GrpcServerMetrics;
}

/** A registered method with its counters. */
interface RegisteredMethod extends BoundMethod {
  readonly metrics: GrpcMethodMetrics;
}

function notFound(_req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  res.statusCode = 404;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end('404 page not found\n');
}

/** application/grpc, application/grpc+proto, application/grpc;...: but not application/grpc-web. */
function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || !value.startsWith('application/grpc')) return false;
  const next = value.charCodeAt(16);
  return Number.isNaN(next) || next === 0x2b /* + */ || next === 0x3b /* ; */;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

export class H2Server {
  readonly #log: Logger;
  readonly #methods = new Map<string, RegisteredMethod>();
  readonly #metrics: GrpcServerMetrics;
  readonly #services = new Set<string>();
  readonly #receiveBytesMax: number;
  readonly #keepalive: KeepaliveOptions;
  readonly #tls: TlsOptions | undefined;
  readonly #tlsCheck: ((socket: TLSSocket) => Promise<void>) | undefined;
  readonly #onTlsReject: (socket: TLSSocket, err: Error) => void;
  readonly #onTlsServer: ((server: TlsServer) => void) | undefined;
  readonly #h2: http2.Http2Server;
  readonly #h2Compat: http2.Http2Server;
  readonly #h1: http.Server;
  readonly #listeners: NetServer[] = [];
  readonly #fronts: AuthorityFixListener[] = [];
  readonly #authorityFront: boolean;
  readonly #boundPorts: number[] = [];
  readonly #sessions = new Map<Http2Session, SessionGuard>();
  /** HTTP/1 connections and how many requests each has in flight. */
  readonly #h1Sockets = new Map<Socket, number>();
  #httpHandler: HttpHandler;
  #closing = false;
  #onIdle: (() => void) | null = null;

  constructor(services: readonly H2ServiceRegistration[], options: H2ServerOptions) {
    this.#log = options.log;
    this.#receiveBytesMax = options.requestBytesMax + grpcOverheadBytes;
    this.#keepalive = {
      intervalMs: options.keepaliveIntervalMs,
      timeoutMs: options.keepaliveTimeoutMs,
      minTimeMs: options.keepaliveMinTimeMs,
      permitWithoutStream: options.keepalivePermitWithoutStream ?? false,
    };
    this.#tls = options.tls;
    this.#tlsCheck = options.tlsCheck;
    this.#onTlsServer = options.onTlsServer;
    this.#onTlsReject = options.onTlsReject ?? ((_socket, err) => this.#log.debug('rejected TLS connection', { error: err.message }));
    this.#authorityFront = options.authorityFront ?? false;
    this.#httpHandler = options.httpHandler ?? notFound;
    this.#metrics = options.metrics ?? noopGrpcMetrics;
    for (const s of services) this.#register(s);
    this.#h2 = http2.createServer({
      settings: {
        maxConcurrentStreams: Math.min(options.maxConcurrentStreams, concurrentStreamsMax),
        initialWindowSize: streamWindowBytes,
      },
      maxSessionMemory: sessionMemoryMegabytes,
    });
    this.#h2.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.#h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]) =>
      this.#onStream(stream, headers, flags, raw));
    // Never listens: it only turns non-gRPC HTTP/2 streams into (req, res) for the HTTP handler.
    this.#h2Compat = http2.createServer();
    this.#h2Compat.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => this.#httpHandler(req, res));
    this.#h1 = http.createServer((req, res) => this.#onHttp1Request(req, res));
    this.#h1.timeout = http1IdleTimeoutMs;
  }

  get boundPorts(): readonly number[] {
    return this.#boundPorts;
  }

  /** Plugs in the gateway/health/metrics handler once it exists. */
  setHttpHandler(handler: HttpHandler): void {
    this.#httpHandler = handler;
  }

  async listen(urls: readonly URL[]): Promise<void> {
    for (const url of urls) {
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') throw new Error(`unsupported client URL scheme ${JSON.stringify(url.protocol)} in ${url.href}`);
      if (secure && this.#tls === undefined) throw new Error(`client URL ${url.href} needs TLS certificates`);
      if (!secure && this.#authorityFront) {
        await this.#listenThroughAuthorityFront(url);
        continue;
      }
      const listener = createClientListener({
        ...(secure && this.#tls !== undefined ? { tls: this.#tls, onReject: this.#onTlsReject } : {}),
        ...(secure && this.#tlsCheck !== undefined ? { checkTls: this.#tlsCheck } : {}),
        prefaceTimeoutMs,
        onConnection: (socket, protocol) => this.#onConnection(socket, protocol),
      });
      if (secure) this.#onTlsServer?.(listener as TlsServer);
      const port = await listenOnUrl(listener, url);
      this.#listeners.push(listener);
      this.#boundPorts.push(port);
      const address = `${url.hostname}:${port}`;
      if (secure) this.#log.info('serving client traffic securely', { address });
      else this.#log.info('serving client traffic insecurely; this is strongly discouraged!', { address });
    }
  }

  /**
   * Stops accepting connections, sends GOAWAY so clients open no new calls, lets in-flight calls and HTTP
   * requests finish until `graceMs`, then cuts what is left. Resolves once every connection is closed.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const listenersClosed = [
      ...this.#listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))),
      ...this.#fronts.map((f) => f.close({ graceMs })),
    ];
    for (const session of this.#sessions.keys()) session.close();
    for (const [socket, inFlight] of this.#h1Sockets) if (inFlight === 0) socket.end();
    if (!this.#idle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#onIdle = null;
          resolve();
        }, graceMs);
        this.#onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.#onIdle = null;
    await this.#destroyAll();
    await Promise.all(listenersClosed);
  }

  #idle(): boolean {
    return this.#sessions.size === 0 && this.#h1Sockets.size === 0;
  }

  #checkIdle(): void {
    if (this.#onIdle !== null && this.#idle()) this.#onIdle();
  }

  async #destroyAll(): Promise<void> {
    const closed: Promise<void>[] = [];
    for (const session of this.#sessions.keys()) {
      closed.push(new Promise((resolve) => session.once('close', resolve)));
      session.destroy();
    }
    for (const socket of this.#h1Sockets.keys()) {
      closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
      socket.destroy();
    }
    await Promise.all(closed);
  }

  #register(registration: H2ServiceRegistration): void {
    for (const [name, def] of Object.entries(registration.definition)) {
      const service = def.path.slice(1, def.path.lastIndexOf('/'));
      assert(def.path.startsWith('/') && service.length > 0, `bad gRPC method path ${def.path}`);
      assert(!this.#methods.has(def.path), `gRPC method ${def.path} registered twice`);
      this.#services.add(service);
      const handler = registration.implementation[name];
      if (handler === undefined) continue;
      const kind = methodKind(def);
      this.#methods.set(def.path, {
        path: def.path,
        kind,
        metrics: this.#metrics.method({ ...splitMethodPath(def.path), type: grpcTypeOf(kind) }),
        deserialize: (bytes) => def.requestDeserialize(bytes),
        serialize: (value) => def.responseSerialize(value as never),
        handler,
        log: this.#log,
      });
    }
  }

  /**
   * Plaintext URLs are accepted by the authority front: Go clients of etcd may send an :authority that
   * Node's HTTP/2 refuses; the front repairs it (or hands the socket over untouched) and passes every
   * connection on, HTTP/1.1 ones marked with alpnProtocol = false.
   */
  async #listenThroughAuthorityFront(url: URL): Promise<void> {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const sink = {
      injectConnection: (connection: Duplex): void => {
        const http1 = (connection as Duplex & { alpnProtocol?: string | false }).alpnProtocol === false;
        this.#onConnection(connection as Socket, http1 ? 'http/1.1' : 'h2');
      },
    };
    const front = await listenWithAuthorityFix(sink, { host, port: url.port === '' ? 2379 : Number(url.port) });
    this.#fronts.push(front);
    const address = front.address();
    const port = typeof address === 'object' && address !== null ? address.port : Number(url.port);
    this.#boundPorts.push(port);
    this.#log.info('serving client traffic insecurely; this is strongly discouraged!', { address: `${url.hostname}:${port}` });
  }

  #onConnection(socket: Socket, protocol: ClientProtocol): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    if (protocol === 'h2') {
      this.#h2.emit('connection', socket);
      return;
    }
    this.#h1Sockets.set(socket, 0);
    socket.once('close', () => {
      this.#h1Sockets.delete(socket);
      this.#checkIdle();
    });
    this.#h1.emit('connection', socket);
    socket.resume();
  }

  #onSession(session: ServerHttp2Session): void {
    const guard = new SessionGuard(session, this.#keepalive);
    this.#sessions.set(session, guard);
    session.on('error', (err) => this.#log.debug('client HTTP/2 session error', { error: String(err) }));
    session.once('close', () => {
      this.#sessions.delete(session);
      this.#checkIdle();
    });
    session.once('connect', () => {
      if (!session.destroyed) session.setLocalWindowSize(connectionWindowBytes);
    });
    if (this.#closing) session.close();
  }

  #onHttp1Request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket;
    this.#h1Sockets.set(socket, (this.#h1Sockets.get(socket) ?? 0) + 1);
    if (this.#closing) res.shouldKeepAlive = false;
    res.once('close', () => {
      const left = (this.#h1Sockets.get(socket) ?? 1) - 1;
      if (!this.#h1Sockets.has(socket)) return;
      this.#h1Sockets.set(socket, left);
      if (this.#closing && left === 0) socket.end();
    });
    this.#httpHandler(req, res);
  }

  #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
    if (!isGrpcContentType(headers['content-type'])) {
      this.#h2Compat.emit('stream', stream, headers, flags, raw);
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.#methods.get(path);
    if (method === undefined) {
      refuseStream(stream, { code: GrpcCode.Unimplemented, details: this.#unknownMethodText(path) });
      return;
    }
    const guard = stream.session === undefined ? undefined : this.#sessions.get(stream.session);
    if (guard === undefined) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const encodingHeader = single(headers['grpc-encoding']);
    const encoding = parseEncoding(encodingHeader);
    if (encoding === undefined) {
      const text = `grpc: Decompressor is not installed for grpc-encoding ${JSON.stringify(encodingHeader)}`;
      refuseStream(stream, { code: GrpcCode.Unimplemented, details: text });
      return;
    }
    let timeoutMs = Infinity;
    try {
      const timeout = single(headers['grpc-timeout']);
      if (timeout !== undefined) timeoutMs = parseGrpcTimeout(timeout);
    } catch (err) {
      assert(err instanceof GrpcStatusError, 'parseGrpcTimeout throws only GrpcStatusError');
      refuseStream(stream, { code: err.code, details: err.details });
      return;
    }
    const call = new GrpcCall(stream, headers, {
      receiveBytesMax: this.#receiveBytesMax, encoding, timeoutMs, observer: guard, metrics: method.metrics,
    });
    serveCall(call, method);
  }

  /** Go's texts: "unknown service etcdserverpb.Foo", "unknown method Bar for service etcdserverpb.KV". */
  #unknownMethodText(path: string): string {
    const name = path.startsWith('/') ? path.slice(1) : path;
    const slash = name.lastIndexOf('/');
    if (slash < 0) return `malformed method name: ${JSON.stringify(path)}`;
    const service = name.slice(0, slash);
    const method = name.slice(slash + 1);
    if (!this.#services.has(service)) return `unknown service ${service}`;
    return `unknown method ${method} for service ${service}`;
  }
}
