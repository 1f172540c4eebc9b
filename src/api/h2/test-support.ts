/**
 * Shared by this directory's tests: a server on a free port, a raw HTTP/2 gRPC client for what real
 * clients never send (malformed frames, compressed flags, floods of pings), and condition waits.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Logger } from '../../base/logger.js';
import { decodeGrpcMessage } from './grpc-wire.js';
import { H2Server, type H2ServerOptions, type H2ServiceRegistration } from './h2-server.js';

export const quietLog: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quietLog };

/** A log that keeps error lines, so a test can assert that nothing unexpected was logged. */
export function recordingLog(): Logger & { errors: string[] } {
  const errors: string[] = [];
  const log: Logger & { errors: string[] } = {
    errors,
    debug() {},
    info() {},
    warn() {},
    error(msg, fields) {
      errors.push(`${msg} ${JSON.stringify(fields ?? {})}`);
    },
    child: () => log,
  };
  return log;
}

export const defaultTestOptions = {
  urls: [new URL('http://127.0.0.1:0')],
  requestBytesMax: 1.5 * 1024 * 1024,
  maxConcurrentStreams: 1000,
  keepaliveMinTimeMs: 5000,
  keepaliveIntervalMs: 2 * 3600 * 1000,
  keepaliveTimeoutMs: 20_000,
  log: quietLog,
} as const;

export interface Started {
  readonly server: H2Server;
  readonly port: number;
  /** host:port, as grpc-js and etcdctl take it. */
  readonly target: string;
}

export async function startServer(services: readonly H2ServiceRegistration[], overrides: Partial<H2ServerOptions> = {}): Promise<Started> {
  const options: H2ServerOptions = { ...defaultTestOptions, ...overrides };
  const server = new H2Server(services, options);
  await server.listen(options.urls);
  const port = server.boundPorts[0];
  if (port === undefined) throw new Error('server bound no port');
  return { server, port, target: `127.0.0.1:${port}` };
}

export async function waitFor(condition: () => boolean, options: { what: string; timeoutMs?: number }): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Frames a payload as gRPC does, with a chosen compressed flag. */
export function grpcFrame(payload: Uint8Array, flag = 0): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(payload.length, 1);
  return Buffer.concat([prefix, payload]);
}

export interface RawResult {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders;
  /** The response body, unparsed. */
  readonly body: Buffer;
  /** grpc-status and the decoded grpc-message, from the trailers or a trailers-only response. */
  readonly status: number;
  readonly message: string;
}

/** One POST on an open session, the body written as given (in separate writes), read to the end. */
export function rawCall(session: ClientHttp2Session, options: { path: string; body: readonly Buffer[]; headers?: OutgoingHttpHeaders }): Promise<RawResult> {
  const req = session.request({
    ':method': 'POST', ':path': options.path, 'content-type': 'application/grpc', te: 'trailers', ...options.headers,
  });
  const result = rawResponse(req);
  for (const b of options.body) req.write(b);
  req.end();
  return result;
}

/** Collects a raw gRPC response: headers, body, trailers and the status wherever it came. */
export function rawResponse(req: ClientHttp2Stream): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => { headers = h; });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      const source = trailers['grpc-status'] !== undefined ? trailers : headers;
      resolve({
        headers, trailers, body: Buffer.concat(chunks),
        status: Number(source['grpc-status'] ?? -1),
        message: decodeGrpcMessage(String(source['grpc-message'] ?? '')),
      });
    });
  });
}

export function connect(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

export function closeSession(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) resolve();
    else session.close(() => resolve());
  });
}
