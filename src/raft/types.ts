/**
 * The data the raft core exchanges with its host: log entries, durable state, snapshots, messages.
 * Node ids are 64-bit (bigint); indexes and terms are safe integers (numbers), checked at the boundary
 * where they are decoded (WAL, peer transport).
 */

export type NodeId = bigint;
/** "No node": no vote cast, no leader known. */
export const NONE: NodeId = 0n;

export const EntryType = {
  Normal: 0,
  ConfChange: 1,
  ConfChangeV2: 2,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  /** Opaque to raft: a proposal's payload, or an encoded conf change. Empty for the leader's no-op. */
  readonly data: Uint8Array;
}

/** What must reach stable storage before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** Voters of the outgoing configuration while in a joint configuration; empty otherwise. */
  readonly votersOutgoing: readonly NodeId[];
  /** Voters that become learners when the joint configuration is left. */
  readonly learnersNext: readonly NodeId[];
  readonly autoLeave: boolean;
}

export interface SnapshotMetadata {
  readonly confState: ConfState;
  readonly index: number;
  readonly term: number;
}

export interface Snapshot {
  /** The state machine's serialized state; opaque to raft. */
  readonly data: Uint8Array;
  readonly metadata: SnapshotMetadata;
}

export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  UpdateNode: 2,
  AddLearnerNode: 3,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

export const ConfChangeTransition = {
  /** Single-step change when possible, joint consensus otherwise; leave the joint config automatically. */
  Auto: 0,
  JointImplicit: 1,
  JointExplicit: 2,
} as const;
export type ConfChangeTransition = (typeof ConfChangeTransition)[keyof typeof ConfChangeTransition];

/** A membership change. `context` is opaque to raft (the server puts the member's attributes there). */
export interface ConfChangeV2 {
  readonly transition: ConfChangeTransition;
  readonly changes: readonly ConfChangeSingle[];
  readonly context: Uint8Array;
}

export const MessageType = {
  Hup: 0,
  Beat: 1,
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  Snap: 7,
  Heartbeat: 8,
  HeartbeatResp: 9,
  Unreachable: 10,
  SnapStatus: 11,
  CheckQuorum: 12,
  TransferLeader: 13,
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
  PreVote: 17,
  PreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** Term of the entry at `index` (App), or of the candidate's last entry (Vote, PreVote). */
  readonly logTerm: number;
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot: Snapshot | null;
  readonly reject: boolean;
  readonly rejectHint: number;
  /** Opaque: ReadIndex request context, or the campaign type of a transfer-triggered vote. */
  readonly context: Uint8Array;
}
