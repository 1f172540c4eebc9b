/**
 * RawNode: the host's handle on the raft state machine (the contract in contract.ts). It turns calls
 * into messages for Raft, packs what Raft produced into a Ready, and on advance() feeds back what the
 * host persisted and applied.
 */
import { assert } from '../base/assert.js';
import type { ProgressStatus, RaftConfig, RaftStatus, RawNodeApi, Ready, SoftState } from './contract.js';
import { ProposalDroppedError, StateRole } from './contract.js';
import { encodeConfChangeV2 } from './conf-change.js';
import type { RaftExtraConfig } from './raft.js';
import { Raft } from './raft.js';
import { flushPendingAppends, proposeData } from './raft-leader.js';
import type { ConfChangeV2, ConfState, Entry, HardState, Message, NodeId, Snapshot } from './types.js';
import { ConfChangeTransition, ConfChangeType, EntryType, MessageType as MT, NONE } from './types.js';
import { EMPTY_BYTES, entsSizeBytes, isLocalMsg, isResponseMsg, makeMessage } from './util.js';

export type RawNodeConfig = RaftConfig & RaftExtraConfig;

/** What a Ready handed out, to be acknowledged by advance(). */
interface Handed {
  readonly readyTerm: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly snapshotIndex: number;
  readonly committed: readonly Entry[];
  readonly committedBytes: number;
  /** Messages to self that wait for the Ready to be durable (own vote, own append ack). */
  readonly selfSteps: readonly Message[];
}

export interface BootstrapPeer {
  readonly id: NodeId;
  /** Opaque, carried in the bootstrap conf change entry (the server puts the member's attributes here). */
  readonly context?: Uint8Array;
}

export class RawNode implements RawNodeApi {
  readonly #raft: Raft;
  #prevSoftSt: SoftState;
  #prevHardSt: HardState;
  #handed: Handed | null = null;

  constructor(config: RawNodeConfig) {
    this.#raft = new Raft(config);
    this.#prevSoftSt = this.#raft.softState();
    this.#prevHardSt = this.#raft.hardState();
  }

  /**
   * Starts a brand-new cluster on an empty storage: one committed conf change entry (term 1) per peer,
   * already applied to the configuration; the host sees them in the first Ready as entries to persist
   * and as committed entries (whose applyConfChange is then a no-op).
   */
  bootstrap(peers: readonly BootstrapPeer[]): void {
    const r = this.#raft;
    assert(peers.length > 0, 'must provide at least one peer to bootstrap');
    assert(r.raftLog.storage.lastIndex() === 0, "can't bootstrap a nonempty storage");
    // Nothing persisted yet: the first Ready carries the hard state.
    this.#prevHardSt = { term: 0, vote: NONE, commit: 0 };
    r.becomeFollower(1, NONE);
    const ents: Entry[] = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChangeV2,
      data: encodeConfChangeV2({
        transition: ConfChangeTransition.Auto,
        changes: [{ type: ConfChangeType.AddNode, nodeId: p.id }],
        context: p.context ?? EMPTY_BYTES,
      }),
    }));
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length;
    for (const p of peers) {
      r.applyConfChange({ transition: ConfChangeTransition.Auto, changes: [{ type: ConfChangeType.AddNode, nodeId: p.id }], context: EMPTY_BYTES });
    }
  }

  tick(): void {
    this.#raft.tick();
  }

  campaign(): void {
    this.#raft.step(makeMessage({ type: MT.Hup, to: NONE, from: this.#raft.id }));
  }

  propose(data: Uint8Array): void {
    if (this.#raft.state === StateRole.Leader) {
      proposeData(this.#raft, [data]);
      return;
    }
    const entries = [{ term: 0, index: 0, type: EntryType.Normal, data }];
    this.#raft.step(makeMessage({ type: MT.Prop, to: NONE, from: this.#raft.id, entries }));
  }

  /**
   * Proposes several entries at once: one broadcast instead of one per entry. All are appended or none
   * (ProposalDroppedError).
   */
  proposeMany(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    // On the leader the entries are created once, already stamped; elsewhere they travel in a MsgProp.
    if (this.#raft.state === StateRole.Leader) {
      proposeData(this.#raft, data);
      return;
    }
    const entries: Entry[] = new Array<Entry>(data.length);
    for (let i = 0; i < data.length; i++) entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: data[i] as Uint8Array };
    this.#raft.step(makeMessage({ type: MT.Prop, to: NONE, from: this.#raft.id, entries }));
  }

  proposeConfChange(cc: ConfChangeV2): void {
    const entries = [{ term: 0, index: 0, type: EntryType.ConfChangeV2, data: encodeConfChangeV2(cc) }];
    this.#raft.step(makeMessage({ type: MT.Prop, to: NONE, from: this.#raft.id, entries }));
  }

  applyConfChange(cc: ConfChangeV2): ConfState {
    return this.#raft.applyConfChange(cc);
  }

  step(m: Message): void {
    const r = this.#raft;
    // Local messages never travel between nodes.
    if (isLocalMsg(m.type)) throw new Error(`raft: cannot step raft local message ${m.type} from ${m.from}`);
    // Responses from nodes no longer (or not yet) in the configuration are ignored.
    if (isResponseMsg(m.type) && r.trk.get(m.from) === undefined) return;
    try {
      r.step(m);
    } catch (err) {
      // A forwarded proposal the leader cannot take: the proposer times out, as if it were lost.
      if (err instanceof ProposalDroppedError && m.type === MT.Prop && m.from !== r.id) return;
      throw err;
    }
  }

  hasReady(): boolean {
    const r = this.#raft;
    if (r.appendsPending) return true;
    if (!softStateEqual(r.softState(), this.#prevSoftSt)) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.#prevHardSt)) return true;
    if (r.raftLog.hasNextUnstableSnapshot()) return true;
    if (r.msgs.length > 0 || r.msgsAfterAppend.length > 0) return true;
    if (r.raftLog.hasNextUnstableEnts() || r.raftLog.hasNextCommittedEnts(true)) return true;
    return r.readStates.length > 0;
  }

  /** The next batch of work for the host; advance() must follow before the next ready(). */
  ready(): Ready {
    assert(this.#handed === null, 'ready() called again before advance()');
    const r = this.#raft;
    flushPendingAppends(r);
    const entries = r.raftLog.nextUnstableEnts();
    // The host persists entries before applying, so committed entries may include unstable ones.
    const committedEntries = r.raftLog.nextCommittedEnts(true);
    const ss = r.softState();
    const softState = softStateEqual(ss, this.#prevSoftSt) ? null : ss;
    const hs = r.hardState();
    const hardState = hardStateEqual(hs, this.#prevHardSt) ? null : hs;
    const snapshot = r.raftLog.nextUnstableSnapshot();
    const { messages, selfSteps } = splitMessages(r);
    const rd: Ready = {
      softState,
      hardState,
      readStates: r.readStates,
      entries,
      snapshot,
      committedEntries,
      messages,
      // A snapshot must be durable before the follower acknowledges it, like entries.
      mustSync:
        entries.length !== 0 || snapshot !== null || hs.vote !== this.#prevHardSt.vote || hs.term !== this.#prevHardSt.term,
    };
    this.#accept(rd, selfSteps);
    return rd;
  }

  #accept(rd: Ready, selfSteps: Message[]): void {
    const r = this.#raft;
    if (rd.softState !== null) this.#prevSoftSt = rd.softState;
    if (rd.hardState !== null) this.#prevHardSt = rd.hardState;
    if (rd.readStates.length > 0) r.readStates = [];
    r.msgs = [];
    r.msgsAfterAppend = [];
    r.raftLog.acceptUnstable();
    const ce = rd.committedEntries;
    const committedBytes = ce.length > 0 ? entsSizeBytes(ce) : 0;
    if (ce.length > 0) r.raftLog.acceptApplying((ce[ce.length - 1] as Entry).index, committedBytes, true);
    const last = rd.entries.length > 0 ? (rd.entries[rd.entries.length - 1] as Entry) : null;
    // The leader's own acknowledgement of the entries it is persisting (one per Ready, not per append).
    if (last !== null && r.state === StateRole.Leader) {
      selfSteps.push(makeMessage({ type: MT.AppResp, to: r.id, from: r.id, term: r.term, index: last.index }));
    }
    this.#handed = {
      readyTerm: r.term,
      lastIndex: last === null ? 0 : last.index,
      lastTerm: last === null ? 0 : last.term,
      snapshotIndex: rd.snapshot === null ? 0 : rd.snapshot.metadata.index,
      committed: ce,
      committedBytes,
      selfSteps,
    };
  }

  /** The host persisted the last Ready, sent its messages and applied its committed entries. */
  advance(): void {
    const h = this.#handed;
    assert(h !== null, 'advance() called without a preceding ready()');
    this.#handed = null;
    const r = this.#raft;
    for (const m of h.selfSteps) r.step(m);
    r.onStorageAppended({ readyTerm: h.readyTerm, index: h.lastIndex, logTerm: h.lastTerm, snapshotIndex: h.snapshotIndex });
    r.onApplied(h.committed, h.committedBytes);
  }

  /** context must be non-empty and unique among pending reads: it is how the answer finds its request. */
  readIndex(context: Uint8Array): void {
    assert(context.length > 0, 'readIndex needs a non-empty request context');
    this.#raft.step(makeMessage({ type: MT.ReadIndex, to: NONE, context }));
  }

  transferLeader(transferee: NodeId): void {
    this.#raft.step(makeMessage({ type: MT.TransferLeader, to: NONE, from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.#raft.step(makeMessage({ type: MT.Unreachable, to: NONE, from: id }));
  }

  reportSnapshot(id: NodeId, status: 'finish' | 'failure'): void {
    this.#raft.step(makeMessage({ type: MT.SnapStatus, to: NONE, from: id, reject: status === 'failure' }));
  }

  status(): RaftStatus {
    const r = this.#raft;
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (r.state === StateRole.Leader) {
      progress = new Map();
      for (const id of r.trk.ids()) {
        const pr = r.trk.get(id);
        if (pr === undefined) continue;
        progress.set(id, { match: pr.match, next: pr.next, state: pr.stateName(), isLearner: pr.isLearner, recentActive: pr.recentActive });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: r.trk.confState(),
      progress,
    };
  }

  /** For tests and tools: the state machine behind this node. Not part of the host contract. */
  get raft(): Raft {
    return this.#raft;
  }

  /** The snapshot the log currently starts from (unstable or stored). */
  snapshot(): Snapshot {
    return this.#raft.raftLog.snapshot();
  }
}

function splitMessages(r: Raft): { messages: Message[]; selfSteps: Message[] } {
  const after = r.msgsAfterAppend;
  const selfSteps: Message[] = [];
  if (after.length === 0) return { messages: r.msgs, selfSteps };
  const messages = r.msgs;
  for (const m of after) {
    if (m.to === r.id) selfSteps.push(m);
    else messages.push(m);
  }
  return { messages, selfSteps };
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.role === b.role;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}
