/**
 * Pending ReadIndex requests on the leader (thesis §6.4): each one remembers the commit index at the
 * time it arrived and collects heartbeat acknowledgements; once a quorum has acknowledged, it and
 * every request queued before it are answered.
 */
import type { Message, NodeId } from './types.js';
import { bytesKey } from './util.js';

/** Bound on queued read requests; past it new ones are dropped (the reader times out and retries). */
export const READ_INDEX_PENDING_MAX = 65_536;

export interface ReadIndexStatus {
  readonly req: Message;
  readonly index: number;
  readonly acks: Map<NodeId, boolean>;
}

export class ReadOnly {
  readonly option: 'safe' | 'lease-based';
  #pending = new Map<string, ReadIndexStatus>();
  #queue: string[] = [];
  #head = 0;

  constructor(option: 'safe' | 'lease-based') {
    this.option = option;
  }

  get pendingCount(): number {
    return this.#queue.length - this.#head;
  }

  /** Queues a request (its context is the key); false when it was already queued or the queue is full. */
  addRequest(index: number, m: Message): boolean {
    const key = bytesKey(m.context);
    if (this.#pending.has(key)) return false;
    if (this.pendingCount >= READ_INDEX_PENDING_MAX) return false;
    this.#pending.set(key, { req: m, index, acks: new Map() });
    this.#queue.push(key);
    return true;
  }

  /** Records a heartbeat ack for the request with this context; returns its acks (null if unknown). */
  recvAck(id: NodeId, context: Uint8Array): ReadonlyMap<NodeId, boolean> | null {
    const rs = this.#pending.get(bytesKey(context));
    if (rs === undefined) return null;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /** Dequeues the request with m's context and every one before it: a quorum confirmed them all. */
  advance(m: Message): ReadIndexStatus[] {
    const ctx = bytesKey(m.context);
    if (!this.#pending.has(ctx)) return [];
    const out: ReadIndexStatus[] = [];
    while (this.#head < this.#queue.length) {
      const key = this.#queue[this.#head++] as string;
      const rs = this.#pending.get(key) as ReadIndexStatus;
      this.#pending.delete(key);
      out.push(rs);
      if (key === ctx) break;
    }
    this.#compact();
    return out;
  }

  /** Context of the newest request, sent along with heartbeats; undefined when none is pending. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const key = this.#queue[this.#queue.length - 1] as string;
    return (this.#pending.get(key) as ReadIndexStatus).req.context;
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
