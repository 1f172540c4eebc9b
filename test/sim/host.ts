/**
 * One simulated node: a RawNode driven exactly per the host contract in src/raft/contract.ts, over a
 * MemoryStorage mirror of a simulated disk. A Ready is handled in two stages so that crashes can land in
 * between: stage one writes the Ready to the disk (a leader also sends its messages now, in parallel
 * with its own write); stage two, once the disk's fsync completes, updates the storage mirror, sends a
 * follower's messages, applies committed entries, hands out read states and calls advance().
 */
import type { RaftConfig, RawNodeApi, Ready, ReadState, Rng } from '../../src/raft/contract.js';
import { ProposalDroppedError, StateRole, StorageError } from '../../src/raft/contract.js';
import type { ConfChangeV2, ConfState, Entry, HardState, Message, NodeId, Snapshot } from '../../src/raft/types.js';
import { ConfChangeType, EntryType, MessageType, NONE } from '../../src/raft/types.js';
import type { SafetyChecker } from './checkers.js';
import type { SimDisk } from './disk.js';
import { decodePut, encodePut, KvMachine } from './kv-machine.js';
import type { Prng } from './prng.js';
import type { ProposalTracker } from './tracker.js';
import { violation } from './violation.js';

/** The mutable side of MemoryStorage the host needs (src/raft/memory-storage.ts). */
export interface HostStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  append(entries: readonly Entry[]): void;
  applySnapshot(snapshot: Snapshot): void;
  setHardState(hs: HardState): void;
  createSnapshot(index: number, opts: { confState: ConfState | null; data: Uint8Array }): Snapshot;
  compact(compactIndex: number): void;
}

/** The pieces of the raft core the simulator runs; bound to the real modules in core.ts. */
export interface SimCore {
  newStorage(): HostStorage;
  /** log, when given, receives the core's own log lines (verbose traces). */
  newRawNode(config: RaftConfig, log: ((line: string) => void) | null): RawNodeApi;
  /** Decodes a committed conf change entry (EntryType.ConfChange or ConfChangeV2). */
  decodeConfChange(entry: Entry): ConfChangeV2;
  /** Starts a brand-new cluster on an empty storage (one committed conf change entry per peer). */
  bootstrap(raw: RawNodeApi, peers: readonly NodeId[]): void;
}

export type RaftTuning = Omit<RaftConfig, 'id' | 'storage' | 'rng' | 'appliedIndex'>;

export interface HostOptions {
  readonly id: NodeId;
  readonly disk: SimDisk;
  readonly core: SimCore;
  readonly checker: SafetyChecker;
  readonly tracker: ProposalTracker;
  /** The host's own choices: disk latency, torn writes. */
  readonly rng: Prng;
  /** A fresh generator for the raft core of each incarnation. */
  readonly raftRng: (incarnation: number) => Rng;
  readonly tuning: RaftTuning;
  readonly diskLatencyMaxRounds: number;
  readonly snapshotEveryEntries: number;
  readonly keepEntriesAfterSnapshot: number;
  /** Founding members of a cluster bootstrapped by log entries, or null (snapshot bootstrap, or a joiner). */
  readonly bootstrapPeers: readonly NodeId[] | null;
  readonly send: (msg: Message) => void;
  /** Called after the node applied a conf change, with the resulting configuration. */
  readonly onConfApplied: (node: NodeId, index: number, cs: ConfState) => void;
  readonly trace: ((line: string) => void) | null;
  /** Route the core's log lines into the trace. */
  readonly logRaft: boolean;
}

interface PendingReady {
  readonly rd: Ready;
  readonly doneRound: number;
  /** Leader at ready() time: its messages went out at stage one and its log is checked at stage two. */
  readonly leaderTerm: number;
}

interface WaitingRead {
  readonly readId: number;
  readonly index: number;
}

export class SimHost {
  readonly id: NodeId;
  readonly #o: HostOptions;
  #raw: RawNodeApi | null = null;
  #storage: HostStorage | null = null;
  #kv: KvMachine = KvMachine.empty();
  #confState: ConfState | null = null;
  #pending: PendingReady | null = null;
  #hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  #role: StateRole = StateRole.Follower;
  #lead: NodeId = NONE;
  #waitingReads: WaitingRead[] = [];
  /** Read contexts issued by this incarnation, by read id. */
  readonly #readIds = new Set<number>();
  #incarnation = 0;
  #snapshotIndex = 0;
  /** Set once the node applied a change removing itself and the resulting configuration lacks it. */
  removedAtIndex = 0;
  #removalApplied = false;
  crashes = 0;

  constructor(options: HostOptions) {
    this.id = options.id;
    this.#o = options;
  }

  get up(): boolean {
    return this.#raw !== null;
  }

  get role(): StateRole {
    return this.#role;
  }

  get lead(): NodeId {
    return this.#lead;
  }

  get term(): number {
    return this.#hardState.term;
  }

  get commit(): number {
    return this.#hardState.commit;
  }

  get applied(): number {
    return this.#kv.applied;
  }

  get incarnation(): number {
    return this.#incarnation;
  }

  get busy(): boolean {
    return this.#pending !== null;
  }

  /** Records written to the disk and not yet fsynced. */
  get unsyncedRecords(): number {
    return this.#o.disk.bufferedRecords;
  }

  /** Index of the last entry of the Ready being written, or 0. */
  get pendingLastIndex(): number {
    return this.#pending?.rd.entries.at(-1)?.index ?? 0;
  }

  get durableLastIndex(): number {
    return this.#o.disk.lastIndex;
  }

  get confState(): ConfState | null {
    return this.#confState;
  }

  get lastIndex(): number {
    return this.#storage?.lastIndex() ?? 0;
  }

  get raw(): RawNodeApi {
    const raw = this.#raw;
    if (raw === null) throw new Error(`node ${this.id} is down`);
    return raw;
  }

  #trace(line: string): void {
    this.#o.trace?.(`n${this.id} ${line}`);
  }

  /** Starts a new incarnation from what the disk kept. */
  start(): void {
    const o = this.#o;
    const durable = o.disk.durable();
    const storage = o.core.newStorage();
    if (durable.snapshot !== null) storage.applySnapshot(durable.snapshot);
    storage.setHardState(durable.hardState);
    storage.append(durable.entries);
    this.#kv = durable.snapshot === null ? KvMachine.empty() : KvMachine.restore(durable.snapshot.data);
    this.#confState = storage.initialState().confState;
    this.#hardState = durable.hardState;
    this.#snapshotIndex = durable.snapshot?.metadata.index ?? 0;
    this.#role = StateRole.Follower;
    this.#lead = NONE;
    this.#incarnation++;
    o.checker.onStart(this.id, durable.hardState);
    if (durable.snapshot !== null) o.checker.onRestore(this.id, this.#kv.applied, this.#kv.chain);
    this.#storage = storage;
    this.#raw = o.core.newRawNode({
      ...o.tuning,
      id: this.id,
      storage: storage as unknown as RaftConfig['storage'],
      rng: o.raftRng(this.#incarnation),
      appliedIndex: this.#kv.applied,
    }, o.logRaft ? (line) => this.#trace(`raft: ${line}`) : null);
    const fresh = durable.snapshot === null && durable.entries.length === 0 && durable.hardState.term === 0;
    if (fresh && o.bootstrapPeers !== null) o.core.bootstrap(this.#raw, o.bootstrapPeers);
    this.#trace(`start #${this.#incarnation} term=${durable.hardState.term} commit=${durable.hardState.commit} ` +
      `applied=${this.#kv.applied} last=${storage.lastIndex()}`);
  }

  /** Loses everything in memory and whatever the disk had not synced. */
  crash(options: { tear: boolean }): void {
    if (this.#raw === null) return;
    const loss = this.#o.disk.crash(this.#o.rng, options);
    this.#trace(`crash: kept ${loss.kept}/${loss.buffered} unsynced records, torn ${loss.tornEntries}`);
    this.#raw = null;
    this.#storage = null;
    this.#pending = null;
    this.#waitingReads = [];
    this.#readIds.clear();
    this.crashes++;
  }

  /** Stops a node that left the cluster; its disk is kept but it never runs again. */
  stop(): void {
    this.#trace('stop');
    this.#raw = null;
    this.#storage = null;
    this.#pending = null;
  }

  tick(): void {
    this.#raw?.tick();
  }

  step(msg: Message): void {
    this.#raw?.step(msg);
  }

  propose(proposalId: number, key: number): 'ok' | 'dropped' {
    try {
      this.raw.propose(encodePut({ proposalId, key }));
      return 'ok';
    } catch (e) {
      if (e instanceof ProposalDroppedError) {
        this.#o.tracker.onDropped(proposalId, e.message);
        return 'dropped';
      }
      throw e;
    }
  }

  proposeConfChange(cc: ConfChangeV2): 'ok' | 'dropped' {
    try {
      this.raw.proposeConfChange(cc);
      return 'ok';
    } catch (e) {
      if (e instanceof ProposalDroppedError) return 'dropped';
      throw e;
    }
  }

  readIndex(readId: number): void {
    const ctx = new Uint8Array(4);
    new DataView(ctx.buffer).setUint32(0, readId);
    this.#readIds.add(readId);
    this.raw.readIndex(ctx);
  }

  /** One turn of the host loop. */
  process(round: number): void {
    if (this.#raw === null) return;
    const p = this.#pending;
    if (p !== null && round >= p.doneRound) this.#finish(p);
    if (this.#pending === null && this.#raw !== null && this.#raw.hasReady()) this.#begin(round);
  }

  #begin(round: number): void {
    const raw = this.raw;
    const rd = raw.ready();
    this.#checkMustSync(rd);
    if (rd.softState !== null) this.#onSoftState(rd.softState.role, rd.softState.lead);
    // Any term change comes with a hard state in the Ready; the previous one is persisted by now.
    const leaderTerm = this.#role === StateRole.Leader ? (rd.hardState ?? this.#hardState).term : 0;
    if (leaderTerm > 0) this.#onLeaderEntries(rd.entries, leaderTerm);
    const disk = this.#o.disk;
    if (rd.snapshot !== null && rd.snapshot.metadata.index > 0) disk.write({ kind: 'installSnapshot', snapshot: rd.snapshot });
    if (rd.entries.length > 0) disk.write({ kind: 'entries', entries: rd.entries });
    if (rd.hardState !== null) disk.write({ kind: 'hardState', hardState: rd.hardState });
    if (leaderTerm > 0) this.#sendAll(rd.messages);
    const writes = rd.entries.length > 0 || rd.hardState !== null || rd.snapshot !== null;
    const latency = writes && mustSync(rd) ? this.#o.rng.intn(this.#o.diskLatencyMaxRounds + 1) : 0;
    const pending: PendingReady = { rd, doneRound: round + latency, leaderTerm };
    this.#pending = pending;
    if (latency === 0) this.#finish(pending);
  }

  /** Durability contract: new entries or a new term or vote must be fsynced before messages go out. */
  #checkMustSync(rd: Ready): void {
    const hs = rd.hardState;
    const changed = hs !== null && (hs.term !== this.#hardState.term || hs.vote !== this.#hardState.vote);
    const snapshot = rd.snapshot !== null && rd.snapshot.metadata.index > 0;
    if ((rd.entries.length > 0 || changed || snapshot) && !rd.mustSync) {
      violation('contract', `node ${this.id}: Ready with ${rd.entries.length} entries, ` +
        `${snapshot ? 'a' : 'no'} snapshot, ${changed ? 'a new' : 'the same'} term/vote has mustSync=false`);
    }
  }

  #onSoftState(role: StateRole, lead: NodeId): void {
    if (role !== this.#role) this.#trace(`${roleName(this.#role)} -> ${roleName(role)} lead=${lead}`);
    this.#role = role;
    this.#lead = lead;
    if (role === StateRole.Leader) this.#o.checker.onLeader(this.id, this.raw.status().hardState.term);
  }

  /**
   * Leader append-only: entries the leader created (its own term) extend its log, never replace any of
   * it. Entries of older terms in the same Ready were accepted while it was still a follower.
   */
  #onLeaderEntries(entries: readonly Entry[], term: number): void {
    let expect = (this.#storage?.lastIndex() ?? 0) + 1;
    for (const e of entries) {
      if (e.term !== term) {
        expect = e.index + 1;
        continue;
      }
      if (e.index < expect) violation('leader-append-only', `leader ${this.id} of term ${term} rewrites index ${e.index}`);
      expect = e.index + 1;
      const put = decodePut(e);
      if (put !== null) this.#o.tracker.onLeaderAppend(put.proposalId, { node: this.id, term, incarnation: this.#incarnation });
    }
  }

  #finish(p: PendingReady): void {
    this.#pending = null;
    const { rd } = p;
    const o = this.#o;
    if (mustSync(rd)) o.disk.sync();
    this.#persistToStorage(rd);
    if (p.leaderTerm > 0) this.#checkLeaderLog(p.leaderTerm);
    if (p.leaderTerm === 0) this.#sendAll(rd.messages);
    for (const e of rd.committedEntries) this.#apply(e);
    for (const rs of rd.readStates) this.#onReadState(rs);
    this.raw.advance();
    this.#maybeSnapshot();
    this.#serveReads();
  }

  #persistToStorage(rd: Ready): void {
    const storage = this.#storage as HostStorage;
    const o = this.#o;
    if (rd.snapshot !== null && rd.snapshot.metadata.index > 0) this.#installSnapshot(rd.snapshot);
    const first = rd.entries[0];
    if (first !== undefined) {
      o.checker.onPersistEntries(this.id, rd.entries, this.#termAt(first.index - 1) ?? -1);
      storage.append(rd.entries);
    }
    const hs = rd.hardState;
    if (hs === null) return;
    storage.setHardState(hs);
    o.checker.onHardState(this.id, hs);
    if (hs.commit > this.#hardState.commit) {
      const t = this.#termAt(hs.commit);
      if (t === null || hs.commit > storage.lastIndex()) {
        violation('contract', `node ${this.id}: commit ${hs.commit} beyond its persisted log (last ${storage.lastIndex()})`);
      }
      if (t >= 0) o.checker.onCommit(this.id, hs.commit, t, hs.term);
    }
    this.#hardState = hs;
  }

  /** The node's log term at i; -1 when i is compacted away; null when i is beyond its log. */
  #termAt(i: number): number | null {
    const storage = this.#storage as HostStorage;
    if (i > storage.lastIndex()) return null;
    try {
      return storage.term(i);
    } catch (e) {
      if (e instanceof StorageError && e.reason === 'compacted') return -1;
      throw e;
    }
  }

  #checkLeaderLog(term: number): void {
    const storage = this.#storage as HostStorage;
    this.#o.checker.checkLeaderLog(this.id, term, storage.lastIndex(), (i) => {
      const t = this.#termAt(i);
      return t === null || t < 0 ? null : t;
    });
  }

  #installSnapshot(snap: Snapshot): void {
    const storage = this.#storage as HostStorage;
    storage.applySnapshot(snap);
    this.#kv = KvMachine.restore(snap.data);
    if (this.#kv.applied !== snap.metadata.index) {
      violation('contract', `node ${this.id}: snapshot at ${snap.metadata.index} holds state applied to ${this.#kv.applied}`);
    }
    this.#confState = snap.metadata.confState;
    this.#snapshotIndex = snap.metadata.index;
    this.#o.checker.onRestore(this.id, snap.metadata.index, this.#kv.chain);
    this.#trace(`installed snapshot ${snap.metadata.index}/${snap.metadata.term}`);
  }

  #apply(e: Entry): void {
    if (e.index !== this.#kv.applied + 1) {
      violation('contract', `node ${this.id}: committed entry ${e.index} handed out after applied ${this.#kv.applied}`);
    }
    const put = this.#kv.apply(e);
    this.#o.checker.onApply(this.id, e, this.#kv.chain);
    if (put !== null) this.#o.tracker.onApplied(put.proposalId, e.index);
    if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) {
      const cc = this.#o.core.decodeConfChange(e);
      const cs = this.raw.applyConfChange(cc);
      this.#confState = cs;
      this.#trace(`applied conf change at ${e.index}: voters=[${cs.voters}] learners=[${cs.learners}] ` +
        `outgoing=[${cs.votersOutgoing}]`);
      // Replaying the bootstrap entries passes through configurations without this node: only an explicit
      // removal counts (for a joint change, once the joint configuration is left).
      if (cc.changes.some((c) => c.type === ConfChangeType.RemoveNode && c.nodeId === this.id)) this.#removalApplied = true;
      if (this.#removalApplied && !isMember(cs, this.id) && this.removedAtIndex === 0) this.removedAtIndex = e.index;
      this.#o.onConfApplied(this.id, e.index, cs);
    }
  }

  #onReadState(rs: ReadState): void {
    if (rs.context.length !== 4) violation('contract', `node ${this.id}: read state with a foreign context`);
    const readId = new DataView(rs.context.buffer, rs.context.byteOffset, 4).getUint32(0);
    if (!this.#readIds.delete(readId)) return;
    this.#waitingReads.push({ readId, index: rs.index });
  }

  #serveReads(): void {
    if (this.#waitingReads.length === 0) return;
    const still: WaitingRead[] = [];
    for (const w of this.#waitingReads) {
      if (w.index > this.#kv.applied) {
        still.push(w);
        continue;
      }
      const rec = this.#o.tracker.read(w.readId);
      if (rec === undefined) continue;
      this.#o.checker.onReadServed(this.id, rec, this.#kv.get(rec.key));
      this.#o.tracker.onReadServed(w.readId);
    }
    this.#waitingReads = still;
  }

  /** Snapshot the state machine now and then and compact the log behind it (kept in the disk as one unit). */
  #maybeSnapshot(): void {
    const storage = this.#storage as HostStorage;
    const applied = this.#kv.applied;
    if (applied - this.#snapshotIndex < this.#o.snapshotEveryEntries) return;
    const snapshot = storage.createSnapshot(applied, { confState: this.#confState, data: this.#kv.serialize() });
    this.#snapshotIndex = applied;
    const compactIndex = applied - this.#o.keepEntriesAfterSnapshot;
    if (compactIndex >= storage.firstIndex()) storage.compact(compactIndex);
    this.#o.disk.writeSynced({ kind: 'localSnapshot', snapshot, compactIndex });
  }

  #sendAll(messages: readonly Message[]): void {
    for (const m of messages) {
      if (m.to === this.id) violation('contract', `node ${this.id} sends a message of type ${m.type} to itself`);
      this.#o.send(m.type === MessageType.Snap ? this.#withFreshSnapshot(m) : m);
    }
  }

  /**
   * Like etcd's server, send the state machine as applied now rather than the stored snapshot: the
   * stored one may predate the conf change that added the receiver, which would then refuse it.
   */
  #withFreshSnapshot(m: Message): Message {
    const stored = m.snapshot;
    const index = this.#kv.applied;
    const term = this.#termAt(index);
    if (stored === null || index <= stored.metadata.index || term === null || term < 0 || this.#confState === null) return m;
    const snapshot: Snapshot = { data: this.#kv.serialize(), metadata: { index, term, confState: this.#confState } };
    return { ...m, snapshot };
  }

  describe(): string {
    if (this.#raw === null) return `n${this.id} down`;
    const st = this.#raw.status();
    const hs = st.hardState;
    return `n${this.id} ${roleName(st.softState.role)} term=${hs.term} vote=${hs.vote} lead=${st.softState.lead} ` +
      `commit=${hs.commit} applied=${this.#kv.applied} last=${this.lastIndex}${this.busy ? ' (writing)' : ''} ` +
      `voters=[${st.config.voters}] outgoing=[${st.config.votersOutgoing}] learners=[${st.config.learners}]`;
  }

  reportUnreachable(to: NodeId): void {
    this.#raw?.reportUnreachable(to);
  }

  reportSnapshot(to: NodeId, status: 'finish' | 'failure'): void {
    this.#raw?.reportSnapshot(to, status);
  }
}

/**
 * A received snapshot is always made durable before the Ready's messages go out, like etcd's server
 * (its snapshotter fsyncs on save): the follower acknowledges the snapshot's index. The core also sets
 * mustSync for it (checked in #checkMustSync); an early core did not, and lost acknowledged snapshots.
 */
function mustSync(rd: Ready): boolean {
  return rd.mustSync || (rd.snapshot !== null && rd.snapshot.metadata.index > 0);
}

export function isMember(cs: ConfState, id: NodeId): boolean {
  return (
    cs.voters.includes(id) || cs.learners.includes(id) || cs.votersOutgoing.includes(id) || cs.learnersNext.includes(id)
  );
}

export function roleName(role: StateRole): string {
  return ['follower', 'candidate', 'leader', 'pre-candidate'][role] ?? `role${role}`;
}
