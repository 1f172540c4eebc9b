/** Shared by the authority front's tests and benchmark: a tiny gRPC responder and a raw HTTP/2 client. */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { KVClient, RangeRequest, RangeResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { clientPreface, FrameFlag, FrameType, writeFrameHeader } from './h2-frames.js';

export interface SeenRequest {
  readonly path: string;
  readonly authority: string | undefined;
  readonly headers: http2.IncomingHttpHeaders;
}

export interface Responder {
  readonly server: http2.Http2Server;
  readonly seen: SeenRequest[];
}

/** The answer to any Range: one key-value, `v-<key>`, at revision 7. */
export function rangeAnswer(request: RangeRequest): RangeResponse {
  return RangeResponse.fromPartial({
    header: { clusterId: 1n, memberId: 2n, revision: 7n, raftTerm: 1n },
    kvs: [{ key: request.key, value: Buffer.from(`v-${request.key.toString()}`), createRevision: 5n, modRevision: 6n, version: 1n }],
    count: 1n,
  });
}

/** The gRPC message (5-octet prefix + RangeResponse) answering a gRPC-framed RangeRequest `body`. */
export function rangeReply(body: Buffer): Buffer {
  const request = RangeRequest.decode(body.subarray(5));
  const response = Buffer.from(RangeResponse.encode(rangeAnswer(request)).finish());
  const message = Buffer.alloc(5 + response.length);
  message.writeUInt32BE(response.length, 1);
  response.copy(message, 5);
  return message;
}

/**
 * A node:http2 server (never listening itself) answering /etcdserverpb.KV/Range as etcd would, any
 * other HTTP/2 path with an empty 200, and HTTP/1.1 with "ok <url>". It uses the compatibility API
 * because with allowHTTP1 that is the only one HTTP/1 requests arrive on (and mixing it with 'stream'
 * handlers answers HTTP/2 streams twice).
 */
export function startResponder(): Responder {
  // @types/node lists allowHTTP1 for secure servers only; Node honours it for plain ones too.
  const server = http2.createServer({ allowHTTP1: true } as http2.ServerOptions);
  const seen: SeenRequest[] = [];
  server.on('request', (req, res) => {
    if (req.httpVersionMajor !== 2) {
      res.end(`ok ${req.url}`);
      return;
    }
    const path = req.headers[':path'] ?? '';
    seen.push({ path, authority: req.headers[':authority'], headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (path !== '/etcdserverpb.KV/Range') {
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/grpc' });
      res.addTrailers({ 'grpc-status': '0' });
      res.end(rangeReply(Buffer.concat(chunks)));
    });
  });
  return { server, seen };
}

export function kvClient(port: number, authority?: string): KVClient {
  const options = authority === undefined ? {} : { 'grpc.default_authority': authority };
  return new KVClient(`127.0.0.1:${port}`, credentials.createInsecure(), options);
}

export function range(client: KVClient, key: string): Promise<RangeResponse> {
  return new Promise((resolve, reject) => {
    client.range(RangeRequest.fromPartial({ key: Buffer.from(key) }), (err: ServiceError | null, res) =>
      err ? reject(err) : resolve(res));
  });
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  writeFrameHeader(out, 0, { length: payload.length, type, flags, streamId });
  payload.copy(out, 9);
  return out;
}

export interface ReceivedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** A byte-level HTTP/2 client: sends what the test says, acknowledges SETTINGS, records frames. */
export class RawH2Client {
  readonly socket: net.Socket;
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<void>;
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  readonly #ackSettings: boolean;

  constructor(port: number, options: { ackSettings?: boolean } = {}) {
    this.#ackSettings = options.ackSettings ?? true;
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('error', () => {});
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    this.socket.write(Buffer.concat([clientPreface, frame(FrameType.Settings, 0, 0)]));
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Resolves once a received frame satisfies `match`; rejects after `timeoutMs`. */
  async waitFor(match: (f: ReceivedFrame) => boolean, timeoutMs = 5000): Promise<ReceivedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0 || this.socket.destroyed) throw new Error('raw h2 client: frame not received');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #receive(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      const f: ReceivedFrame = {
        type: this.#buffer[3]!, flags: this.#buffer[4]!, streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buffer.subarray(9, 9 + length)),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.frames.push(f);
      const settings = f.type === FrameType.Settings && (f.flags & FrameFlag.Ack) === 0;
      if (settings && this.#ackSettings && !this.socket.destroyed) {
        this.socket.write(frame(FrameType.Settings, FrameFlag.Ack, 0));
      }
    }
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Polls `condition` until it holds or `timeoutMs` passes (tests never sleep a fixed time). */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
