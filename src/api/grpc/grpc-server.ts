/** The client-facing gRPC listener over @grpc/grpc-js: the baseline our own server (src/api/h2) is benchmarked against. */
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ConnectionInjector } from '@grpc/grpc-js/build/src/server.js';
import { listenWithAuthorityFix, type AuthorityFixListener } from '../h2-authority/authority-front.js';
import type { Logger } from '../../base/logger.js';
import type { ServiceRegistration } from './services.js';

/** etcd lets a request's gRPC frame exceed --max-request-bytes by this much; the server checks the rest. */
const grpcOverheadBytes = 512 * 1024;

export interface GrpcListenOptions {
  readonly urls: readonly URL[];
  readonly requestBytesMax: number;
  readonly maxConcurrentStreams: number;
  readonly keepaliveMinTimeMs: number;
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
}

export class GrpcServer {
  readonly #server: Server;
  readonly #log: Logger;
  readonly #boundPorts: number[] = [];
  readonly #fronts: AuthorityFixListener[] = [];
  #injector: ConnectionInjector | null = null;

  constructor(services: readonly ServiceRegistration[], options: GrpcListenOptions & { log: Logger }) {
    this.#log = options.log;
    this.#server = new Server({
      'grpc.max_receive_message_length': options.requestBytesMax + grpcOverheadBytes,
      'grpc.max_send_message_length': 2 ** 31 - 1,
      'grpc.max_concurrent_streams': Math.min(options.maxConcurrentStreams, 2 ** 31 - 1),
      'grpc.keepalive_time_ms': options.keepaliveIntervalMs,
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs,
      'grpc.http2.min_ping_interval_without_data_ms': options.keepaliveMinTimeMs,
      'grpc.keepalive_permit_without_calls': 1,
    });
    for (const s of services) this.#server.addService(s.definition, s.implementation);
  }

  get boundPorts(): readonly number[] {
    return this.#boundPorts;
  }

  /**
   * Connections are accepted by the authority front (Go clients of etcd may send an :authority that
   * Node's HTTP/2 refuses) and handed to grpc-js through its connection injector.
   */
  async listen(urls: readonly URL[]): Promise<void> {
    const injector = this.#server.createConnectionInjector(ServerCredentials.createInsecure());
    this.#injector = injector;
    for (const url of urls) {
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const front = await listenWithAuthorityFix(injector, { host, port: Number(url.port || '2379') });
      this.#fronts.push(front);
      const address = front.address();
      const port = typeof address === 'object' && address !== null ? address.port : Number(url.port);
      this.#boundPorts.push(port);
      this.#log.info('serving client traffic insecurely; this is strongly discouraged!', { address: `${host}:${port}` });
    }
  }

  /** Stops accepting calls; in-flight calls get until `graceMs` to finish, then connections are cut. */
  async close(graceMs: number): Promise<void> {
    await Promise.all(this.#fronts.map((f) => f.close({ graceMs })));
    this.#injector?.destroy();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      this.#server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
