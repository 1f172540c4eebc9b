/**
 * The listeners of --listen-metrics-urls: plain HTTP/1.1 servers of their own, so a scraper or a health
 * probe never competes with client traffic for the client port (etcd serves them the same way).
 *
 *   const metrics = await MetricsListener.listen(urls, handler, log);  // metrics.boundPorts
 *   await metrics.close();
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../../base/logger.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A scrape or probe connection idle this long is closed. */
const idleTimeoutMs = 120_000;

export class MetricsListener {
  readonly #servers: http.Server[] = [];
  readonly #sockets = new Set<Socket>();
  readonly #boundPorts: number[] = [];

  private constructor() {}

  /** Binds every URL (http only; port 0 picks a free port). Rejects, releasing what it bound, on failure. */
  static async listen(urls: readonly URL[], handler: Handler, log: Logger): Promise<MetricsListener> {
    const listener = new MetricsListener();
    try {
      for (const url of urls) await listener.#listenOne(url, handler, log);
    } catch (err) {
      await listener.close();
      throw err;
    }
    return listener;
  }

  get boundPorts(): readonly number[] {
    return this.#boundPorts;
  }

  async #listenOne(url: URL, handler: Handler, log: Logger): Promise<void> {
    if (url.protocol !== 'http:') throw new Error(`unsupported metrics URL scheme ${JSON.stringify(url.protocol)} in ${url.href}`);
    const server = http.createServer(handler);
    server.timeout = idleTimeoutMs;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: url.port === '' ? 80 : Number(url.port) }, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : Number(url.port));
      });
    });
    this.#servers.push(server);
    this.#boundPorts.push(port);
    log.info('serving metrics', { address: `${url.protocol}//${url.hostname}:${port}` });
  }

  /** Stops listening and cuts open connections (a scrape in progress is not worth waiting for). */
  async close(): Promise<void> {
    const closed = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const socket of this.#sockets) socket.destroy();
    await Promise.all(closed);
  }
}
