/**
 * etcd's check that a leader sends its heartbeats on time: a heartbeat to a peer that leaves more than
 * two heartbeat intervals since the previous one means the leader was held up (a slow disk, a busy event
 * loop) and followers may start an election. It wraps the transport, where the messages leave.
 */
import { MessageType, type Message, type NodeId } from '../raft/types.js';
import type { RaftTransport } from './raft-node.js';

export interface HeartbeatWatchOptions {
  readonly heartbeatMs: number;
  /** Milliseconds on a monotonic clock. */
  readonly now: () => number;
  onLate(peer: NodeId, exceededMs: number): void;
}

export class HeartbeatWatch implements RaftTransport {
  readonly #inner: RaftTransport;
  readonly #o: HeartbeatWatchOptions;
  readonly #lastSentMs = new Map<NodeId, number>();

  constructor(inner: RaftTransport, options: HeartbeatWatchOptions) {
    this.#inner = inner;
    this.#o = options;
  }

  send(messages: readonly Message[]): void {
    for (const m of messages) if (m.type === MessageType.Heartbeat) this.#observe(m.to);
    this.#inner.send(messages);
  }

  /** Forgets every peer's last heartbeat: a new leadership starts its own rhythm. */
  reset(): void {
    this.#lastSentMs.clear();
  }

  #observe(peer: NodeId): void {
    const now = this.#o.now();
    const last = this.#lastSentMs.get(peer);
    this.#lastSentMs.set(peer, now);
    if (last === undefined) return;
    const exceededMs = now - last - 2 * this.#o.heartbeatMs;
    if (exceededMs > 0) this.#o.onLate(peer, exceededMs);
  }
}
