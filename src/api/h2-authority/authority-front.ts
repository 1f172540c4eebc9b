/**
 * A TCP front for any node:http2 server that lets Go gRPC clients with a malformed `:authority` in.
 *
 * Why a front at all (checked on Node 20.20.2, nghttp2 1.61.0):
 * - nghttp2 refuses a request whose `:authority` has characters outside RFC 3986's authority set with
 *   RST_STREAM(PROTOCOL_ERROR), inside nghttp2, before Node emits 'stream' (see authority.ts). The only
 *   nghttp2 switch that skips this is nghttp2_option_set_no_http_messaging; Node never calls it.
 * - Node's http2 options reach nghttp2 only through updateOptionsBuffer (lib/internal/http2/util.js):
 *   maxDeflateDynamicTableSize, maxReservedRemoteStreams, maxSendHeaderBlockLength,
 *   peerMaxConcurrentStreams, paddingStrategy, maxHeaderListPairs, maxOutstandingPings,
 *   maxOutstandingSettings, maxSessionMemory, maxSettings. None touches header validation; `settings`
 *   are SETTINGS values; Http2Options (src/node_http2.cc) hard-codes no_closed_streams and
 *   no_auto_window_update only. Node 20 has no `strictFieldWhitespaceValidation` (later Nodes; it only
 *   relaxes whitespace anyway).
 * - --security-revert knows only CVE-2023-46809 and CVE-2024-27980 here (`strings` on the binary;
 *   CVE-2019-9512 is refused); --insecure-http-parser is llhttp (HTTP/1) only; NODE_OPTIONS carries
 *   the same flags. The nghttp2 symbols are exported by the binary, but the session pointer is not.
 *
 * How: we accept TCP ourselves. A connection that does not open with the HTTP/2 client preface is
 * handed to the target untouched, marked `alpnProtocol = false`: without that mark Node's plain-TCP
 * http2 server never takes its allowHTTP1 path (connectionListener only checks alpnProtocol). On
 * HTTP/2 we announce SETTINGS ourselves at once (clients such as grpc-go send no request before the
 * server's SETTINGS), then read the client's frames until its first header block:
 * - valid authority (the common case): once the client has acknowledged our SETTINGS we pause the
 *   socket, unshift() every byte read so far (minus that ACK) and hand the real socket to the target.
 *   Node's Http2Session feeds bytes already buffered on the socket to nghttp2 (socket.read() +
 *   handle.receive() on the next tick, lib/internal/http2/core.js), and then nghttp2 reads the socket
 *   natively: no JavaScript on the path afterwards. The server's own SETTINGS follow ours; the client
 *   acknowledges both, the first ACK being ours and dropped.
 * - malformed authority (or a frame that makes the first request unknowable, e.g. an early PING): the
 *   target gets a Duplex that runs the client's bytes through ClientStreamFixer (Node wraps a non-socket
 *   Duplex in JSStreamSocket); server-to-client bytes are written straight to the socket.
 */
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as http2 from 'node:http2';
import { Duplex } from 'node:stream';
import { formatHostPort } from './authority.js';
import { ClientStreamFixer, type FixerLimits } from './client-stream-fixer.js';
import { clientPreface, goawayFrame, H2ConnectionError, settingsFrame } from './h2-frames.js';

/** Anything that takes connections the way grpc-js's Server.createConnectionInjector() result does. */
export interface ConnectionSink {
  injectConnection(connection: Duplex): void;
}

export type AuthorityFixTarget = http2.Http2Server | ConnectionSink;

export interface AuthorityFrontLimits extends FixerLimits {
  /** Bytes held back while a connection is undecided between the direct and the fixing path. */
  readonly undecidedBytesMax: number;
  /** How long a valid first request may wait for the ACK of our SETTINGS before we fix instead. */
  readonly settingsAckWaitMs: number;
}

export const defaultAuthorityFrontLimits: AuthorityFrontLimits = {
  headerBlockBytesMax: 256 * 1024,
  headerListBytesMax: 1024 * 1024,
  tableBytesMax: 64 * 1024,
  undecidedBytesMax: 512 * 1024,
  settingsAckWaitMs: 2000,
};

export interface AuthorityFixOptions {
  readonly host: string;
  /** 0 picks a free port; read it back with address(). */
  readonly port: number;
  /**
   * The SETTINGS the target server announces (as given to http2.createServer). We announce them
   * first, so the client sees the same values before and after the server's own SETTINGS.
   */
  readonly settings?: http2.Settings;
  readonly limits?: Partial<AuthorityFrontLimits>;
  /** Malformed client input and unexpected failures; the connection is closed either way. */
  readonly onConnectionError?: (err: Error) => void;
}

export interface AuthorityFixStats {
  /** HTTP/2 connections handed over as the raw socket. */
  readonly direct: number;
  /** HTTP/2 connections running through the fixer. */
  readonly fixed: number;
  readonly http1: number;
  /** Connections closed for malformed input. */
  readonly rejected: number;
}

type Path = 'direct' | 'fixed' | 'http1';

interface Counters {
  direct: number;
  fixed: number;
  http1: number;
  rejected: number;
}

interface FrontContext {
  readonly deliver: (connection: Duplex) => void;
  readonly http2Server: http2.Http2Server | undefined;
  readonly limits: AuthorityFrontLimits;
  readonly settings: Buffer;
  readonly counters: Counters;
  readonly onConnectionError: (err: Error) => void;
}

export async function listenWithAuthorityFix(
  target: AuthorityFixTarget,
  options: AuthorityFixOptions,
): Promise<AuthorityFixListener> {
  const listener = new AuthorityFixListener(target, options);
  await listener.listen(options);
  return listener;
}

export class AuthorityFixListener {
  readonly server: net.Server;
  readonly #connections = new Set<FrontConnection>();
  readonly #counters: Counters = { direct: 0, fixed: 0, http1: 0, rejected: 0 };
  readonly #sessions = new WeakMap<FrontConnection, http2.ServerHttp2Session>();
  readonly #target: AuthorityFixTarget;
  #delivering: FrontConnection | undefined;
  readonly #onSession = (session: http2.ServerHttp2Session): void => {
    if (this.#delivering !== undefined) this.#sessions.set(this.#delivering, session);
  };

  constructor(target: AuthorityFixTarget, options: AuthorityFixOptions) {
    this.#target = target;
    const limits = { ...defaultAuthorityFrontLimits, ...options.limits };
    // A server announcing a bigger HPACK table lets clients use it; so must our decoder.
    const tableBytesMax = Math.max(limits.tableBytesMax, options.settings?.headerTableSize ?? 0);
    const context: FrontContext = {
      deliver: (connection) => deliver(target, connection),
      http2Server: isHttp2Server(target) ? target : undefined,
      limits: { ...limits, tableBytesMax },
      settings: settingsFrame(http2.getPackedSettings(options.settings ?? {})),
      counters: this.#counters,
      onConnectionError: options.onConnectionError ?? (() => {}),
    };
    if (isHttp2Server(target)) target.on('session', this.#onSession);
    this.server = net.createServer({ noDelay: true }, (socket) => {
      const connection = new FrontConnection(socket, context, (c, run) => this.#handOver(c, run));
      this.#connections.add(connection);
      socket.once('close', () => this.#connections.delete(connection));
    });
  }

  listen(options: { host: string; port: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(options.port, options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  address(): AddressInfo {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('authority front: not listening');
    return address;
  }

  get stats(): AuthorityFixStats {
    return { ...this.#counters };
  }

  /**
   * Stops accepting; closes undecided connections at once and asks HTTP/2 sessions to finish
   * (GOAWAY); whatever is still open after `graceMs` is destroyed. An http2.Http2Server target is
   * closed too (it emits 'close'); a ConnectionSink is left to its owner (grpc-js: injector.destroy()).
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (isHttp2Server(this.#target)) this.#target.off('session', this.#onSession);
    const open = [...this.#connections];
    for (const c of open) {
      const session = this.#sessions.get(c);
      if (session !== undefined && !session.closed) session.close();
      else if (!c.handedOver) c.destroy();
    }
    const timer = setTimeout(() => {
      for (const c of this.#connections) c.destroy();
    }, options.graceMs ?? 0);
    await Promise.all([closed, ...open.map((c) => c.closed)]);
    clearTimeout(timer);
    const target = this.#target;
    if (isHttp2Server(target)) {
      // Not listening by itself, it answers ERR_SERVER_NOT_RUNNING; closing still emits 'close'.
      await new Promise<void>((resolve) => target.close(() => resolve()));
    }
  }

  #handOver(connection: FrontConnection, run: () => void): void {
    this.#delivering = connection;
    try {
      run();
    } finally {
      this.#delivering = undefined;
    }
  }
}

function isHttp2Server(target: AuthorityFixTarget): target is http2.Http2Server {
  return !('injectConnection' in target);
}

function deliver(target: AuthorityFixTarget, connection: Duplex): void {
  if (isHttp2Server(target)) target.emit('connection', connection);
  else target.injectConnection(connection);
}

type HandOver = (connection: FrontConnection, run: () => void) => void;

/** One accepted TCP connection until it is handed over (and, on the fixing path, for its life). */
class FrontConnection {
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;
  readonly #context: FrontContext;
  readonly #handOver: HandOver;
  #state: 'preface' | 'undecided' | Path | 'failed' = 'preface';
  #prefaceMatched = 0;
  #prefaceChunks: Buffer[] = [];
  #fixer: ClientStreamFixer | undefined;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #ackTimer: NodeJS.Timeout | undefined;
  #pipe: FixedConnection | undefined;
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);

  constructor(socket: net.Socket, context: FrontContext, handOver: HandOver) {
    this.#socket = socket;
    this.#context = context;
    this.#handOver = handOver;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', this.#onData);
    socket.on('error', () => {}); // 'close' follows; the owner after hand-over adds its own handler
    socket.once('end', () => this.#onEnd());
    socket.once('close', () => this.#onClose());
  }

  get handedOver(): boolean {
    return this.#state === 'direct' || this.#state === 'fixed' || this.#state === 'http1';
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    this.#guard(() => {
      if (this.#state === 'preface') this.#matchPreface(chunk);
      else if (this.#state === 'undecided') this.#hold(this.#fixer!.push(chunk));
      else if (this.#state === 'fixed') this.#pipe!.forward(this.#fixer!.push(chunk));
      if (this.#state === 'undecided') this.#decide();
    });
  }

  /** Runs event-driven work: whatever it throws closes this connection, never the process. */
  #guard(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.#fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #matchPreface(chunk: Buffer): void {
    const n = Math.min(chunk.length, clientPreface.length - this.#prefaceMatched);
    const matches = chunk.compare(clientPreface, this.#prefaceMatched, this.#prefaceMatched + n, 0, n) === 0;
    if (!matches) {
      this.#prefaceChunks.push(chunk);
      this.#handOverHttp1();
      return;
    }
    this.#prefaceMatched += n;
    this.#prefaceChunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    if (this.#prefaceMatched < clientPreface.length) return;
    this.#socket.write(this.#context.settings);
    this.#fixer = new ClientStreamFixer({
      limits: this.#context.limits,
      fallbackAuthority: formatHostPort(this.#socket.localAddress ?? '127.0.0.1', this.#socket.localPort ?? 0),
      dropFirstSettingsAck: true,
    });
    this.#state = 'undecided';
    this.#hold([clientPreface]);
    this.#prefaceChunks = [];
    if (n < chunk.length) this.#hold(this.#fixer.push(chunk.subarray(n)));
  }

  #hold(out: Buffer[]): void {
    for (const b of out) {
      this.#held.push(b);
      this.#heldBytes += b.length;
    }
  }

  #decide(): void {
    const fixer = this.#fixer!;
    if (fixer.rewriting || fixer.sawOtherFrameFirst || this.#heldBytes > this.#context.limits.undecidedBytesMax) {
      this.#startFixing();
    } else if (fixer.headerBlocksDone > 0 && !fixer.settingsAckPending) {
      this.#handOverDirect();
    } else if (fixer.headerBlocksDone > 0 && this.#ackTimer === undefined) {
      this.#ackTimer = setTimeout(() => {
        if (this.#state === 'undecided') this.#guard(() => this.#startFixing());
      }, this.#context.limits.settingsAckWaitMs);
      this.#ackTimer.unref();
    }
  }

  #handOverDirect(): void {
    const bytes = Buffer.concat([...this.#held, ...this.#fixer!.heldBytes()]);
    this.#release('direct');
    this.#socket.unshift(bytes);
    this.#handOver(this, () => this.#context.deliver(this.#socket));
  }

  #handOverHttp1(): void {
    const bytes = Buffer.concat(this.#prefaceChunks);
    this.#prefaceChunks = [];
    this.#release('http1');
    this.#socket.unshift(bytes);
    // Node's plain-TCP http2 server serves HTTP/1.1 (allowHTTP1) only for sockets marked like this,
    // and it installs its HTTP/1 request classes on socket.server, which is ours unless we say otherwise.
    const marked = this.#socket as net.Socket & { alpnProtocol?: string | false; server?: unknown };
    marked.alpnProtocol = false;
    if (this.#context.http2Server !== undefined) marked.server = this.#context.http2Server;
    this.#handOver(this, () => this.#context.deliver(this.#socket));
    // The HTTP/1 server reads through 'data' events, which a paused socket would never emit.
    if (!this.#socket.destroyed) this.#socket.resume();
  }

  /** Stops reading for ourselves: bytes wait in the socket for the new owner. */
  #release(path: 'direct' | 'http1'): void {
    this.#socket.pause();
    this.#socket.off('data', this.#onData);
    this.#clearAckTimer();
    this.#state = path;
    this.#context.counters[path]++;
    this.#held = [];
    this.#fixer = undefined;
  }

  #startFixing(): void {
    this.#clearAckTimer();
    this.#state = 'fixed';
    this.#context.counters.fixed++;
    const pipe = new FixedConnection(this.#socket);
    this.#pipe = pipe;
    pipe.forward(this.#held);
    this.#held = [];
    this.#handOver(this, () => this.#context.deliver(pipe));
  }

  #onEnd(): void {
    if (this.#state === 'fixed') this.#pipe!.push(null);
    else if (this.#state === 'preface' || this.#state === 'undecided') this.#socket.destroy();
  }

  #onClose(): void {
    this.#clearAckTimer();
    this.#pipe?.destroy();
  }

  #clearAckTimer(): void {
    if (this.#ackTimer !== undefined) clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
  }

  #fail(err: Error): void {
    this.#context.onConnectionError(err);
    if (this.#state === 'failed') return;
    const ownsSocket = this.#state === 'preface' || this.#state === 'undecided';
    this.#state = 'failed';
    this.#context.counters.rejected++;
    this.#clearAckTimer();
    this.#socket.off('data', this.#onData);
    if (ownsSocket && err instanceof H2ConnectionError) {
      // Nobody else has written to the socket yet, so a GOAWAY cannot split another frame.
      this.#socket.end(goawayFrame(this.#fixer?.highestStreamId ?? 0, err.code));
      this.#socket.destroySoon();
      return;
    }
    this.#pipe?.destroy();
    this.#socket.destroy();
  }
}

/**
 * What the target sees of a connection on the fixing path: reads are the fixer's output, writes go
 * straight to the socket.
 */
class FixedConnection extends Duplex {
  readonly #socket: net.Socket;

  constructor(socket: net.Socket) {
    super({ readableHighWaterMark: 64 * 1024, allowHalfOpen: true });
    this.#socket = socket;
  }

  forward(chunks: readonly Buffer[]): void {
    let full = false;
    for (const chunk of chunks) full = !this.push(chunk) || full;
    if (full) this.#socket.pause();
  }

  override _read(): void {
    if (!this.#socket.destroyed) this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.#socket.write(chunk)) done();
    else this.#socket.once('drain', () => done());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, done: (err?: Error | null) => void): void {
    this.#socket.cork();
    let flushed = true;
    for (const { chunk } of chunks) flushed = this.#socket.write(chunk);
    this.#socket.uncork();
    if (flushed) done();
    else this.#socket.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.#socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#socket.destroy();
    done(err);
  }
}
