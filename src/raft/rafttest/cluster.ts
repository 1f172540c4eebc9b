/**
 * A small in-memory cluster of RawNodes for tests: each node has a MemoryStorage and an "appender"
 * state machine; processReady() follows the host contract (persist, queue messages, apply, advance);
 * deliver() moves queued messages to their targets through a filter (drops, partitions).
 */
import type { Ready } from '../contract.js';
import { decodeConfChangeV1, decodeConfChangeV2, confChangeV1ToV2 } from '../conf-change.js';
import type { Logger } from '../logger.js';
import { SILENT_LOGGER } from '../logger.js';
import { MemoryStorage } from '../memory-storage.js';
import { SeededRng } from '../prng.js';
import type { RawNodeConfig } from '../raw-node.js';
import { RawNode } from '../raw-node.js';
import type { ConfState, Entry, Message, NodeId, Snapshot } from '../types.js';
import { EntryType } from '../types.js';

export interface TestNode {
  readonly id: NodeId;
  readonly storage: TestStorage;
  readonly node: RawNode;
  /** Payloads of applied normal entries, in order. */
  readonly applied: string[];
  confState: ConfState;
  config: RawNodeConfig;
}

/**
 * Storage whose snapshot() is taken on demand at the applied index, as a server would when a follower
 * needs one (so that it includes configuration changes applied since the last snapshot).
 */
export class TestStorage extends MemoryStorage {
  onSnapshot: (() => void) | null = null;

  override snapshot(): Snapshot {
    if (this.onSnapshot !== null) this.onSnapshot();
    return super.snapshot();
  }

  storedSnapshot(): Snapshot {
    return super.snapshot();
  }
}

export type ConfigOverrides = Partial<Omit<RawNodeConfig, 'id' | 'storage' | 'rng'>>;

export function testConfig(id: NodeId, storage: MemoryStorage, overrides: ConfigOverrides = {}): RawNodeConfig {
  return {
    id,
    storage,
    rng: new SeededRng(Number(id)),
    electionTicks: 10,
    heartbeatTicks: 1,
    appliedIndex: 0,
    maxSizePerMsgBytes: 1024 * 1024,
    maxInflightMsgs: 256,
    maxInflightBytes: 0,
    maxUncommittedEntriesBytes: 0,
    preVote: false,
    checkQuorum: false,
    readOnlyOption: 'safe',
    disableProposalForwarding: false,
    logger: SILENT_LOGGER,
    ...overrides,
  };
}

export function confStateOf(voters: readonly NodeId[], learners: readonly NodeId[] = []): ConfState {
  return { voters: [...voters], learners: [...learners], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

const decoder = new TextDecoder();
export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered, in send order. */
  queue: Message[] = [];
  /** Return false to drop a message on delivery. */
  filter: (m: Message) => boolean = () => true;
  readonly logger: Logger;

  constructor(opts: { logger?: Logger } = {}) {
    this.logger = opts.logger ?? SILENT_LOGGER;
  }

  /** Creates n nodes with ids 1..n, all voters unless listed as learners. */
  /**
   * Creates n nodes with ids 1..n, all voters unless listed as learners. With index > 0 every node starts
   * from a snapshot at that index (term 1), so that nodes added later must receive a snapshot to join.
   */
  static create(n: number, overrides: ConfigOverrides = {}, opts: { learners?: readonly NodeId[]; index?: number } = {}): Cluster {
    const c = new Cluster();
    const ids: NodeId[] = [];
    for (let i = 1; i <= n; i++) ids.push(BigInt(i));
    const learners = opts.learners ?? [];
    const voters = ids.filter((id) => !learners.includes(id));
    for (const id of ids) c.add(id, confStateOf(voters, learners), overrides, opts.index ?? 0);
    return c;
  }

  add(id: NodeId, cs: ConfState, overrides: ConfigOverrides = {}, index = 0): TestNode {
    const storage = new TestStorage(index === 0 ? { confState: cs } : {});
    if (index > 0) storage.applySnapshot({ data: new Uint8Array(), metadata: { confState: cs, index, term: 1 } });
    const config = testConfig(id, storage, { logger: this.logger, ...overrides });
    const tn: TestNode = { id, storage, node: new RawNode(config), applied: [], confState: cs, config };
    this.#register(tn);
    return tn;
  }

  #register(tn: TestNode): void {
    this.nodes.set(tn.id, tn);
    tn.storage.onSnapshot = () => {
      const cur = this.nodes.get(tn.id);
      if (cur === undefined || cur.storage !== tn.storage) return;
      const applied = cur.node.raft.raftLog.applied;
      if (applied <= tn.storage.storedSnapshot().metadata.index) return;
      tn.storage.createSnapshot(applied, { confState: cur.confState, data: enc(cur.applied.join(',')) });
    };
  }

  /**
   * Replaces a node by one whose storage already holds a log (entries from index 1) and a hard state:
   * the starting point of the paper's log scenarios.
   */
  withLog(id: NodeId, opts: { entries: readonly Entry[]; term: number; commit?: number; overrides?: ConfigOverrides }): TestNode {
    const old = this.get(id);
    const storage = new TestStorage({ confState: old.confState });
    storage.append(opts.entries);
    storage.setHardState({ term: opts.term, vote: 0n, commit: opts.commit ?? 0 });
    const config = testConfig(id, storage, { logger: this.logger, ...(opts.overrides ?? {}) });
    const tn: TestNode = { id, storage, node: new RawNode(config), applied: [], confState: old.confState, config };
    this.#register(tn);
    return tn;
  }

  /** Handles every Ready of one node and returns (instead of queueing) the messages it sent. */
  drain(id: NodeId): Message[] {
    while (this.processReady(id) !== null) {
      // keep going until the node is quiet
    }
    const out = this.queue.filter((m) => m.from === id);
    this.queue = this.queue.filter((m) => m.from !== id);
    return out;
  }

  /** Restarts a node from what its storage holds (a crash that loses nothing persisted). */
  restart(id: NodeId, overrides: ConfigOverrides = {}): TestNode {
    const old = this.get(id);
    const applied = old.storage.storedSnapshot().metadata.index;
    const config = testConfig(id, old.storage, { logger: this.logger, ...overrides, appliedIndex: applied });
    // The state machine restarts from the snapshot (entries after it are applied again).
    const data = decoder.decode(old.storage.storedSnapshot().data);
    const tn: TestNode = { id, storage: old.storage, node: new RawNode(config), applied: data === '' ? [] : data.split(','), confState: old.confState, config };
    this.#register(tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.get(id).node;
  }

  /** Handles one Ready of a node per the host contract; returns it (null when there was none). */
  processReady(id: NodeId): Ready | null {
    const tn = this.get(id);
    if (!tn.node.hasReady()) return null;
    const rd = tn.node.ready();
    if (rd.snapshot !== null) {
      tn.storage.applySnapshot(rd.snapshot);
      tn.confState = rd.snapshot.metadata.confState;
      tn.applied.length = 0;
      const data = decoder.decode(rd.snapshot.data);
      if (data !== '') tn.applied.push(...data.split(','));
    }
    tn.storage.append(rd.entries);
    if (rd.hardState !== null) tn.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.queue.push(m);
    for (const e of rd.committedEntries) this.#apply(tn, e);
    tn.node.advance();
    return rd;
  }

  #apply(tn: TestNode, e: Entry): void {
    if (e.type === EntryType.Normal) {
      if (e.data.length > 0) tn.applied.push(decoder.decode(e.data));
      return;
    }
    const cc = e.type === EntryType.ConfChangeV2 ? decodeConfChangeV2(e.data) : confChangeV1ToV2(decodeConfChangeV1(e.data));
    tn.confState = tn.node.applyConfChange(cc);
  }

  /** Queues messages for delivery. */
  send(ms: readonly Message[]): void {
    for (const m of ms) this.queue.push(m);
  }

  /** Delivers queued messages addressed to `to` (all when undefined) that pass the filter. */
  deliver(to?: NodeId): Message[] {
    const keep: Message[] = [];
    const take: Message[] = [];
    for (const m of this.queue) (to === undefined || m.to === to ? take : keep).push(m);
    this.queue = keep;
    const delivered: Message[] = [];
    for (const m of take) {
      const target = this.nodes.get(m.to);
      if (target === undefined || !this.filter(m)) continue;
      delivered.push(m);
      target.node.step(m);
    }
    return delivered;
  }

  /** Runs Ready handling and delivery until nothing moves (bounded, to catch livelocks). */
  stabilize(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const id of this.nodes.keys()) {
        while (this.processReady(id) !== null) moved = true;
      }
      if (this.queue.length > 0) {
        moved = true;
        this.deliver();
      }
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  /** Cuts every link between the two groups (messages on the cut links are dropped). */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    const cut = (x: NodeId, y: NodeId): boolean => (a.includes(x) && b.includes(y)) || (a.includes(y) && b.includes(x));
    this.filter = (m) => !cut(m.from, m.to);
  }

  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  heal(): void {
    this.filter = () => true;
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.raw(id).tick();
  }

  /** Campaign and stabilize: the node becomes leader if it can win. */
  elect(id: NodeId): void {
    this.raw(id).campaign();
    this.stabilize();
  }

  leaderIds(): NodeId[] {
    const out: NodeId[] = [];
    for (const [id, n] of this.nodes) if (n.node.raft.state === 2) out.push(id);
    return out;
  }
}
