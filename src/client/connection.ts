/** One gRPC channel to one endpoint, shared by the generated clients of every etcd service. */
import { Channel, connectivityState, credentials, type ChannelOptions } from '@grpc/grpc-js';
import {
  AuthClient,
  ClusterClient,
  KVClient,
  LeaseClient,
  MaintenanceClient,
  WatchClient,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { LockClient } from '../gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import { ElectionClient } from '../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import type { Endpoint } from './endpoints.js';

/** etcd's clients accept responses up to 2 GiB - 1 and send requests up to 2 MiB. */
export const receiveMessageBytesMax = 2 ** 31 - 1;
export const sendMessageBytesMax = 2 * 1024 * 1024;
/** Reconnect quickly after a failure; a member restart should not stall clients for the gRPC default (1 s+). */
const reconnectBackoffInitialMs = 100;
const reconnectBackoffMaxMs = 2000;

const channelOptions: ChannelOptions = {
  'grpc.max_receive_message_length': receiveMessageBytesMax,
  'grpc.max_send_message_length': sendMessageBytesMax,
  'grpc.initial_reconnect_backoff_ms': reconnectBackoffInitialMs,
  'grpc.max_reconnect_backoff_ms': reconnectBackoffMaxMs,
};

export type ReadyOutcome = 'ready' | 'failed' | 'timeout';

export class Connection {
  readonly endpoint: Endpoint;
  readonly kv: KVClient;
  readonly maintenance: MaintenanceClient;
  readonly cluster: ClusterClient;
  readonly lease: LeaseClient;
  readonly auth: AuthClient;
  readonly watch: WatchClient;
  readonly lock: LockClient;
  readonly election: ElectionClient;
  #channel: Channel;
  #closed = false;

  constructor(endpoint: Endpoint) {
    this.endpoint = endpoint;
    const creds = endpoint.secure ? credentials.createSsl() : credentials.createInsecure();
    this.#channel = new Channel(endpoint.target, creds, channelOptions);
    const shared = { channelOverride: this.#channel };
    this.kv = new KVClient(endpoint.target, creds, shared);
    this.maintenance = new MaintenanceClient(endpoint.target, creds, shared);
    this.cluster = new ClusterClient(endpoint.target, creds, shared);
    this.lease = new LeaseClient(endpoint.target, creds, shared);
    this.auth = new AuthClient(endpoint.target, creds, shared);
    this.watch = new WatchClient(endpoint.target, creds, shared);
    this.lock = new LockClient(endpoint.target, creds, shared);
    this.election = new ElectionClient(endpoint.target, creds, shared);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Connects if idle and waits until the channel is ready, has failed, or the deadline passes.
   * A channel already in TRANSIENT_FAILURE counts as failed at once so callers can try another endpoint.
   */
  async waitReady(deadlineMs: number): Promise<ReadyOutcome> {
    let state = this.#channel.getConnectivityState(true);
    for (;;) {
      if (state === connectivityState.READY) return 'ready';
      if (state === connectivityState.TRANSIENT_FAILURE || state === connectivityState.SHUTDOWN) return 'failed';
      if (Date.now() >= deadlineMs) return 'timeout';
      const previous = state;
      const changed = await new Promise<boolean>((resolve) => {
        this.#channel.watchConnectivityState(previous, deadlineMs, (err) => resolve(err === undefined));
      });
      if (!changed) return 'timeout';
      state = this.#channel.getConnectivityState(true);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#channel.close();
  }
}
