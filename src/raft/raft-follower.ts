/** The follower's and the (pre-)candidate's step functions, and how a follower takes appends and snapshots. */
import { ProposalDroppedError, StateRole } from './contract.js';
import { restoreConfState } from './confchange/restore.js';
import type { Raft } from './raft.js';
import { bcastAppend } from './raft-leader.js';
import { VoteResult } from './quorum/quorum.js';
import { ProgressTracker } from './tracker/tracker.js';
import type { Message, Snapshot } from './types.js';
import { MessageType as MT, NONE } from './types.js';
import { describeMessageType } from './describe.js';

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case MT.Prop:
      if (r.lead === NONE) {
        r.logger.info(`${r.id} no leader at term ${r.term}; dropping proposal`);
        throw new ProposalDroppedError('no leader');
      }
      if (r.disableProposalForwarding) {
        r.logger.info(`${r.id} not forwarding to leader ${r.lead} at term ${r.term}; dropping proposal`);
        throw new ProposalDroppedError('proposal forwarding disabled');
      }
      r.send({ ...fieldsOf(m), to: r.lead });
      break;
    case MT.App:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      break;
    case MT.Heartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      break;
    case MT.Snap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      break;
    case MT.TransferLeader:
      if (r.lead === NONE) {
        r.logger.info(`${r.id} no leader at term ${r.term}; dropping leader transfer msg`);
        return;
      }
      r.send({ ...fieldsOf(m), term: 0, to: r.lead });
      break;
    case MT.TimeoutNow:
      r.logger.info(`${r.id} [term ${r.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership.`);
      // No pre-vote for a transfer: the leader asked for it, nobody is partitioned.
      r.hup('transfer');
      break;
    case MT.ReadIndex:
      if (r.lead === NONE) {
        r.logger.info(`${r.id} no leader at term ${r.term}; dropping index reading msg`);
        return;
      }
      r.send({ ...fieldsOf(m), to: r.lead });
      break;
    case MT.ReadIndexResp:
      r.readStates.push({ index: m.index, context: m.context });
      break;
    default:
  }
}

export function stepCandidate(r: Raft, m: Message): void {
  // A candidate may still get pre-vote responses from its pre-candidacy in this term: only count the
  // responses of the current campaign.
  const myVoteRespType = r.state === StateRole.PreCandidate ? MT.PreVoteResp : MT.VoteResp;
  switch (m.type) {
    case MT.Prop:
      r.logger.info(`${r.id} no leader at term ${r.term}; dropping proposal`);
      throw new ProposalDroppedError('no leader');
    case MT.App:
      // m.term === r.term: someone else won this term.
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      break;
    case MT.Heartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      break;
    case MT.Snap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      break;
    case myVoteRespType: {
      const { granted, rejected, result } = r.poll(m.from, m.type, !m.reject);
      r.logger.info(`${r.id} has received ${granted} ${describeMessageType(m.type)} votes and ${rejected} vote rejections`);
      if (result === VoteResult.Won) {
        if (r.state === StateRole.PreCandidate) {
          r.campaign('election');
        } else {
          r.becomeLeader();
          bcastAppend(r);
        }
      } else if (result === VoteResult.Lost) {
        // A pre-vote response carries the future term: stay at ours.
        r.becomeFollower(r.term, NONE);
      }
      break;
    }
    case MT.TimeoutNow:
      r.logger.info(`${r.id} [term ${r.term} state ${r.describeState()}] ignored MsgTimeoutNow from ${m.from}`);
      break;
    default:
  }
}


export function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.raftLog.committed) {
    // Everything up to our commit index is known to match: tell the leader where we are.
    r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.committed });
    return;
  }
  const lastNew = r.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send({ type: MT.AppResp, to: m.from, index: lastNew });
    return;
  }
  r.logger.info(
    `${r.id} [logterm: ${r.raftLog.zeroTermOnOutOfBounds(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`,
  );
  // Hint at the largest (index, term) with index <= m.index and term <= m.logTerm in our log: the
  // leader can skip every entry of a term we do not share in one round trip (§5.3 optimization).
  const hintIndex = r.raftLog.findConflictByTerm(Math.min(m.index, r.raftLog.lastIndex()), m.logTerm);
  const hintTerm = r.raftLog.zeroTermOnOutOfBounds(hintIndex);
  r.send({ type: MT.AppResp, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
}

export function handleHeartbeat(r: Raft, m: Message): void {
  r.raftLog.commitTo(m.commit);
  r.send({ type: MT.HeartbeatResp, to: m.from, context: m.context });
}

export function handleSnapshot(r: Raft, m: Message): void {
  const s = m.snapshot;
  const sindex = s?.metadata.index ?? 0;
  const sterm = s?.metadata.term ?? 0;
  if (s !== null && restore(r, s)) {
    r.logger.info(`${r.id} [commit: ${r.raftLog.committed}] restored snapshot [index: ${sindex}, term: ${sterm}]`);
    r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.lastIndex() });
  } else {
    r.logger.info(`${r.id} [commit: ${r.raftLog.committed}] ignored snapshot [index: ${sindex}, term: ${sterm}]`);
    r.send({ type: MT.AppResp, to: m.from, index: r.raftLog.committed });
  }
}

/** Installs a snapshot from the leader; false when it brings nothing new (or must not be used). */
export function restore(r: Raft, s: Snapshot): boolean {
  if (s.metadata.index <= r.raftLog.committed) return false;
  // Committed entries handed to the host are still being applied (conf changes among them): switching to
  // the snapshot's configuration now would make those applies fail. The leader will send it again.
  if (r.raftLog.applying > r.raftLog.applied) {
    r.logger.info(`${r.id} ignored a snapshot while entries up to ${r.raftLog.applying} are being applied`);
    return false;
  }
  if (r.state !== StateRole.Follower) {
    // Cannot happen (only followers take snapshots); if it did, step down rather than corrupt state.
    r.logger.warn(`${r.id} attempted to restore snapshot as leader; should never happen`);
    r.becomeFollower(r.term + 1, NONE);
    return false;
  }
  const cs = s.metadata.confState;
  // A snapshot of a configuration without us: nothing sensible to do with it.
  const member = [cs.voters, cs.learners, cs.votersOutgoing].some((ids) => ids.includes(r.id));
  if (!member) {
    r.logger.warn(`${r.id} attempted to restore snapshot but it is not in the ConfState; should never happen`);
    return false;
  }
  if (r.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
    // We already have the snapshot's last entry: just learn that it is committed.
    r.logger.info(
      `${r.id} [commit: ${r.raftLog.committed}, lastindex: ${r.raftLog.lastIndex()}, lastterm: ${r.raftLog.lastTerm()}] fast-forwarded commit to snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
    );
    r.raftLog.commitTo(s.metadata.index);
    return false;
  }
  r.raftLog.restore(s);
  // Rebuild the configuration from the snapshot's ConfState on an empty tracker.
  const fresh = new ProgressTracker(r.trk.maxInflight, r.trk.maxInflightBytes);
  const result = restoreConfState(fresh, r.raftLog.lastIndex(), cs);
  r.switchToConfig(result);
  r.logger.info(
    `${r.id} [commit: ${r.raftLog.committed}, lastindex: ${r.raftLog.lastIndex()}, lastterm: ${r.raftLog.lastTerm()}] restored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
  );
  return true;
}

function fieldsOf(m: Message): {
  type: Message['type'];
  to: Message['to'];
  from: Message['from'];
  term: number;
  logTerm: number;
  index: number;
  entries: Message['entries'];
  commit: number;
  snapshot: Message['snapshot'];
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
} {
  return { ...m };
}
