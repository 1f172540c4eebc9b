/**
 * The client port's sockets: HTTP/2 and HTTP/1.1 on one port, as etcd's cmux serves them.
 *
 * Node 20's http2.createServer({ allowHTTP1: true }) only falls back to HTTP/1 through TLS ALPN, never on
 * a plaintext port, so plaintext connections are told apart here by their first bytes: an HTTP/2 client
 * with prior knowledge opens with the fixed connection preface, an HTTP/1 client with a request line.
 * The bytes read to decide are put back (unshift) before the socket is handed on; Node's HTTP/2 session
 * replays a socket's buffered bytes into nghttp2, and the HTTP/1 parser reads them as ordinary data.
 * With TLS, ALPN decides (h2 or http/1.1) and no byte is read here.
 */
import net, { type Socket } from 'node:net';
import tls, { type TlsOptions } from 'node:tls';

/** RFC 9113 §3.4: the client connection preface. */
const http2Preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export type ClientProtocol = 'h2' | 'http/1.1';

export interface ClientListenerOptions {
  /** When given, the listener speaks TLS and offers h2 and http/1.1 by ALPN. */
  readonly tls?: TlsOptions;
  /** A connection that has not shown which protocol it speaks after this long is dropped. */
  readonly prefaceTimeoutMs: number;
  /**
   * TLS only: checks a connection after its handshake (etcd's post-handshake checks: client SAN, CRL);
   * a rejection destroys the socket and is reported to onReject.
   */
  readonly checkTls?: (socket: tls.TLSSocket) => Promise<void>;
  /** TLS only: a failed handshake or a failed check (etcd logs "rejected connection"). */
  readonly onReject?: (socket: tls.TLSSocket, err: Error) => void;
  /** Receives each connection once its protocol is known. */
  readonly onConnection: (socket: Socket, protocol: ClientProtocol) => void;
}

/**
 * Decides on the fewest bytes possible: the first byte that differs from the preface means HTTP/1, all 24
 * matching means HTTP/2. Returns undefined while undecided.
 */
export function sniffProtocol(head: Buffer): ClientProtocol | undefined {
  const n = Math.min(head.length, http2Preface.length);
  for (let i = 0; i < n; i++) if (head[i] !== http2Preface[i]) return 'http/1.1';
  return n === http2Preface.length ? 'h2' : undefined;
}

/** Reads just enough of a plaintext connection to know its protocol, then gives the bytes back. */
function sniff(socket: Socket, options: ClientListenerOptions): void {
  let head: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const protocol = sniffProtocol(head);
    if (protocol === undefined) return;
    socket.off('data', onData);
    socket.off('timeout', onTimeout);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(head);
    options.onConnection(socket, protocol);
  };
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.on('data', onData);
  socket.on('timeout', onTimeout);
  socket.setTimeout(options.prefaceTimeoutMs);
}

/**
 * The listening server for one client URL. Sockets still being sniffed (or in a TLS handshake) belong to
 * the returned server until onConnection takes them.
 */
export function createClientListener(options: ClientListenerOptions): net.Server {
  if (options.tls === undefined) {
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.on('error', dropSocket);
      sniff(socket, options);
    });
    return server;
  }
  const server = tls.createServer({ ...options.tls, ALPNProtocols: ['h2', 'http/1.1'], handshakeTimeout: options.prefaceTimeoutMs });
  const handOn = (socket: tls.TLSSocket): void => {
    // HTTP/2 over TLS requires ALPN (RFC 9113 §3.2); a client that negotiated nothing speaks HTTP/1.
    if (!socket.destroyed) options.onConnection(socket, socket.alpnProtocol === 'h2' ? 'h2' : 'http/1.1');
  };
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    socket.on('error', dropSocket);
    socket.setNoDelay(true);
    if (options.checkTls === undefined) {
      handOn(socket);
      return;
    }
    options.checkTls(socket).then(() => handOn(socket), (err: unknown) => {
      options.onReject?.(socket, err instanceof Error ? err : new Error(String(err)));
      socket.destroy();
    });
  });
  server.on('tlsClientError', (err, socket) => {
    options.onReject?.(socket, err);
    socket.destroy();
  });
  return server;
}

function dropSocket(this: Socket): void {
  this.destroy();
}

/** Listens on a client URL (http://host:port; port 0 picks a free one) and returns the bound port. */
export function listenOnUrl(server: net.Server, url: URL): Promise<number> {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 2379 : Number(url.port);
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
