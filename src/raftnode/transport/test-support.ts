/**
 * Helpers shared by the transport's tests and its throughput measurement: message builders, transports
 * that record what they receive, and waiting on a condition with a deadline (never a fixed sleep).
 */
import { silentLogger, type LogFields, type Logger } from '../../base/logger.js';
import { EntryType, MessageType, type Entry, type Message, type NodeId } from '../../raft/types.js';
import type { TransportLimits } from './limits.js';
import { PeerTransport, type PeerTls, type SnapshotStatus } from './peer-transport.js';

export const CLUSTER: NodeId = 0xcdf818194e3a8c32n;

/** Short timeouts so that failures and reconnections happen within a test's patience. */
export const FAST_LIMITS: Partial<TransportLimits> = {
  reconnectDelayMinMs: 10,
  reconnectDelayMaxMs: 80,
  pingIntervalMs: 50,
  // Generous: the machine running the tests may be busy, and a false timeout fails a test.
  pingTimeoutMs: 5000,
  connectTimeoutMs: 5000,
};

export function appMessage(options: { from: NodeId; to: NodeId; index: number; entryBytes?: number; entries?: number }): Message {
  const entries: Entry[] = [];
  const n = options.entries ?? (options.entryBytes === undefined ? 0 : 1);
  for (let i = 0; i < n; i++) {
    const data = new Uint8Array(options.entryBytes ?? 8);
    for (let b = 0; b < data.length; b++) data[b] = (options.index + i + b) & 0xff;
    entries.push({ term: 3, index: options.index + i + 1, type: EntryType.Normal, data });
  }
  return {
    type: MessageType.App, to: options.to, from: options.from, term: 3, logTerm: 3, index: options.index,
    entries, commit: options.index, snapshot: null, reject: false, rejectHint: 0, context: new Uint8Array(0),
  };
}

export function snapMessage(options: { from: NodeId; to: NodeId; index: number; data: Uint8Array }): Message {
  return {
    type: MessageType.Snap, to: options.to, from: options.from, term: 4, logTerm: 0, index: 0, entries: [],
    commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0),
    snapshot: {
      data: options.data,
      metadata: {
        index: options.index, term: 4,
        confState: { voters: [options.from, options.to], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    },
  };
}

export interface LogRecord {
  readonly level: string;
  readonly msg: string;
  readonly fields: LogFields;
}

/** A logger that keeps its lines, for asserting that something was logged. */
export function recordingLogger(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields): void => {
    records.push({ level, msg, fields: fields ?? {} });
  };
  const log: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return { log, records };
}

export interface Node {
  readonly id: NodeId;
  readonly t: PeerTransport;
  readonly received: Message[];
  readonly unreachable: NodeId[];
  readonly snapshots: Array<{ peer: NodeId; status: SnapshotStatus }>;
  url(): URL;
}

export async function startNode(
  id: NodeId,
  options: { clusterId?: NodeId; limits?: Partial<TransportLimits>; port?: number; log?: Logger; tls?: PeerTls } = {},
): Promise<Node> {
  const received: Message[] = [];
  const unreachable: NodeId[] = [];
  const snapshots: Array<{ peer: NodeId; status: SnapshotStatus }> = [];
  const t = new PeerTransport({
    localId: id,
    clusterId: options.clusterId ?? CLUSTER,
    listenUrls: [new URL(`${options.tls !== undefined ? 'https' : 'http'}://127.0.0.1:${options.port ?? 0}`)],
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    log: options.log ?? silentLogger,
    onMessage: (m) => received.push(m),
    onUnreachable: (peer) => unreachable.push(peer),
    onSnapshotStatus: (peer, status) => snapshots.push({ peer, status }),
    limits: { ...FAST_LIMITS, ...options.limits },
  });
  await t.start();
  return {
    id, t, received, unreachable, snapshots,
    url: () => {
      const url = t.boundUrls()[0];
      if (url === undefined) throw new Error('transport not listening');
      return url;
    },
  };
}

/** Connects every node to every other one. */
export function mesh(nodes: readonly Node[]): void {
  for (const a of nodes) for (const b of nodes) if (a !== b) a.t.addPeer(b.id, [b.url()]);
}

/** Polls `condition` until it holds; fails with `what` after the deadline. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}
