/** The configured endpoints in failover order, plus connections to endpoints named per call. */
import { ClientError } from './errors.js';
import { Connection } from './connection.js';
import { parseEndpoint } from './endpoints.js';
import { GrpcCode } from '../base/errors.js';

/** Calls pinned to endpoints outside the configured list (etcdctl's --cluster) each need a channel; bound them. */
export const pinnedConnectionsMax = 128;
export const endpointsMax = 128;

export class ConnectionPool {
  #ordered: Connection[];
  #index = 0;
  #pinned = new Map<string, Connection>();

  constructor(endpoints: readonly string[]) {
    if (endpoints.length === 0) throw new ClientError(GrpcCode.InvalidArgument, 'at least one endpoint is required', { sent: false });
    if (endpoints.length > endpointsMax) {
      throw new ClientError(GrpcCode.InvalidArgument, `too many endpoints (${endpoints.length} > ${endpointsMax})`, { sent: false });
    }
    this.#ordered = endpoints.map((raw) => new Connection(parseEndpoint(raw)));
  }

  get size(): number {
    return this.#ordered.length;
  }

  current(): Connection {
    const conn = this.#ordered[this.#index];
    if (conn === undefined) throw new ClientError(GrpcCode.Canceled, 'the client is closed', { sent: false });
    return conn;
  }

  /** Moves to the next endpoint; true when that wrapped around to the first one. */
  advance(): boolean {
    this.#index = (this.#index + 1) % this.#ordered.length;
    return this.#index === 0;
  }

  /** The connection for one named endpoint: a configured one if it matches, else a dedicated channel. */
  pinned(raw: string): Connection {
    const endpoint = parseEndpoint(raw);
    const configured = this.#ordered.find((c) => c.endpoint.raw === raw || c.endpoint.target === endpoint.target);
    if (configured !== undefined && configured.endpoint.secure === endpoint.secure) return configured;
    const existing = this.#pinned.get(raw);
    if (existing !== undefined) return existing;
    if (this.#pinned.size >= pinnedConnectionsMax) {
      throw new ClientError(GrpcCode.ResourceExhausted, `too many distinct endpoints (limit ${pinnedConnectionsMax})`, { sent: false });
    }
    const conn = new Connection(endpoint);
    this.#pinned.set(raw, conn);
    return conn;
  }

  closeAll(): void {
    for (const conn of this.#ordered) conn.close();
    for (const conn of this.#pinned.values()) conn.close();
    this.#pinned.clear();
  }
}
