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
import type { ClientHttp2Session, Http2Server, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { assert } from '../../base/assert.js';

export interface ConnectionSettings {
  readonly streamWindowBytes: number;
  readonly connectionWindowBytes: number;
  readonly incomingConnectionsMax: number;
  /** nghttp2 refuses new streams past this much buffered memory per session (it counts unsent data). */
  readonly sessionMemoryMb: number;
}

export interface PeerListener {
  readonly server: Http2Server;
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
  if (url.protocol === 'https:') {
    throw new Error(`peer URL ${url.href}: TLS peer URLs are not supported yet`);
  }
  if (url.protocol !== 'http:') throw new Error(`peer URL ${url.href}: scheme must be http`);
  if (url.hostname === '') throw new Error(`peer URL ${url.href}: no host`);
}

function hostOf(url: URL): string {
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function portOf(url: URL): number {
  return url.port === '' ? 80 : Number(url.port);
}

export async function listenPeer(url: URL, settings: ConnectionSettings, handlers: ListenHandlers): Promise<PeerListener> {
  checkPeerUrl(url);
  const server = http2.createServer({
    settings: { initialWindowSize: settings.streamWindowBytes, enablePush: false },
    maxSessionMemory: settings.sessionMemoryMb,
  });
  server.maxConnections = settings.incomingConnectionsMax;
  server.on('session', (session) => {
    // A server session is connected by the time it is announced.
    session.setLocalWindowSize(settings.connectionWindowBytes);
    handlers.onSession(session);
  });
  server.on('stream', handlers.onStream);
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
  const session = http2.connect(url.origin, {
    settings: { initialWindowSize: settings.streamWindowBytes, enablePush: false },
    maxSessionMemory: settings.sessionMemoryMb,
  });
  session.on('connect', () => {
    // 'connect' is emitted on a later tick: the session may have been destroyed in between.
    if (!session.destroyed) session.setLocalWindowSize(settings.connectionWindowBytes);
  });
  return session;
}
