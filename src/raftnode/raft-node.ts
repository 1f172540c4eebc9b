/**
 * The loop around the pure raft core: it owns the timer, persists each Ready to the WAL before anything
 * that depends on it leaves the process, sends messages, hands committed entries to the state machine,
 * takes snapshots, and advances the core.
 *
 * One turn drains everything that accumulated since the last one (proposals, received messages, ticks),
 * so one fsync covers a whole batch of proposals.
 */
import { assert } from '../base/assert.js';
import type { Logger } from '../base/logger.js';
import type { RawNodeApi, Ready, ReadState, SoftState } from '../raft/contract.js';
import { StateRole } from '../raft/contract.js';
import { EntryType, MessageType, type ConfState, type Entry, type HardState, type Message, type NodeId, type Snapshot } from '../raft/types.js';

/** The durable log, as this loop needs it. */
export interface RaftWal {
  save(options: { hardState: HardState | null; entries: readonly Entry[]; mustSync: boolean }): void;
  /** save() with the fsync off the event loop; one at a time. */
  saveAsync(options: { hardState: HardState | null; entries: readonly Entry[]; mustSync: boolean }): Promise<void>;
  saveSnapshotMarker(marker: { index: number; term: number }): void;
  releaseBefore(index: number): void;
}

export interface RaftSnapshotter {
  save(snapshot: Snapshot): void;
  /** Deletes all but the newest `keep` snapshot files. */
  purge(keep: number): string[];
}

/** Raft's in-memory copy of the stable log (MemoryStorage), kept in step with the WAL. */
export interface RaftLogStore {
  append(entries: readonly Entry[]): void;
  setHardState(hs: HardState): void;
  applySnapshot(snapshot: Snapshot): void;
  createSnapshot(index: number, options: { confState: ConfState | null; data: Uint8Array }): Snapshot;
  compact(index: number): void;
  firstIndex(): number;
}

export interface RaftTransport {
  send(messages: readonly Message[]): void;
}

/** The replicated state machine. apply() must be synchronous and must not throw for bad client input. */
export interface StateMachine {
  /** Applies committed entries in order; returns the new conf state if a conf change was among them. */
  applyEntries(entries: readonly Entry[]): void;
  /** Installs a snapshot received from the leader (the follower is far behind); its data is the backend. */
  applySnapshot(snapshot: Snapshot): Promise<void>;
  /** Fills a snapshot message for a far-behind follower with the state (the backend) to send. */
  prepareSnapshotMessage(message: Message): Promise<Message>;
  /** Makes everything applied so far durable (the backend commit) before the WAL below it is released. */
  flush(): Promise<void>;
  /** The conf state as of the last applied entry, for snapshots. */
  confState(): ConfState;
}

export interface RaftNodeEvents {
  onSoftState?(state: SoftState, term: number): void;
  onReadStates?(states: readonly ReadState[]): void;
  /** A Ready was fully processed: entries up to appliedIndex are applied. */
  onApplied?(appliedIndex: number): void;
  /** The node stopped because its state cannot be trusted (a failed snapshot install). */
  onFatal?(err: unknown): void;
}

export interface RaftNodeOptions {
  readonly id: NodeId;
  readonly rawNode: RawNodeApi;
  readonly logStore: RaftLogStore;
  readonly wal: RaftWal;
  readonly snapshotter: RaftSnapshotter;
  readonly transport: RaftTransport;
  readonly stateMachine: StateMachine;
  readonly events: RaftNodeEvents;
  readonly log: Logger;
  readonly tickMs: number;
  /** Take a snapshot after this many applied entries. */
  readonly snapshotCount: number;
  /** Entries kept in memory below a snapshot so slow followers catch up without one (etcd keeps 5000). */
  readonly catchUpEntries: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
  readonly snapshotTerm?: number;
  /** etcd's --max-snapshots: snapshot files kept (0: all). */
  readonly maxSnapshots: number;
  /** Filters proposals forwarded by followers before they reach the log (late ones are dropped). */
  readonly acceptForwardedProposal?: (data: Uint8Array) => boolean;
  /** etcd's --unsafe-no-fsync: never wait for the disk (loses acknowledged writes on power loss). */
  readonly unsafeNoFsync?: boolean;
}

export class RaftNode {
  readonly #o: RaftNodeOptions;
  #timer: NodeJS.Timeout | null = null;
  #scheduled = false;
  #stopped = false;
  #snapshotting = false;
  /** A Ready is being finished asynchronously (a WAL sync or a snapshot install): no new Ready until it is. */
  #busy = false;
  #sentEarly = false;
  #appliedTerm = 0;
  #committedIndex = 0;
  #appliedIndex: number;
  #snapshotIndex: number;
  #term = 0;
  #lead: NodeId = 0n;
  #role: StateRole = StateRole.Follower;

  constructor(options: RaftNodeOptions) {
    this.#o = options;
    this.#appliedIndex = options.appliedIndex;
    this.#snapshotIndex = options.snapshotIndex;
    this.#appliedTerm = options.snapshotTerm ?? 0;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }
  /** The highest index known committed (from the last persisted hard state). */
  get committedIndex(): number {
    return this.#committedIndex;
  }
  get term(): number {
    return this.#term;
  }
  /** The term of the last applied entry: what etcd reports as raft_term in headers and Status. */
  get appliedTerm(): number {
    return this.#appliedTerm;
  }
  get lead(): NodeId {
    return this.#lead;
  }
  get isLeader(): boolean {
    return this.#role === StateRole.Leader;
  }
  get rawNode(): RawNodeApi {
    return this.#o.rawNode;
  }

  start(): void {
    assert(this.#timer === null, 'raft node started twice');
    this.#timer = setInterval(() => {
      this.#o.rawNode.tick();
      this.#schedule();
    }, this.#o.tickMs);
    this.#schedule();
  }

  /** Advances the election clock without waiting, as etcd does for a single-member cluster at start. */
  fastForwardTicks(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.#o.rawNode.tick();
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Throws ProposalDroppedError when the core refuses it. */
  propose(data: Uint8Array): void {
    this.#o.rawNode.propose(data);
    this.#schedule();
  }

  readIndex(context: Uint8Array): void {
    this.#o.rawNode.readIndex(context);
    this.#schedule();
  }

  step(message: Message): void {
    if (this.#stopped) return;
    if (message.type === MessageType.Prop && this.#o.acceptForwardedProposal) {
      const accept = this.#o.acceptForwardedProposal;
      const entries = message.entries.filter((e) => e.type !== EntryType.Normal || accept(e.data));
      if (entries.length === 0) return;
      if (entries.length < message.entries.length) message = { ...message, entries };
    }
    this.#o.rawNode.step(message);
    this.#schedule();
  }

  /** Lets the caller touch the core (conf changes, transfers) and have the result processed. */
  withRawNode<T>(fn: (rn: RawNodeApi) => T): T {
    const result = fn(this.#o.rawNode);
    this.#schedule();
    return result;
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#stopped) this.#drain();
    });
  }

  #drain(): void {
    if (this.#busy) return;
    const rn = this.#o.rawNode;
    // Bounded so that a flood of work cannot starve timers and the network for long.
    for (let turns = 0; turns < 64 && rn.hasReady(); turns++) {
      const rd = rn.ready();
      if (rd.snapshot) {
        this.#installThenHandle(rd);
        return;
      }
      if (rd.mustSync && !this.#o.unsafeNoFsync && (rd.entries.length > 0 || rd.hardState)) {
        this.#persistThenHandle(rd);
        return;
      }
      this.#handleReady(rd);
      rn.advance();
    }
    if (rn.hasReady()) this.#schedule();
  }

  /**
   * The fsync runs off the event loop: meanwhile clients keep sending, proposals pile up in the core, and
   * the next Ready carries them all to one write and one sync.
   */
  #persistThenHandle(rd: Ready): void {
    this.#busy = true;
    this.#beginReady(rd);
    this.#o.wal.saveAsync({ hardState: rd.hardState, entries: rd.entries, mustSync: true }).then(
      () => {
        this.#busy = false;
        if (this.#stopped) return;
        this.#finishReady(rd);
        this.#o.rawNode.advance();
        this.#schedule();
      },
      (err: unknown) => {
        // A failed fsync leaves the log's durability unknown: nothing may be acknowledged from here on.
        this.#o.log.error('failed to sync the WAL; stopping', { error: String(err) });
        this.#stopped = true;
        this.#o.events.onFatal?.(err);
      },
    );
  }

  /** A snapshot replaces the whole state: nothing else of this Ready may happen before it is in place. */
  #installThenHandle(rd: Ready): void {
    this.#busy = true;
    const snapshot = rd.snapshot!;
    this.#o.stateMachine.applySnapshot(snapshot).then(
      () => {
        this.#busy = false;
        if (this.#stopped) return;
        this.#recordSnapshot(snapshot);
        this.#handleReady(rd);
        this.#o.rawNode.advance();
        this.#schedule();
      },
      (err: unknown) => {
        // The backend may be half replaced: stop rather than serve from it; a restart recovers.
        this.#o.log.error('failed to install a snapshot from the leader; stopping', { error: String(err) });
        this.#stopped = true;
        this.#o.events.onFatal?.(err);
      },
    );
  }

  #handleReady(rd: Ready): void {
    this.#beginReady(rd);
    if (rd.entries.length > 0 || rd.hardState) {
      this.#o.wal.save({ hardState: rd.hardState, entries: rd.entries, mustSync: rd.mustSync && !this.#o.unsafeNoFsync });
    }
    this.#finishReady(rd);
  }

  /** Before the Ready's writes are durable: state changes, and a leader's messages. */
  #beginReady(rd: Ready): void {
    if (rd.softState) this.#noteSoftState(rd.softState, rd.hardState?.term ?? this.#term);
    if (rd.hardState) {
      this.#term = rd.hardState.term;
      this.#committedIndex = rd.hardState.commit;
    }
    // A leader's messages (appends, heartbeats) do not depend on its own disk write; sending first
    // overlaps the follower round trip with our fsync.
    this.#sentEarly = this.#role === StateRole.Leader;
    if (this.#sentEarly) this.#send(rd.messages);
  }

  /** Once the Ready's writes are durable: raft's log copy, a follower's messages, apply, reads. */
  #finishReady(rd: Ready): void {
    const o = this.#o;
    const leader = this.#sentEarly;
    if (rd.hardState) o.logStore.setHardState(rd.hardState);
    if (rd.entries.length > 0) o.logStore.append(rd.entries);
    if (!leader) this.#send(rd.messages);
    if (rd.committedEntries.length > 0) this.#apply(rd.committedEntries);
    if (rd.readStates.length > 0) o.events.onReadStates?.(rd.readStates);
  }

  #noteSoftState(ss: SoftState, term: number): void {
    const changed = ss.lead !== this.#lead || ss.role !== this.#role;
    this.#lead = ss.lead;
    this.#role = ss.role;
    this.#term = term;
    if (changed) this.#o.events.onSoftState?.(ss, term);
  }

  /** The backend already holds the snapshot's state; record it so a restart starts from it. */
  #recordSnapshot(snapshot: Snapshot): void {
    const o = this.#o;
    // The state travelled as the backend file; the snap file keeps only what raft needs.
    const meta: Snapshot = { data: new Uint8Array(0), metadata: snapshot.metadata };
    o.snapshotter.save(meta);
    o.wal.saveSnapshotMarker({ index: snapshot.metadata.index, term: snapshot.metadata.term });
    if (o.maxSnapshots > 0) o.snapshotter.purge(o.maxSnapshots);
    o.logStore.applySnapshot(meta);
    this.#appliedIndex = snapshot.metadata.index;
    this.#appliedTerm = snapshot.metadata.term;
    this.#snapshotIndex = snapshot.metadata.index;
    o.events.onApplied?.(this.#appliedIndex);
    o.log.info('applied incoming snapshot', { 'snapshot-index': snapshot.metadata.index });
  }

  /** Snapshot messages carry the backend, read asynchronously; everything else goes out at once. */
  #send(messages: readonly Message[]): void {
    if (messages.length === 0) return;
    if (!messages.some((m) => m.type === MessageType.Snap)) {
      this.#o.transport.send(messages);
      return;
    }
    this.#o.transport.send(messages.filter((m) => m.type !== MessageType.Snap));
    for (const m of messages) {
      if (m.type !== MessageType.Snap) continue;
      this.#o.stateMachine.prepareSnapshotMessage(m).then(
        (full) => this.#o.transport.send([full]),
        (err: unknown) => {
          this.#o.log.warn('failed to prepare a snapshot for a follower', { to: m.to.toString(16), error: String(err) });
          this.withRawNode((rn) => rn.reportSnapshot(m.to, 'failure'));
        },
      );
    }
  }

  #apply(entries: readonly Entry[]): void {
    const first = entries[0];
    assert(first !== undefined && first.index <= this.#appliedIndex + 1,
      () => `committed entry ${first?.index} leaves a gap after applied index ${this.#appliedIndex}`);
    const fresh = first.index > this.#appliedIndex ? entries : entries.filter((e) => e.index > this.#appliedIndex);
    if (fresh.length === 0) return;
    this.#o.stateMachine.applyEntries(fresh);
    this.#appliedIndex = fresh[fresh.length - 1]!.index;
    this.#appliedTerm = fresh[fresh.length - 1]!.term;
    this.#o.events.onApplied?.(this.#appliedIndex);
    if (this.#appliedIndex - this.#snapshotIndex >= this.#o.snapshotCount) this.#takeSnapshot();
  }

  #takeSnapshot(): void {
    if (this.#snapshotting) return;
    this.#snapshotting = true;
    const index = this.#appliedIndex;
    const confState = this.#o.stateMachine.confState();
    // The state itself lives in the backend: it must be durable up to `index` before a snapshot file
    // claims it and before the log below it goes away.
    this.#o.stateMachine.flush().then(
      () => {
        this.#snapshotting = false;
        if (!this.#stopped) this.#saveSnapshot(index, confState);
      },
      (err: unknown) => {
        this.#snapshotting = false;
        this.#o.log.error('failed to make the backend durable for a snapshot', { error: String(err) });
      },
    );
  }

  #saveSnapshot(index: number, confState: ConfState): void {
    const o = this.#o;
    if (index <= this.#snapshotIndex) return;
    const snap = o.logStore.createSnapshot(index, { confState, data: new Uint8Array(0) });
    o.snapshotter.save(snap);
    o.wal.saveSnapshotMarker({ index, term: snap.metadata.term });
    if (o.maxSnapshots > 0) o.snapshotter.purge(o.maxSnapshots);
    this.#snapshotIndex = index;
    const compactTo = index - o.catchUpEntries;
    if (compactTo > o.logStore.firstIndex()) o.logStore.compact(compactTo);
    o.wal.releaseBefore(Math.max(1, compactTo));
    o.log.info('saved snapshot', { 'snapshot-index': index });
  }
}
