/** Small helpers shared by the raft modules: sizes, message construction, message classes. */
import type { Entry, Message, MessageType, NodeId, Snapshot } from './types.js';
import { MessageType as MT, NONE } from './types.js';

/** Rough protobuf framing of an entry (tags, varints of term/index/type): keeps size limits honest for tiny payloads. */
export const ENTRY_OVERHEAD_BYTES = 12;
/** "No limit" for byte budgets. */
export const NO_LIMIT = Number.MAX_SAFE_INTEGER;
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);
export const NO_ENTRIES: readonly Entry[] = Object.freeze([]) as readonly Entry[];

export function entrySizeBytes(e: Entry): number {
  return e.data.length + ENTRY_OVERHEAD_BYTES;
}

/** Sum of payload bytes: what flow control and the uncommitted-size cap count. */
export function payloadsSizeBytes(ents: readonly Entry[], lo = 0, hi = ents.length): number {
  let n = 0;
  for (let i = lo; i < hi; i++) n += (ents[i] as Entry).data.length;
  return n;
}

export function entsSizeBytes(ents: readonly Entry[]): number {
  let n = 0;
  for (let i = 0; i < ents.length; i++) n += entrySizeBytes(ents[i] as Entry);
  return n;
}

/**
 * How many leading entries fit in maxBytes; at least one when the array is non-empty, so a single
 * entry larger than the budget still makes progress.
 */
export function countWithinSize(ents: readonly Entry[], maxBytes: number): number {
  if (ents.length === 0) return 0;
  let size = entrySizeBytes(ents[0] as Entry);
  let n = 1;
  while (n < ents.length) {
    size += entrySizeBytes(ents[n] as Entry);
    if (size > maxBytes) break;
    n++;
  }
  return n;
}

/** Leading entries within maxBytes; returns the same array (no copy) when all of them fit. */
export function limitSize<T extends readonly Entry[]>(ents: T, maxBytes: number): T {
  const n = countWithinSize(ents, maxBytes);
  return (n === ents.length ? ents : ents.slice(0, n)) as T;
}

export interface MessageFields {
  type: MessageType;
  to: NodeId;
  from?: NodeId;
  term?: number;
  logTerm?: number;
  index?: number;
  entries?: readonly Entry[];
  commit?: number;
  snapshot?: Snapshot | null;
  reject?: boolean;
  rejectHint?: number;
  context?: Uint8Array;
}

/** Builds a Message with every field present, in one fixed order (one hidden class for all messages). */
export function makeMessage(f: MessageFields): Message {
  return {
    type: f.type,
    to: f.to,
    from: f.from ?? NONE,
    term: f.term ?? 0,
    logTerm: f.logTerm ?? 0,
    index: f.index ?? 0,
    entries: f.entries ?? NO_ENTRIES,
    commit: f.commit ?? 0,
    snapshot: f.snapshot ?? null,
    reject: f.reject ?? false,
    rejectHint: f.rejectHint ?? 0,
    context: f.context ?? EMPTY_BYTES,
  };
}

/** Messages the host never sends over the wire: they are local inputs to the state machine. */
export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MT.Hup ||
    t === MT.Beat ||
    t === MT.Unreachable ||
    t === MT.SnapStatus ||
    t === MT.CheckQuorum
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MT.AppResp ||
    t === MT.VoteResp ||
    t === MT.HeartbeatResp ||
    t === MT.Unreachable ||
    t === MT.PreVoteResp
  );
}

export function voteRespMsgType(t: MessageType): MessageType {
  if (t === MT.Vote) return MT.VoteResp;
  if (t === MT.PreVote) return MT.PreVoteResp;
  throw new Error(`not a vote message: ${t}`);
}

/** A Map key for opaque byte contexts (read index requests). */
export function bytesKey(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i] as number);
  return s;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Node ids in ascending order (bigint-safe comparator). */
export function sortIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
