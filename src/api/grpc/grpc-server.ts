/** The client-facing gRPC listener(s) on --listen-client-urls. */
import { Server, ServerCredentials } from '@grpc/grpc-js';
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

  async listen(urls: readonly URL[]): Promise<void> {
    for (const url of urls) {
      const host = url.hostname.startsWith('[') ? url.hostname : url.hostname;
      const port = await new Promise<number>((resolve, reject) => {
        this.#server.bindAsync(`${host}:${url.port || '2379'}`, ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p));
      });
      this.#boundPorts.push(port);
      this.#log.info('serving client traffic insecurely; this is strongly discouraged!', { address: `${host}:${port}` });
    }
  }

  /** Stops accepting calls; in-flight calls get until `graceMs` to finish, then connections are cut. */
  async close(graceMs: number): Promise<void> {
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
