/**
 * A TCP proxy on the peer links of a cluster, to cut and heal the links between chosen pairs of members.
 *
 * Each member advertises a proxy port as its peer URL and listens for peers on a port of its own; the proxy
 * forwards one to the other. A link between A and B is then every connection A opens to B's proxy port and
 * every one B opens to A's: etcd's peer transport (and ours) opens connections both ways, and either way a
 * connection carries messages in both directions, so a pair can only be cut by knowing who DIALED.
 *
 * The dialer is not in the bytes (and must not be: the proxy works for any binary), so it is found the
 * way `ss -p` does: the accepted socket's remote port is the dialer's local port; /proc/net/tcp maps it to
 * a socket inode, and the member whose /proc/<pid>/fd holds that inode dialed it. Linux only; a connection
 * whose dialer cannot be named is closed and counted, never forwarded, so a cut cannot leak.
 *
 * Two ways to cut:
 *  - 'drop': existing and new connections stay open but every byte is discarded, as on a network that
 *    loses packets; peers find out by their own timeouts. Healing closes those connections (their byte
 *    streams have holes) and the peers redial.
 *  - 'refuse': existing connections are reset, new ones are reset on accept, as from a host that is up
 *    but unreachable on that port.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type CutMode = 'drop' | 'refuse';

export const proxyLimits = {
  /** Connections per route; etcd opens a handful per peer pair, a redial loop must not grow without end. */
  connectionsPerRouteMax: 256,
} as const;

interface Route {
  readonly name: string;
  readonly server: Server;
  readonly listenPort: number;
  targetPort: number;
}

interface Link {
  readonly from: string;
  readonly to: string;
  readonly downstream: Socket;
  upstream: Socket | undefined;
  blackholed: boolean;
}

export interface ProxyStats {
  forwarded: number;
  refused: number;
  blackholed: number;
  unidentified: number;
  /** Connections closed because a route had proxyLimits.connectionsPerRouteMax open already. */
  overLimit: number;
  /** Bytes discarded on 'drop' links, both directions. */
  droppedBytes: number;
}

const pairKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

export class PeerProxy {
  readonly #routes = new Map<string, Route>();
  readonly #links = new Set<Link>();
  readonly #cuts = new Map<string, CutMode>();
  #pidsOf: () => ReadonlyMap<number, string> = () => new Map();
  readonly stats: ProxyStats = { forwarded: 0, refused: 0, blackholed: 0, unidentified: 0, overLimit: 0, droppedBytes: 0 };

  /** `pidsOf` names the members by their current PIDs (they change on restart). */
  identifyBy(pidsOf: () => ReadonlyMap<number, string>): void {
    this.#pidsOf = pidsOf;
  }

  /** Listens on a free loopback port for connections to member `name`, forwarded to `targetPort`. */
  async route(name: string, targetPort: number): Promise<number> {
    if (this.#routes.has(name)) throw new Error(`proxy: route ${name} exists`);
    const server = createServer({ pauseOnConnect: true }, (socket) => this.#accept(name, socket));
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy: listener has no port');
    this.#routes.set(name, { name, server, listenPort: address.port, targetPort });
    return address.port;
  }

  /** The member now listens for peers elsewhere (after `member update`); existing links stay as they are. */
  retarget(name: string, targetPort: number): void {
    this.#route(name).targetPort = targetPort;
  }

  listenPort(name: string): number {
    return this.#route(name).listenPort;
  }

  /** Cuts the link between a and b, both ways. */
  cut(a: string, b: string, mode: CutMode = 'drop'): void {
    if (a === b) throw new Error('proxy: a member has no link to itself');
    this.#route(a);
    this.#route(b);
    this.#cuts.set(pairKey(a, b), mode);
    for (const link of this.#links) {
      if (pairKey(link.from, link.to) === pairKey(a, b)) this.#sever(link, mode);
    }
  }

  /** Cuts `name` off from every other member. */
  isolate(name: string, mode: CutMode = 'drop'): void {
    for (const other of this.#routes.keys()) if (other !== name) this.cut(name, other, mode);
  }

  heal(a: string, b: string): void {
    this.#cuts.delete(pairKey(a, b));
    for (const link of [...this.#links]) {
      if (pairKey(link.from, link.to) === pairKey(a, b) && link.blackholed) this.#close(link);
    }
  }

  healAll(): void {
    for (const key of [...this.#cuts.keys()]) {
      const [a, b] = key.split('|');
      if (a !== undefined && b !== undefined) this.heal(a, b);
    }
  }

  isCut(a: string, b: string): boolean {
    return this.#cuts.has(pairKey(a, b));
  }

  async close(): Promise<void> {
    for (const link of [...this.#links]) this.#close(link);
    await Promise.all([...this.#routes.values()].map((route) => new Promise<void>((ok) => route.server.close(() => ok()))));
    this.#routes.clear();
  }

  #route(name: string): Route {
    const route = this.#routes.get(name);
    if (route === undefined) throw new Error(`proxy: no route ${name}`);
    return route;
  }

  #accept(to: string, socket: Socket): void {
    socket.on('error', () => { /* a peer that goes away resets its connections */ });
    const route = this.#route(to);
    const from = socket.remotePort === undefined ? undefined : dialerOf({ port: socket.remotePort,
      peerPort: route.listenPort, pids: this.#pidsOf() });
    if (from === undefined) {
      this.stats.unidentified += 1;
      socket.destroy();
      return;
    }
    if ([...this.#links].filter((l) => l.to === to).length >= proxyLimits.connectionsPerRouteMax) {
      this.stats.overLimit += 1;
      socket.destroy();
      return;
    }
    const link: Link = { from, to, downstream: socket, upstream: undefined, blackholed: false };
    this.#links.add(link);
    socket.once('close', () => this.#close(link));
    const cut = this.#cuts.get(pairKey(from, to));
    if (cut !== undefined) {
      this.#sever(link, cut);
      return;
    }
    this.#forward(link, route.targetPort);
  }

  #forward(link: Link, targetPort: number): void {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    link.upstream = upstream;
    upstream.on('error', () => { /* the member died or reset: close the pair below */ });
    upstream.once('close', () => this.#close(link));
    upstream.once('connect', () => {
      if (link.blackholed) return;
      this.stats.forwarded += 1;
      link.downstream.pipe(upstream);
      upstream.pipe(link.downstream);
      link.downstream.resume();
    });
  }

  #sever(link: Link, mode: CutMode): void {
    if (mode === 'refuse') {
      this.stats.refused += 1;
      link.downstream.resetAndDestroy();
      link.upstream?.resetAndDestroy();
      this.#links.delete(link);
      return;
    }
    if (link.blackholed) return;
    this.stats.blackholed += 1;
    link.blackholed = true;
    for (const socket of [link.downstream, link.upstream]) {
      if (socket === undefined) continue;
      socket.unpipe();
      // discard everything, so the sender's writes succeed into a void as on a lossy network
      socket.removeAllListeners('data');
      socket.on('data', (chunk: Buffer) => { this.stats.droppedBytes += chunk.length; });
      socket.resume();
    }
  }

  #close(link: Link): void {
    if (!this.#links.delete(link)) return;
    link.downstream.destroy();
    link.upstream?.destroy();
  }
}

// ------------------------------------------------------------------------------- who dialed this socket

/**
 * The member (by PID) holding the socket whose local port is `port` and remote port `peerPort`, i.e. the
 * dialing end of a connection accepted on `peerPort`; undefined when no known process holds it.
 */
export function dialerOf(options: { port: number; peerPort: number; pids: ReadonlyMap<number, string> }): string | undefined {
  const inode = socketInode(options.port, options.peerPort);
  if (inode === undefined) return undefined;
  for (const [pid, name] of options.pids) {
    if (holdsSocket(pid, inode)) return name;
  }
  return undefined;
}

function socketInode(localPort: number, remotePort: number): string | undefined {
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1];
      const remote = f[2];
      const inode = f[9];
      if (local === undefined || remote === undefined || inode === undefined) continue;
      if (portOf(local) === localPort && portOf(remote) === remotePort && inode !== '0') return inode;
    }
  }
  return undefined;
}

function portOf(address: string): number {
  return Number.parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
}

function holdsSocket(pid: number, inode: string): boolean {
  const dir = `/proc/${pid}/fd`;
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return false;
  }
  const wanted = `socket:[${inode}]`;
  for (const fd of fds) {
    try {
      if (readlinkSync(`${dir}/${fd}`) === wanted) return true;
    } catch {
      // the fd was closed while we looked
    }
  }
  return false;
}
