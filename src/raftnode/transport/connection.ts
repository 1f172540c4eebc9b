/**
 * The one place where peer connections are made, on both sides: listeners for --listen-peer-urls and the
 * client sessions that dial a peer's URL. TLS (https:// peer URLs, --peer-cert-file and friends) plugs in
 * here: createSecureServer / connect with the TLS options; nothing else in the transport knows the scheme.
 *
 * Why HTTP/2 in clear text (h2c) rather than HTTP/1.1, as etcd uses:
 * - one TCP connection per direction carries the long-lived message stream and any snapshot transfer as
 *   separate streams, with per-stream flow control, so a large snapshot neither needs a second connection
 *   nor stalls heartbeats behind it (frames of both streams interleave);
 * - PING frames are part of the protocol: they give the round-trip time per peer and detect a peer that
 *   stopped answering (SIGSTOP, cut link) without inventing link-heartbeat messages as etcd does;
 * - the receiver can refuse a stream with a status and headers while the connection survives.
 */
import http2 from 'node:http2';
import type { ClientHttp2Session, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { Server as NetServer } from 'node:net';
import tls, { type ConnectionOptions, type TLSSocket, type TlsOptions } from 'node:tls';
import { assert } from '../../base/assert.js';

/** A TLS handshake not finished within this is dropped. */
const handshakeTimeoutMs = 10_000;

/**
 * https:// peer URLs: certificates and the checks made once a handshake is done (CRL, allowed CN or
 * hostname, client SANs), which throw the reason to refuse the other side.
 */
export interface TlsRejection {
  readonly err: Error;
  readonly direction: 'incoming' | 'outgoing';
  /** The connection, while it can still be asked for the certificate it carried. */
  readonly socket?: TLSSocket;
  /** The peer's URL (outgoing) or address (incoming). */
  readonly remote: string;
}

export interface PeerTls {
  readonly server: TlsOptions;
  /** Options for each dial (read per dial, so renewed certificate files are picked up). */
  readonly clientOptions: () => ConnectionOptions;
  /** Lets the certificate of a listening server follow its files. */
  readonly keepCurrent?: (server: tls.Server) => void;
  readonly checkIncoming: (socket: TLSSocket) => Promise<void>;
  readonly checkOutgoing: (socket: TLSSocket) => void;
  /** A connection refused (failed handshake or failed check), either way. */
  readonly onReject: (rejection: TlsRejection) => void;
}

export interface ConnectionSettings {
  readonly streamWindowBytes: number;
  readonly connectionWindowBytes: number;
  readonly incomingConnectionsMax: number;
  /** nghttp2 refuses new streams past this much buffered memory per session (it counts unsent data). */
  readonly sessionMemoryMb: number;
  /** Needed to listen on or dial https:// URLs. */
  readonly tls?: PeerTls;
}

export interface PeerListener {
  /** The listening server (TCP, or TLS for https://); closing it stops accepting. */
  readonly server: NetServer;
  /** The URL actually bound: same as requested, with the port filled in when it was 0. */
  readonly url: URL;
}

export interface ListenHandlers {
  readonly onSession: (session: ServerHttp2Session) => void;
  readonly onStream: (stream: ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
  readonly onError: (err: Error) => void;
}

/** Throws for URLs the transport cannot serve or dial yet (expected at configuration time). */
export function checkPeerUrl(url: URL): void {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`peer URL ${url.href}: scheme must be http or https`);
  if (url.hostname === '') throw new Error(`peer URL ${url.href}: no host`);
}

function hostOf(url: URL): string {
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function portOf(url: URL): number {
  return url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
}

/**
 * The TLS front of an https:// listener: handshakes, runs the post-handshake checks, and hands accepted
 * sockets to the (never listening) HTTP/2 server.
 */
function tlsFront(h2: http2.Http2Server, settings: ConnectionSettings, peerTls: PeerTls): tls.Server {
  const front = tls.createServer({ ...peerTls.server, ALPNProtocols: ['h2'], handshakeTimeout: handshakeTimeoutMs });
  front.on('secureConnection', (socket: TLSSocket) => {
    socket.on('error', () => socket.destroy());
    socket.setNoDelay(true);
    peerTls.checkIncoming(socket).then(
      () => {
        if (!socket.destroyed && front.listening) h2.emit('connection', socket);
        else socket.destroy();
      },
      (err: unknown) => {
        peerTls.onReject({ socket, err: err instanceof Error ? err : new Error(String(err)), direction: 'incoming', remote: remoteOf(socket) });
        socket.destroy();
      },
    );
  });
  front.on('tlsClientError', (err, socket) => {
    peerTls.onReject({ socket, err, direction: 'incoming', remote: remoteOf(socket) });
    socket.destroy();
  });
  front.maxConnections = settings.incomingConnectionsMax;
  peerTls.keepCurrent?.(front);
  return front;
}

function remoteOf(socket: TLSSocket): string {
  return `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
}

export async function listenPeer(url: URL, settings: ConnectionSettings, handlers: ListenHandlers): Promise<PeerListener> {
  checkPeerUrl(url);
  if (url.protocol === 'https:' && settings.tls === undefined) {
    throw new Error(`cannot listen on TLS for ${url.host}: KeyFile and CertFile are not presented`);
  }
  const h2 = http2.createServer({
    settings: { initialWindowSize: settings.streamWindowBytes, enablePush: false },
    maxSessionMemory: settings.sessionMemoryMb,
  });
  h2.maxConnections = settings.incomingConnectionsMax;
  h2.on('session', (session) => {
    // A server session is connected by the time it is announced.
    session.setLocalWindowSize(settings.connectionWindowBytes);
    handlers.onSession(session);
  });
  h2.on('stream', handlers.onStream);
  const server: NetServer = url.protocol === 'https:' && settings.tls !== undefined ? tlsFront(h2, settings, settings.tls) : h2;
  await new Promise<void>((resolve, reject) => {
    const failed = (err: Error): void => reject(err);
    server.once('error', failed);
    server.listen(portOf(url), hostOf(url), () => {
      server.off('error', failed);
      resolve();
    });
  });
  server.on('error', handlers.onError);
  const address = server.address();
  assert(address !== null && typeof address === 'object', 'peer listener has no TCP address');
  const bound = new URL(url.href);
  bound.port = String(address.port);
  return { server, url: bound };
}

/** Starts dialling `url`; the session reports 'connect', 'error' and 'close' like any HTTP/2 session. */
export function dialPeer(url: URL, settings: ConnectionSettings): ClientHttp2Session {
  checkPeerUrl(url);
  const peerTls = url.protocol === 'https:' ? settings.tls : undefined;
  const session = http2.connect(url.origin, {
    settings: { initialWindowSize: settings.streamWindowBytes, enablePush: false },
    maxSessionMemory: settings.sessionMemoryMb,
    ...(peerTls !== undefined ? peerTls.clientOptions() : {}),
  });
  if (peerTls !== undefined) {
    session.once('error', (err: Error & { code?: string }) => {
      // Handshake failures only (verification, alerts), not the refused or reset connections of a peer that is down.
      if (/^ERR_(TLS|SSL)_|CERT|^DEPTH_ZERO|^SELF_SIGNED|^UNABLE_TO/.test(err.code ?? '')) {
        peerTls.onReject({ err, direction: 'outgoing', remote: url.origin });
      }
    });
  }
  session.on('connect', (_session, socket) => {
    // 'connect' is emitted on a later tick: the session may have been destroyed in between.
    if (session.destroyed) return;
    if (peerTls !== undefined) {
      try {
        peerTls.checkOutgoing(socket as TLSSocket);
      } catch (err) {
        peerTls.onReject({ socket: socket as TLSSocket, err: err as Error, direction: 'outgoing', remote: url.origin });
        session.destroy(err as Error);
        return;
      }
    }
    session.setLocalWindowSize(settings.connectionWindowBytes);
  });
  return session;
}
