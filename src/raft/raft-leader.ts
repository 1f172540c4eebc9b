/**
 * The leader's side: replication to each follower (driven by its Progress), commit by counting
 * replicas, heartbeats, ReadIndex, leader transfer, proposals and the automatic leave of a joint
 * configuration.
 */
import { ProposalDroppedError, StateRole } from './contract.js';
import { decodeConfChangeV1, decodeConfChangeV2, formatConfChanges } from './conf-change.js';
import type { Raft } from './raft.js';
import { VoteResult } from './quorum/quorum.js';
import { READ_INDEX_PENDING_MAX } from './read-only.js';
import { StorageError } from './contract.js';
import type { Progress } from './tracker/progress.js';
import { ProgressState } from './tracker/progress.js';
import type { ConfChangeSingle, Entry, Message, NodeId } from './types.js';
import { EntryType, MessageType as MT, NONE } from './types.js';
import { EMPTY_BYTES, makeMessage, payloadsSizeBytes } from './util.js';

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case MT.Beat:
      bcastHeartbeat(r);
      return;
    case MT.CheckQuorum:
      checkQuorum(r);
      return;
    case MT.Prop:
      handleProposal(r, m);
      return;
    case MT.ReadIndex:
      handleReadIndex(r, m);
      return;
    default:
  }
  // Everything else is about one member: ignore members we do not track.
  const pr = r.trk.get(m.from);
  if (pr === undefined) {
    r.logger.info(`${r.id} no progress available for ${m.from}`);
    return;
  }
  switch (m.type) {
    case MT.AppResp:
      handleAppendResponse(r, m, pr);
      break;
    case MT.HeartbeatResp:
      handleHeartbeatResponse(r, m, pr);
      break;
    case MT.SnapStatus:
      handleSnapStatus(r, m, pr);
      break;
    case MT.Unreachable:
      // Optimistic replication probably lost a message: fall back to probing.
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      r.logger.info(`${r.id} failed to send message to ${m.from} because it is unreachable [${pr.toString()}]`);
      break;
    case MT.TransferLeader:
      handleTransferLeader(r, m, pr);
      break;
    default:
  }
}

function checkQuorum(r: Raft): void {
  if (!r.trk.quorumActive()) {
    r.logger.warn(`${r.id} stepped down to follower since quorum is not active`);
    r.becomeFollower(r.term, NONE);
  }
  // Start the next round: everyone but the leader must show up again.
  for (const id of r.trk.ids()) {
    if (id !== r.id) (r.trk.get(id) as Progress).recentActive = false;
  }
}

function checkCanPropose(r: Raft): void {
  // A leader removed from the configuration takes no new proposals.
  if (r.trk.get(r.id) === undefined) throw new ProposalDroppedError('leader is not a member');
  if (r.leadTransferee !== NONE) {
    r.logger.info(`${r.id} [term ${r.term}] transfer leadership to ${r.leadTransferee} is in progress; dropping proposal`);
    throw new ProposalDroppedError('leadership transfer in progress');
  }
}

/** Local normal proposals on the leader, without a MsgProp: same checks, entries created once. */
export function proposeData(r: Raft, data: readonly Uint8Array[]): void {
  checkCanPropose(r);
  if (!r.appendData(data)) throw new ProposalDroppedError('too many uncommitted entry bytes');
  r.appendsPending = true;
}

function handleProposal(r: Raft, m: Message): void {
  if (m.entries.length === 0) throw new Error(`${r.id} stepped empty MsgProp`);
  checkCanPropose(r);
  let ents = m.entries;
  for (let i = 0; i < ents.length; i++) {
    const e = ents[i] as Entry;
    if (e.type === EntryType.Normal) continue;
    const failed = confChangeCheck(r, e);
    if (failed !== '') {
      r.logger.info(`${r.id} ignoring conf change ${describeChanges(e)} at config ${r.trk.config.toString()}: ${failed}`);
      if (ents === m.entries) ents = ents.slice();
      (ents as Entry[])[i] = { term: 0, index: 0, type: EntryType.Normal, data: EMPTY_BYTES };
    } else {
      r.pendingConfIndex = r.raftLog.lastIndex() + i + 1;
    }
  }
  if (!r.appendEntries(ents)) throw new ProposalDroppedError('too many uncommitted entry bytes');
  r.appendsPending = true;
}

/**
 * Sends the appends that proposals made necessary. Proposals only mark them pending, so that all the
 * proposals of one turn of the host loop leave in one message per follower (batching on purpose).
 */
export function flushPendingAppends(r: Raft): void {
  if (!r.appendsPending) return;
  r.appendsPending = false;
  if (r.state === StateRole.Leader) bcastAppend(r);
}

/** Why this conf change cannot be proposed now ('' if it can): one change at a time (thesis §4.1). */
function confChangeCheck(r: Raft, e: Entry): string {
  const changes = confChangesOf(e);
  const alreadyPending = r.pendingConfIndex > r.raftLog.applied;
  const alreadyJoint = r.trk.config.voters.isJoint();
  const wantsLeaveJoint = changes.length === 0;
  if (alreadyPending) return `possible unapplied conf change at index ${r.pendingConfIndex} (applied to ${r.raftLog.applied})`;
  if (alreadyJoint && !wantsLeaveJoint) return 'must transition out of joint config first';
  if (!alreadyJoint && wantsLeaveJoint) return 'not in joint state; refusing empty conf change';
  return '';
}

function confChangesOf(e: Entry): readonly ConfChangeSingle[] {
  if (e.type === EntryType.ConfChangeV2) return decodeConfChangeV2(e.data).changes;
  const v1 = decodeConfChangeV1(e.data);
  return [{ type: v1.type, nodeId: v1.nodeId }];
}

function describeChanges(e: Entry): string {
  return formatConfChanges(confChangesOf(e));
}

function handleAppendResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  if (m.reject) {
    // Fast backtracking: the follower hinted where its log may match (rejectHint, and the term there).
    let nextProbeIdx = m.rejectHint;
    if (m.logTerm > 0) nextProbeIdx = r.raftLog.findConflictByTerm(m.rejectHint, m.logTerm);
    if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
      r.logger.info(`${r.id} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${m.from} for index ${m.index}`);
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  // An ack matching an already-known index still moves a probing follower back to replicating.
  if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe))) return;
  if (pr.state === ProgressState.Probe) {
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= r.raftLog.firstIndex()) {
    // The follower caught up far enough (from the snapshot or otherwise) to continue from the log.
    r.logger.info(`${r.id} recovered from needing snapshot, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state === ProgressState.Replicate) {
    pr.inflights.freeLE(m.index);
  }
  if (maybeCommit(r)) {
    // At most one read request can be waiting on the first commit of the term.
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  } else if (r.id !== m.from && pr.canBumpCommit(r.raftLog.committed)) {
    sendAppend(r, m.from);
  }
  // Flow control may have opened up: send as many (non-empty) appends as it allows.
  if (r.id !== m.from) {
    while (maybeSendAppend(r, m.from, false)) {
      // keep sending
    }
  }
  if (m.from === r.leadTransferee && pr.match === r.raftLog.lastIndex()) {
    r.logger.info(`${r.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
    sendTimeoutNow(r, m.from);
  }
}

function handleHeartbeatResponse(r: Raft, m: Message, pr: Progress): void {
  pr.recentActive = true;
  pr.msgAppFlowPaused = false;
  // Also retries when all in-flight appends were lost (the ring is full but the follower is behind),
  // and lets a caught-up follower in probe state move back to replicate.
  if (pr.match < r.raftLog.lastIndex() || pr.state === ProgressState.Probe) sendAppend(r, m.from);
  if (r.readOnly.option !== 'safe' || m.context.length === 0) return;
  const acks = r.readOnly.recvAck(m.from, m.context);
  if (acks === null || r.trk.config.voters.voteResult(acks) !== VoteResult.Won) return;
  for (const rs of r.readOnly.advance(m)) {
    const resp = responseToReadIndexReq(r, rs.req, rs.index);
    if (resp !== null) r.send(resp);
  }
}

function handleSnapStatus(r: Raft, m: Message, pr: Progress): void {
  if (pr.state !== ProgressState.Snapshot) return;
  if (!m.reject) {
    pr.becomeProbe();
    r.logger.info(`${r.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
  } else {
    // Forget the snapshot first, or probing would resume from its index though it never applied.
    pr.pendingSnapshot = 0;
    pr.becomeProbe();
    r.logger.info(`${r.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr.toString()}]`);
  }
  // After success, wait for the follower's MsgAppResp; after failure, for the next heartbeat.
  pr.msgAppFlowPaused = true;
}

function handleTransferLeader(r: Raft, m: Message, pr: Progress): void {
  if (pr.isLearner) {
    r.logger.info(`${r.id} is learner. Ignored transferring leadership`);
    return;
  }
  const transferee = m.from;
  if (r.leadTransferee !== NONE) {
    if (r.leadTransferee === transferee) {
      r.logger.info(`${r.id} [term ${r.term}] transfer leadership to ${transferee} is in progress, ignores request to same node ${transferee}`);
      return;
    }
    r.logger.info(`${r.id} [term ${r.term}] abort previous transferring leadership to ${r.leadTransferee}`);
    r.abortLeaderTransfer();
  }
  if (transferee === r.id) {
    r.logger.info(`${r.id} is already leader. Ignored transferring leadership to self`);
    return;
  }
  r.logger.info(`${r.id} [term ${r.term}] starts to transfer leadership to ${transferee}`);
  // The transfer must finish within one election timeout (thesis §3.10).
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (pr.match === r.raftLog.lastIndex()) {
    sendTimeoutNow(r, transferee);
    r.logger.info(`${r.id} sends MsgTimeoutNow to ${transferee} immediately as ${transferee} already has up-to-date log`);
  } else {
    sendAppend(r, transferee);
  }
}

export function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send({ type: MT.TimeoutNow, to });
}

// --- replication ----------------------------------------------------------------------------------

export function maybeCommit(r: Raft): boolean {
  return r.raftLog.maybeCommit(r.trk.committed(), r.term);
}

export function bcastAppend(r: Raft): void {
  for (const id of r.trk.ids()) if (id !== r.id) sendAppend(r, id);
}

export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/**
 * Sends the follower the entries from its next index on (within the message size and flow control
 * limits), or a snapshot if they are compacted. With sendIfEmpty, sends an empty append to carry the
 * commit index or to probe. Returns whether a message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const pr = r.trk.get(to) as Progress;
  if (pr.isPaused()) return false;
  const prevIndex = pr.next - 1;
  const prevTerm = r.raftLog.term(prevIndex);
  // The entry before next is compacted: the follower can only catch up from a snapshot.
  if (prevTerm === undefined) return maybeSendSnapshot(r, to, pr);
  let ents: Entry[] = [];
  // A throttled replicating follower gets empty appends only, so a lost ring of messages still
  // elicits a response that frees it.
  if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
    try {
      ents = r.raftLog.entries(pr.next, r.maxMsgSizeBytes);
    } catch (err) {
      if (err instanceof StorageError && err.reason === 'compacted') return maybeSendSnapshot(r, to, pr);
      throw err;
    }
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  const commit = r.raftLog.committed;
  r.send({ type: MT.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit });
  pr.sentEntries(ents.length, payloadsSizeBytes(ents));
  pr.setSentCommit(commit);
  return true;
}

function maybeSendSnapshot(r: Raft, to: NodeId, pr: Progress): boolean {
  if (!pr.recentActive) {
    r.logger.info(`ignore sending snapshot to ${to} since it is not recently active`);
    return false;
  }
  let snapshot;
  try {
    snapshot = r.raftLog.snapshot();
  } catch (err) {
    if (err instanceof StorageError && err.reason === 'snapshot-temporarily-unavailable') {
      r.logger.info(`${r.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`);
      return false;
    }
    throw err;
  }
  if (snapshot.metadata.index === 0) throw new Error('need non-empty snapshot');
  const { index, term } = snapshot.metadata;
  r.logger.info(`${r.id} [firstindex: ${r.raftLog.firstIndex()}, commit: ${r.raftLog.committed}] sent snapshot[index: ${index}, term: ${term}] to ${to} [${pr.toString()}]`);
  pr.becomeSnapshot(index);
  r.logger.info(`${r.id} paused sending replication messages to ${to} [${pr.toString()}]`);
  r.send({ type: MT.Snap, to, snapshot });
  return true;
}

export function bcastHeartbeat(r: Raft): void {
  const ctx = r.readOnly.lastPendingRequestCtx() ?? EMPTY_BYTES;
  bcastHeartbeatWithCtx(r, ctx);
}

function bcastHeartbeatWithCtx(r: Raft, ctx: Uint8Array): void {
  for (const id of r.trk.ids()) {
    if (id === r.id) continue;
    const pr = r.trk.get(id) as Progress;
    // Never tell a follower to commit past what it is known to have.
    const commit = Math.min(pr.match, r.raftLog.committed);
    r.send({ type: MT.Heartbeat, to: id, commit, context: ctx });
    pr.setSentCommit(commit);
  }
}

// --- reads ----------------------------------------------------------------------------------------

function handleReadIndex(r: Raft, m: Message): void {
  if (r.trk.isSingleton()) {
    const resp = responseToReadIndexReq(r, m, r.raftLog.committed);
    if (resp !== null) r.send(resp);
    return;
  }
  // A new leader does not know the commit index until an entry of its term commits (thesis §6.4).
  if (!committedEntryInCurrentTerm(r)) {
    if (r.pendingReadIndexMessages.length >= READ_INDEX_PENDING_MAX) {
      r.logger.warn(`${r.id} too many read index requests waiting for the first commit; dropping one`);
      return;
    }
    r.pendingReadIndexMessages.push(m);
    return;
  }
  sendReadIndexResponse(r, m);
}

function sendReadIndexResponse(r: Raft, m: Message): void {
  if (r.readOnly.option === 'safe') {
    // Confirm leadership with a heartbeat round; the leader acks its own request.
    if (!r.readOnly.addRequest(r.raftLog.committed, m)) return;
    r.readOnly.recvAck(r.id, m.context);
    bcastHeartbeatWithCtx(r, m.context);
    return;
  }
  // Lease-based: check-quorum guarantees no other leader exists within the election timeout.
  const resp = responseToReadIndexReq(r, m, r.raftLog.committed);
  if (resp !== null) r.send(resp);
}

/** A local request becomes a ReadState; a forwarded one gets a MsgReadIndexResp. */
function responseToReadIndexReq(r: Raft, req: Message, readIndex: number): Parameters<Raft['send']>[0] | null {
  if (req.from === NONE || req.from === r.id) {
    r.readStates.push({ index: readIndex, context: req.context });
    return null;
  }
  return { type: MT.ReadIndexResp, to: req.from, index: readIndex, context: req.context };
}

export function committedEntryInCurrentTerm(r: Raft): boolean {
  return r.raftLog.zeroTermOnOutOfBounds(r.raftLog.committed) === r.term;
}

function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0) return;
  if (!committedEntryInCurrentTerm(r)) return;
  const msgs = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of msgs) sendReadIndexResponse(r, m);
}

// --- membership -----------------------------------------------------------------------------------

/** Proposes leaving the joint configuration (an empty ConfChangeV2) once entering it was applied. */
export function proposeLeaveJoint(r: Raft): void {
  const m = makeMessage({
    type: MT.Prop,
    to: NONE,
    from: r.id,
    // Empty data decodes as the empty change; its zero size can never hit the uncommitted cap.
    entries: [{ term: 0, index: 0, type: EntryType.ConfChangeV2, data: EMPTY_BYTES }],
  });
  try {
    r.step(m);
    r.logger.info(`initiating automatic transition out of joint configuration ${r.trk.config.toString()}`);
  } catch (err) {
    // Dropped during a leader transfer: retried on the next apply, or left to the next leader.
    if (!(err instanceof ProposalDroppedError)) throw err;
    r.logger.info(`not initiating automatic transition out of joint configuration ${r.trk.config.toString()}: ${err.message}`);
  }
}

