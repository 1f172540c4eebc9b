// A bidirectional gRPC stream over node:http2, without grpc-js: the fan-out and keep-alive workloads
// receive tens of thousands of messages a second, and grpc-js costs far more per message than the
// servers do, so the load generator would measure itself. Here a message costs its protobuf decode and a
// few buffer slices. Clear-text HTTP/2 only (the bench servers listen on http://127.0.0.1).

import http2, { type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';

/** Largest message accepted from a server (etcd's default --max-request-bytes is 1.5 MiB; responses fit). */
const MESSAGE_BYTES_MAX = 16 * 1024 * 1024;

export interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
}

export interface Decoder<T> {
  decode(bytes: Uint8Array): T;
}

/** One HTTP/2 connection to a server's client URL. */
export function connect(endpoint: string): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 4 * 1024 * 1024 } });
    session.once('connect', () => {
      session.setLocalWindowSize(16 * 1024 * 1024);
      resolve(session);
    });
    session.once('error', reject);
  });
}

export class GrpcStream<Req, Res> {
  readonly #stream: ClientHttp2Stream;
  readonly #encoder: Codec<Req>;
  #pending: Buffer = Buffer.alloc(0);
  error: Error | undefined;
  ended = false;

  constructor(session: ClientHttp2Session, options: { path: string; encoder: Codec<Req>; decoder: Decoder<Res>; onMessage: (m: Res) => void }) {
    this.#encoder = options.encoder;
    this.#stream = session.request({
      ':method': 'POST', ':path': options.path, 'content-type': 'application/grpc', te: 'trailers',
    });
    this.#stream.on('data', (chunk: Buffer) => {
      for (const bytes of this.#frames(chunk)) options.onMessage(options.decoder.decode(bytes));
    });
    this.#stream.on('trailers', (t) => {
      const status = Number(t['grpc-status'] ?? 0);
      if (status !== 0) this.error = new Error(`grpc status ${status}: ${String(t['grpc-message'] ?? '')}`);
    });
    this.#stream.on('error', (err) => {
      this.error = err;
    });
    this.#stream.on('close', () => {
      this.ended = true;
    });
  }

  write(message: Req): void {
    const body = this.#encoder.encode(message).finish();
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    this.#stream.write(frame);
  }

  close(): void {
    this.#stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Splits the byte stream into message bodies (5-byte prefix: compressed flag, big-endian length). */
  *#frames(chunk: Buffer): Generator<Buffer> {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    let at = 0;
    while (buf.length - at >= 5) {
      if (buf[at] !== 0) throw new Error('compressed gRPC messages are not supported');
      const len = buf.readUInt32BE(at + 1);
      if (len > MESSAGE_BYTES_MAX) throw new Error(`gRPC message of ${len} bytes`);
      if (buf.length - at - 5 < len) break;
      yield buf.subarray(at + 5, at + 5 + len);
      at += 5 + len;
    }
    buf = buf.subarray(at);
    this.#pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf);
  }
}
