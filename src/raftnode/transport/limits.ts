/**
 * Every bound of the peer transport, named in one place. Defaults follow what etcd's rafthttp uses where it
 * has an equivalent (4096-message stream buffer, 5 s read timeout, 512 MB message limit); the rest are ours.
 */
import { assert } from '../../base/assert.js';

export interface TransportLimits {
  /** Messages waiting to be written to one peer's stream; past it new messages are dropped (etcd: 4096). */
  readonly queueMessagesMax: number;
  /** Encoded bytes waiting for one peer; bounds memory when a peer is slow with large appends. */
  readonly queueBytesMax: number;
  /** Largest encoded message accepted on a stream, either side (a MsgApp batch, a vote, ...). */
  readonly frameBytesMax: number;
  /** Largest encoded snapshot message accepted or sent (etcd's decoder allows 512 MB). */
  readonly snapshotBytesMax: number;
  /** The sender writes a snapshot in pieces of this size, waiting for the stream to drain between them. */
  readonly snapshotChunkBytes: number;
  /** Snapshots queued or in flight to one peer; raft sends one at a time, so more means something is stuck. */
  readonly snapshotsPerPeerMax: number;
  /** Snapshots being received at once, all senders together. */
  readonly incomingSnapshotsMax: number;
  /** A snapshot transfer that takes longer than this is abandoned and reported as failed. */
  readonly snapshotTimeoutMs: number;
  /** Time from dialling to the receiver's acceptance of the stream before the attempt counts as failed. */
  readonly connectTimeoutMs: number;
  /** First reconnection delay after a failure; doubles per consecutive failure up to the maximum. */
  readonly reconnectDelayMinMs: number;
  readonly reconnectDelayMaxMs: number;
  /** HTTP/2 PING period on every connection: measures round-trip time and detects dead peers. */
  readonly pingIntervalMs: number;
  /** A PING unanswered this long means the peer (or the path to it) is gone: the connection is dropped. */
  readonly pingTimeoutMs: number;
  /** Inbound TCP connections accepted at once on each listener (each member opens one). */
  readonly incomingConnectionsMax: number;
  /** HTTP/2 receive windows (per stream and per connection): large enough that flow control does not
   *  throttle a stream of appends between two round trips. */
  readonly streamWindowBytes: number;
  readonly connectionWindowBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_TRANSPORT_LIMITS: TransportLimits = Object.freeze({
  queueMessagesMax: 4096,
  queueBytesMax: 64 * MiB,
  frameBytesMax: 64 * MiB,
  snapshotBytesMax: 512 * MiB,
  snapshotChunkBytes: 256 * 1024,
  snapshotsPerPeerMax: 2,
  incomingSnapshotsMax: 4,
  snapshotTimeoutMs: 10 * 60 * 1000,
  connectTimeoutMs: 2000,
  reconnectDelayMinMs: 50,
  reconnectDelayMaxMs: 1000,
  pingIntervalMs: 1000,
  pingTimeoutMs: 5000,
  incomingConnectionsMax: 256,
  streamWindowBytes: 4 * MiB,
  connectionWindowBytes: 16 * MiB,
});

/** The default limits with the given overrides, each checked to be a positive safe integer. */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits: TransportLimits = { ...DEFAULT_TRANSPORT_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value) && (value as number) > 0, () => `transport limit ${name}: bad value ${value}`);
  }
  assert(limits.frameBytesMax < 2 ** 32, 'frameBytesMax must fit the 4-byte frame length');
  assert(limits.reconnectDelayMinMs <= limits.reconnectDelayMaxMs, 'reconnect delay: min above max');
  // HTTP/2 windows are 31-bit.
  assert(limits.streamWindowBytes < 2 ** 31 && limits.connectionWindowBytes < 2 ** 31, 'window above 2^31-1');
  return Object.freeze(limits);
}
