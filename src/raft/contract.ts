/**
 * The contract between the pure raft core and its hosts (the server's raft node and the simulator).
 * Both drive the very same core through this interface.
 *
 * The host loop, once per turn:
 *   1. tick() on its timer; step() every message received; propose() / proposeConfChange() / readIndex().
 *   2. if hasReady(): rd = ready();
 *      - persist rd.snapshot (if any), rd.entries and rd.hardState to stable storage, fsync if rd.mustSync;
 *        a leader may send rd.messages in parallel with its own persist; a follower/candidate sends them
 *        only after the persist (votes and appends must be durable before they are acknowledged);
 *      - apply rd.committedEntries in order (a conf change entry: applyConfChange() and keep the result);
 *      - hand rd.readStates to the waiting readers once applied index >= their index;
 *      - advance().
 */
import type {
  ConfChangeV2,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  Snapshot,
} from './types.js';

export const StateRole = {
  Follower: 0,
  Candidate: 1,
  Leader: 2,
  PreCandidate: 3,
} as const;
export type StateRole = (typeof StateRole)[keyof typeof StateRole];

/** Volatile state, reported when it changes; never persisted. */
export interface SoftState {
  readonly lead: NodeId;
  readonly role: StateRole;
}

/** The answer to readIndex(): once applied index >= index, a read tagged with context is linearizable. */
export interface ReadState {
  readonly index: number;
  readonly context: Uint8Array;
}

export interface Ready {
  /** Set when it changed since the last Ready. */
  readonly softState: SoftState | null;
  /** Set when it changed since the last Ready; must be persisted. */
  readonly hardState: HardState | null;
  readonly readStates: readonly ReadState[];
  /** Entries to append to stable storage (may overwrite a conflicting tail). */
  readonly entries: readonly Entry[];
  /** A snapshot to persist and install, or null. */
  readonly snapshot: Snapshot | null;
  /** Entries committed and ready to apply, in order. */
  readonly committedEntries: readonly Entry[];
  /** Messages to send after entries/hardState are durable (see the loop above). */
  readonly messages: readonly Message[];
  /** Whether hardState/entries must be fsynced before messages are sent. */
  readonly mustSync: boolean;
}

/**
 * Raft's read-only view of stable storage. The host appends to it after persisting a Ready.
 * entries(lo, hi, maxBytes) returns [lo, hi), at least one entry if any is in range even above maxBytes.
 * Throws StorageError 'compacted' for lo <= snapshot index, 'unavailable' for entries not yet there.
 */
export interface RaftStorage {
  initialState(): { hardState: HardState; confState: ConfState };
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export class StorageError extends Error {
  constructor(
    readonly reason: 'compacted' | 'unavailable' | 'snapshot-temporarily-unavailable' | 'snapshot-out-of-date',
  ) {
    super(`raft storage: ${reason}`);
    this.name = 'StorageError';
  }
}

/** Randomness injected by the host: seeded in the simulator and tests, crypto-seeded in production. */
export interface Rng {
  /** An integer in [0, n). */
  intn(n: number): number;
}

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: RaftStorage;
  readonly rng: Rng;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [e, 2e)). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Index of the last entry already applied (on restart: the state machine's consistent index). */
  readonly appliedIndex: number;
  readonly maxSizePerMsgBytes: number;
  readonly maxInflightMsgs: number;
  readonly maxInflightBytes: number;
  /** Cap on bytes of proposals not yet committed; past it proposals are dropped (0 = no cap). */
  readonly maxUncommittedEntriesBytes: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** 'safe' = ReadIndex confirmed by a heartbeat round; 'lease-based' requires checkQuorum. */
  readonly readOnlyOption: 'safe' | 'lease-based';
  /** Followers drop proposals instead of forwarding them to the leader. */
  readonly disableProposalForwarding: boolean;
}

/** A proposal the core refused (no leader, transfer in progress, uncommitted cap, pending conf change). */
export class ProposalDroppedError extends Error {
  constructor(reason: string) {
    super(`raft proposal dropped: ${reason}`);
    this.name = 'ProposalDroppedError';
  }
}

export const ProgressStateName = ['probe', 'replicate', 'snapshot'] as const;
export type ProgressStateName = (typeof ProgressStateName)[number];

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressStateName;
  readonly isLearner: boolean;
  /** Whether the leader heard from this peer since the last check-quorum round. */
  readonly recentActive: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly leadTransferee: NodeId;
  readonly config: ConfState;
  /** Only on the leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
}

/** What the host calls. Implemented by RawNode in raw-node.ts. */
export interface RawNodeApi {
  tick(): void;
  campaign(): void;
  /** Throws ProposalDroppedError when the proposal cannot be accepted. */
  propose(data: Uint8Array): void;
  proposeConfChange(cc: ConfChangeV2): void;
  /** Apply a committed conf change entry; returns the new configuration to persist with the state. */
  applyConfChange(cc: ConfChangeV2): ConfState;
  step(message: Message): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(): void;
  readIndex(context: Uint8Array): void;
  transferLeader(transferee: NodeId): void;
  reportUnreachable(id: NodeId): void;
  reportSnapshot(id: NodeId, status: 'finish' | 'failure'): void;
  status(): RaftStatus;
}
