/**
 * The raft state machine (after etcd-io/raft): roles, terms and votes, elections (with PreVote and
 * CheckQuorum), and the dispatch of every message to the step function of the current role. It does no
 * I/O: outgoing messages accumulate in msgs / msgsAfterAppend and RawNode hands them to the host.
 *
 * Fields are public for the sibling modules (raft-leader.ts, raft-follower.ts, raw-node.ts); nothing
 * outside src/raft uses this class directly.
 */
import { assert } from '../base/assert.js';
import type { RaftConfig, ReadState, Rng, SoftState, StateRole as StateRoleT } from './contract.js';
import { StateRole } from './contract.js';
import { enterJoint, isLeaveJoint } from './conf-change.js';
import type { ChangeResult } from './confchange/changer.js';
import { Changer } from './confchange/changer.js';
import { restoreConfState } from './confchange/restore.js';
import { RaftLog } from './log.js';
import type { Logger } from './logger.js';
import { SILENT_LOGGER } from './logger.js';
import { VoteResult } from './quorum/quorum.js';
import { ReadOnly } from './read-only.js';
import { stepCandidate, stepFollower } from './raft-follower.js';
import { bcastAppend, maybeCommit, maybeSendAppend, proposeLeaveJoint, stepLeader } from './raft-leader.js';
import { ProgressState } from './tracker/progress.js';
import { ProgressTracker } from './tracker/tracker.js';
import type { ConfChangeV2, ConfState, Entry, HardState, Message, NodeId } from './types.js';
import { EntryType, MessageType as MT, NONE } from './types.js';
import type { MessageFields } from './util.js';
import { bytesEqual, makeMessage, payloadsSizeBytes, voteRespMsgType } from './util.js';
import { describeMessageType, describeRole } from './describe.js';

/** Context of a vote request caused by a leader transfer: it overrides the leader lease. */
export const CAMPAIGN_TRANSFER: Uint8Array = new TextEncoder().encode('CampaignTransfer');

export type CampaignType = 'pre-election' | 'election' | 'transfer';

/** Optional knobs beyond the contract's RaftConfig. */
export interface RaftExtraConfig {
  readonly logger?: Logger;
  /** Bytes of committed entries handed out per Ready (and being applied at once). */
  readonly maxCommittedSizePerReadyBytes?: number;
}

export const DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES = 64 * 1024 * 1024;

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSizeBytes: number;
  readonly maxUncommittedSizeBytes: number;
  readonly trk: ProgressTracker;
  state: StateRoleT = StateRole.Follower;
  /** This node is a learner in the current configuration (it never campaigns). */
  isLearner = false;
  /** Messages that may leave as soon as the host has them. */
  msgs: Message[] = [];
  /** Messages that depend on the unstable state being durable (votes, append acks, self-acks). */
  msgsAfterAppend: Message[] = [];
  lead: NodeId = NONE;
  /** Target of a leader transfer in progress, or NONE. */
  leadTransferee: NodeId = NONE;
  /** A conf change at an index > applied is pending: refuse new ones until it is applied. */
  pendingConfIndex = 0;
  /** Payload bytes appended by this leader and not yet applied (capped by maxUncommittedSizeBytes). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** In [electionTimeout, 2 * electionTimeout), drawn anew whenever the node changes term or role. */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  /** Proposals were appended and not yet broadcast (see flushPendingAppends). */
  appendsPending = false;
  /** ReadIndex requests a new leader holds until it commits an entry of its own term. */
  pendingReadIndexMessages: Message[] = [];
  readonly logger: Logger;
  readonly #rng: Rng;
  #tickFn: () => void = () => this.tickElection();
  #stepFn: (m: Message) => void = (m) => stepFollower(this, m);

  constructor(c: RaftConfig & RaftExtraConfig) {
    validateConfig(c);
    this.id = c.id;
    this.logger = c.logger ?? SILENT_LOGGER;
    this.#rng = c.rng;
    this.raftLog = new RaftLog(c.storage, {
      logger: this.logger,
      maxApplyingEntsBytes: c.maxCommittedSizePerReadyBytes ?? Math.max(c.maxSizePerMsgBytes, DEFAULT_MAX_COMMITTED_SIZE_PER_READY_BYTES),
    });
    this.maxMsgSizeBytes = c.maxSizePerMsgBytes;
    this.maxUncommittedSizeBytes = c.maxUncommittedEntriesBytes === 0 ? Number.MAX_SAFE_INTEGER : c.maxUncommittedEntriesBytes;
    this.trk = new ProgressTracker(c.maxInflightMsgs, c.maxInflightBytes);
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.heartbeatTimeout = c.heartbeatTicks;
    this.electionTimeout = c.electionTicks;
    this.disableProposalForwarding = c.disableProposalForwarding;
    this.readOnly = new ReadOnly(c.readOnlyOption);
    const { hardState, confState } = c.storage.initialState();
    const result = restoreConfState(this.trk, this.raftLog.lastIndex(), confState);
    this.switchToConfig(result);
    if (hardState.term !== 0 || hardState.vote !== NONE || hardState.commit !== 0) this.#loadState(hardState);
    if (c.appliedIndex > 0) this.raftLog.appliedTo(c.appliedIndex, 0);
    this.becomeFollower(this.term, NONE);
    this.logger.info(
      `newRaft ${this.id} [peers: [${this.trk.voterNodes().join(',')}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  #loadState(hs: HardState): void {
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () => `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  softState(): SoftState {
    return { lead: this.lead, role: this.state };
  }

  /** Queues a message; `from` defaults to this node and `term` to the current term (see below). */
  send(f: MessageFields): void {
    if (f.from === undefined || f.from === NONE) f.from = this.id;
    const t = f.type;
    if (t === MT.Vote || t === MT.VoteResp || t === MT.PreVote || t === MT.PreVoteResp) {
      assert(f.term !== undefined && f.term !== 0, () => `term should be set when sending ${describeMessageType(t)}`);
    } else {
      assert(f.term === undefined || f.term === 0, () => `term should not be set when sending ${describeMessageType(t)} (was ${f.term})`);
      // Proposals and read requests forwarded to the leader are local messages on arrival: no term.
      if (t !== MT.Prop && t !== MT.ReadIndex) f.term = this.term;
    }
    const m = makeMessage(f);
    // Votes and append acknowledgements must not leave before the state they vouch for is durable.
    if (t === MT.AppResp || t === MT.VoteResp || t === MT.PreVoteResp) {
      this.msgsAfterAppend.push(m);
    } else {
      assert(m.to !== this.id, () => `message should not be self-addressed when sending ${describeMessageType(t)}`);
      this.msgs.push(m);
    }
  }

  tick(): void {
    this.#tickFn();
  }

  tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MT.Hup, to: NONE, from: this.id }));
    }
  }

  tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MT.CheckQuorum, to: NONE, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateRole.Leader && this.leadTransferee !== NONE) {
        this.logger.info(`${this.id} [term ${this.term}] abort transferring leadership to ${this.leadTransferee} after an election timeout`);
        this.abortLeaderTransfer();
      }
    }
    if (this.state !== StateRole.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MT.Beat, to: NONE, from: this.id }));
    }
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.#rng.intn(this.electionTimeout);
  }

  /** Can become leader: a voter of the current config, not in the middle of installing a snapshot. */
  promotable(): boolean {
    const pr = this.trk.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasNextOrInProgressSnapshot();
  }

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    for (const id of this.trk.ids()) {
      const pr = this.trk.get(id);
      if (pr === undefined) continue;
      pr.resetState(ProgressState.Probe);
      pr.match = id === this.id ? last : 0;
      pr.next = last + 1;
      pr.sentCommit = 0;
      pr.recentActive = false;
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.#stepFn = (m) => stepFollower(this, m);
    this.reset(term);
    this.#tickFn = () => this.tickElection();
    this.lead = lead;
    this.state = StateRole.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    assert(this.state !== StateRole.Leader, 'invalid transition [leader -> candidate]');
    this.#stepFn = (m) => stepCandidate(this, m);
    this.reset(this.term + 1);
    this.#tickFn = () => this.tickElection();
    this.vote = this.id;
    this.state = StateRole.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  /** A pre-candidate changes neither term nor vote: a pre-election that fails leaves no trace. */
  becomePreCandidate(): void {
    assert(this.state !== StateRole.Leader, 'invalid transition [leader -> pre-candidate]');
    this.#stepFn = (m) => stepCandidate(this, m);
    this.trk.resetVotes();
    this.#tickFn = () => this.tickElection();
    this.lead = NONE;
    this.state = StateRole.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    assert(this.state !== StateRole.Follower, 'invalid transition [follower -> leader]');
    this.#stepFn = (m) => stepLeader(this, m);
    this.reset(this.term);
    this.#tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.state = StateRole.Leader;
    const pr = this.trk.get(this.id);
    assert(pr !== undefined, 'leader without progress');
    pr.becomeReplicate();
    pr.recentActive = true;
    // Any entry past the commit index may be a conf change: refuse new ones until the log up to here
    // is applied (cheaper than scanning the uncommitted tail).
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term: committing it commits everything before it (§5.4.2) and tells
    // this leader its commit index (thesis §6.4).
    const ok = this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    assert(ok, 'empty entry was dropped');
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  /** Appends proposals stamped with this leader's term; false when the uncommitted-bytes cap refuses them. */
  appendEntries(ents: readonly Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    if (!this.increaseUncommittedSize(ents)) {
      this.logger.warn(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    const term = this.term;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i] as Entry;
      this.raftLog.appendOne({ term, index: li + 1 + i, type: e.type, data: e.data });
    }
    // The leader acknowledges its own entries once they are durable: RawNode steps one MsgAppResp
    // from itself for the last entry of each Ready when it is advanced (it sends itself no MsgApp).
    return true;
  }

  /** A leader's fast path for normal proposals: entries are created once, already stamped. */
  appendData(data: readonly Uint8Array[]): boolean {
    let s = 0;
    for (let i = 0; i < data.length; i++) s += (data[i] as Uint8Array).length;
    if (!this.#increaseUncommittedBytes(s)) {
      this.logger.warn(`${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    this.raftLog.appendNew(this.term, EntryType.Normal, data);
    return true;
  }

  increaseUncommittedSize(ents: readonly Entry[]): boolean {
    return this.#increaseUncommittedBytes(payloadsSizeBytes(ents));
  }

  #increaseUncommittedBytes(s: number): boolean {
    // An empty tail takes any proposal; empty entries always fit (new leader's entry, auto-leave).
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSizeBytes) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(s: number): void {
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  hup(t: CampaignType): void {
    if (this.state === StateRole.Leader) {
      this.logger.info(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(`${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`);
      return;
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  /** A committed but unapplied conf change would change who may vote: wait until it is applied. */
  hasUnappliedConfChanges(): boolean {
    const log = this.raftLog;
    if (log.applied >= log.committed) return false;
    const pageBytes = 1024 * 1024;
    let lo = log.applied + 1;
    const hi = log.committed + 1;
    while (lo < hi) {
      const ents = log.slice(lo, hi, pageBytes);
      for (const e of ents) if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) return true;
      lo += ents.length;
    }
    return false;
  }

  campaign(t: CampaignType): void {
    assert(this.promotable(), () => `${this.id} is unpromotable; campaign() should have been called`);
    let term: number;
    let voteMsg: typeof MT.Vote | typeof MT.PreVote;
    if (t === 'pre-election') {
      this.becomePreCandidate();
      voteMsg = MT.PreVote;
      // Pre-votes ask about the next term without moving to it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MT.Vote;
      term = this.term;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterNodes()) {
      if (id === this.id) {
        // The own vote counts once it is durable: a response to self, stepped on advance().
        this.send({ type: voteRespMsgType(voteMsg), to: id, term });
        continue;
      }
      this.logger.info(`${this.id} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${describeMessageType(voteMsg)} request to ${id} at term ${this.term}`);
      const f: MessageFields = { type: voteMsg, to: id, term, index: lastIndex, logTerm: lastTerm };
      if (t === 'transfer') f.context = CAMPAIGN_TRANSFER;
      this.send(f);
    }
  }

  poll(id: NodeId, t: MessageFields['type'], granted: boolean): { granted: number; rejected: number; result: VoteResult } {
    if (granted) this.logger.info(`${this.id} received ${describeMessageType(t)} from ${id} at term ${this.term}`);
    else this.logger.info(`${this.id} received ${describeMessageType(t)} rejection from ${id} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  /** Entry point for every message (from the network, the host, or this node itself). */
  step(m: Message): void {
    if (m.term === 0) {
      // A local message.
    } else if (m.term > this.term) {
      if (!this.#stepHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.#stepLowerTerm(m);
      return;
    }
    switch (m.type) {
      case MT.Hup:
        this.hup(this.preVote ? 'pre-election' : 'election');
        break;
      case MT.Vote:
      case MT.PreVote:
        this.#handleVoteRequest(m);
        break;
      default:
        this.#stepFn(m);
    }
  }

  /** Returns false when the message is to be ignored. */
  #stepHigherTerm(m: Message): boolean {
    if (m.type === MT.Vote || m.type === MT.PreVote) {
      const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
      const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
      if (!force && inLease) {
        // Thesis §4.2.3: a server that heard from a leader within the minimum election timeout neither
        // updates its term nor grants its vote, so a removed or partitioned server cannot disrupt.
        this.logger.info(
          `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] ignored ${describeMessageType(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
        );
        return false;
      }
    }
    if (m.type === MT.PreVote) {
      // Never change term in response to a PreVote.
    } else if (m.type === MT.PreVoteResp && !m.reject) {
      // Pre-votes are granted for a future term; the term moves when the real election starts.
    } else {
      this.logger.info(`${this.id} [term: ${this.term}] received a ${describeMessageType(m.type)} message with higher term from ${m.from} [term: ${m.term}]`);
      if (m.type === MT.App || m.type === MT.Heartbeat || m.type === MT.Snap) this.becomeFollower(m.term, m.from);
      else this.becomeFollower(m.term, NONE);
    }
    return true;
  }

  #stepLowerTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === MT.Heartbeat || m.type === MT.App)) {
      // A leader of an older term is talking to us: we probably moved our term in a partition and can
      // neither win nor rejoin. Answering with our term makes that leader step down so a fresh
      // election can include us (without this, a removed node ignored by check-quorum stays stuck).
      this.send({ type: MT.AppResp, to: m.from });
    } else if (m.type === MT.PreVote) {
      // Rejecting (instead of ignoring) lets an outdated pre-candidate learn the current term.
      this.logger.info(
        `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${describeMessageType(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
      );
      this.send({ type: MT.PreVoteResp, to: m.from, term: this.term, reject: true });
    } else {
      this.logger.info(`${this.id} [term: ${this.term}] ignored a ${describeMessageType(m.type)} message with lower term from ${m.from} [term: ${m.term}]`);
    }
  }

  #handleVoteRequest(m: Message): void {
    // A repeated vote, no vote and no known leader in this term, or a pre-vote for a future term...
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MT.PreVote && m.term > this.term);
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    const desc = `${this.id} [logterm: ${lastTerm}, index: ${lastIndex}, vote: ${this.vote}]`;
    // ...and the candidate's log is at least as up-to-date as ours (§5.4.1). Learners vote too: one may
    // have been promoted without knowing it yet, and the candidate needs its vote.
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      this.logger.info(`${desc} cast ${describeMessageType(m.type)} for ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`);
      // The response carries the request's term so a pre-candidate with a newer term accepts it.
      this.send({ type: voteRespMsgType(m.type), to: m.from, term: m.term });
      if (m.type === MT.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.logger.info(`${desc} rejected ${describeMessageType(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`);
      this.send({ type: voteRespMsgType(m.type), to: m.from, term: this.term, reject: true });
    }
  }

  /** The host persisted a Ready prepared at readyTerm: entries up to (index, logTerm) and/or a snapshot. */
  onStorageAppended(opts: { readyTerm: number; index: number; logTerm: number; snapshotIndex: number }): void {
    if (opts.index !== 0) {
      // After a term change the persisted entries may have been overwritten in the unstable log since.
      if (opts.readyTerm === this.term) this.raftLog.stableTo(opts.index, opts.logTerm);
      else this.logger.info(`${this.id} [term: ${this.term}] ignored entry appends from a Ready at term ${opts.readyTerm}`);
    }
    if (opts.snapshotIndex !== 0) {
      this.raftLog.stableSnapTo(opts.snapshotIndex);
      this.appliedTo(opts.snapshotIndex, 0);
    }
  }

  /** The host applied these committed entries (sizeBytes: their entsSizeBytes, known by the caller). */
  onApplied(ents: readonly Entry[], sizeBytes: number): void {
    if (ents.length === 0) return;
    this.appliedTo((ents[ents.length - 1] as Entry).index, sizeBytes);
    this.reduceUncommittedSize(payloadsSizeBytes(ents));
  }

  appliedTo(index: number, sizeBytes: number): void {
    const newApplied = Math.max(index, this.raftLog.applied);
    this.raftLog.appliedTo(newApplied, sizeBytes);
    if (this.trk.config.autoLeave && newApplied >= this.pendingConfIndex && this.state === StateRole.Leader) {
      proposeLeaveJoint(this);
    }
  }

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.trk, this.raftLog.lastIndex());
    let result: ChangeResult;
    if (isLeaveJoint(cc)) {
      result = changer.leaveJoint();
    } else {
      const j = enterJoint(cc);
      result = j.joint ? changer.enterJoint(j.autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(result);
  }

  /** Installs a new configuration; a leader removed or demoted by it steps down. */
  switchToConfig(result: ChangeResult): ConfState {
    this.trk.reset(result.config, result.progress);
    this.logger.info(`${this.id} switched to configuration ${this.trk.config.toString()}`);
    const cs = this.trk.confState();
    const pr = this.trk.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === StateRole.Leader) {
      this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== StateRole.Leader || cs.voters.length === 0) return cs;
    if (maybeCommit(this)) {
      bcastAppend(this);
    } else {
      // Probe newly added members right away rather than on the next proposal.
      for (const id of this.trk.ids()) if (id !== this.id) maybeSendAppend(this, id, false);
    }
    if (this.leadTransferee !== NONE && !this.trk.config.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  describeState(): string {
    return describeRole(this.state);
  }
}

function validateConfig(c: RaftConfig): void {
  assert(c.id !== NONE, 'cannot use none as id');
  assert(Number.isSafeInteger(c.heartbeatTicks) && c.heartbeatTicks > 0, 'heartbeat tick must be greater than 0');
  assert(c.electionTicks > c.heartbeatTicks, 'election tick must be greater than heartbeat tick');
  assert(Number.isSafeInteger(c.maxInflightMsgs) && c.maxInflightMsgs > 0, 'max inflight messages must be greater than 0');
  assert(c.maxSizePerMsgBytes > 0, 'max size per message must be greater than 0');
  assert(
    c.maxInflightBytes === 0 || c.maxInflightBytes >= c.maxSizePerMsgBytes,
    'max inflight bytes must be >= max message size',
  );
  assert(c.maxUncommittedEntriesBytes >= 0, 'max uncommitted entries bytes must not be negative');
  assert(
    c.readOnlyOption !== 'lease-based' || c.checkQuorum,
    'CheckQuorum must be enabled when ReadOnlyOption is lease-based',
  );
  assert(Number.isSafeInteger(c.appliedIndex) && c.appliedIndex >= 0, 'applied index must be a safe non-negative integer');
}
