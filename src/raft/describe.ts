/** Human-readable forms of raft values, for logs and the golden interaction tests. */
import type { Ready, SoftState, StateRole as StateRoleT } from './contract.js';
import { StateRole } from './contract.js';
import { decodeConfChangeV1, decodeConfChangeV2, formatConfChanges, confChangeV1ToV2 } from './conf-change.js';
import type { ConfState, Entry, HardState, Message, MessageType, Snapshot } from './types.js';
import { EntryType, MessageType as MT, NONE } from './types.js';

const MESSAGE_TYPE_NAMES: Record<MessageType, string> = {
  [MT.Hup]: 'MsgHup',
  [MT.Beat]: 'MsgBeat',
  [MT.Prop]: 'MsgProp',
  [MT.App]: 'MsgApp',
  [MT.AppResp]: 'MsgAppResp',
  [MT.Vote]: 'MsgVote',
  [MT.VoteResp]: 'MsgVoteResp',
  [MT.Snap]: 'MsgSnap',
  [MT.Heartbeat]: 'MsgHeartbeat',
  [MT.HeartbeatResp]: 'MsgHeartbeatResp',
  [MT.Unreachable]: 'MsgUnreachable',
  [MT.SnapStatus]: 'MsgSnapStatus',
  [MT.CheckQuorum]: 'MsgCheckQuorum',
  [MT.TransferLeader]: 'MsgTransferLeader',
  [MT.TimeoutNow]: 'MsgTimeoutNow',
  [MT.ReadIndex]: 'MsgReadIndex',
  [MT.ReadIndexResp]: 'MsgReadIndexResp',
  [MT.PreVote]: 'MsgPreVote',
  [MT.PreVoteResp]: 'MsgPreVoteResp',
};

export function describeMessageType(t: MessageType): string {
  return MESSAGE_TYPE_NAMES[t] ?? `MsgUnknown(${t})`;
}

const ROLE_NAMES: Record<StateRoleT, string> = {
  [StateRole.Follower]: 'StateFollower',
  [StateRole.Candidate]: 'StateCandidate',
  [StateRole.Leader]: 'StateLeader',
  [StateRole.PreCandidate]: 'StatePreCandidate',
};

export function describeRole(r: StateRoleT): string {
  return ROLE_NAMES[r];
}

const ENTRY_TYPE_NAMES: Record<EntryType, string> = {
  [EntryType.Normal]: 'EntryNormal',
  [EntryType.ConfChange]: 'EntryConfChange',
  [EntryType.ConfChangeV2]: 'EntryConfChangeV2',
};

/** Printable payloads are quoted; anything else is shown as hex. */
export function describeData(d: Uint8Array): string {
  let printable = true;
  for (const b of d) {
    if (b < 0x20 || b > 0x7e) {
      printable = false;
      break;
    }
  }
  if (printable) return JSON.stringify(String.fromCharCode(...d));
  return `0x${Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export function describeEntry(e: Entry): string {
  let payload: string;
  if (e.type === EntryType.ConfChangeV2) {
    const cc = decodeConfChangeV2(e.data);
    payload = cc.changes.length === 0 ? '' : formatConfChanges(cc.changes);
    if (cc.transition !== 0) payload += ` transition=${cc.transition}`;
  } else if (e.type === EntryType.ConfChange) {
    payload = formatConfChanges(confChangeV1ToV2(decodeConfChangeV1(e.data)).changes);
  } else {
    payload = describeData(e.data);
  }
  return `${e.term}/${e.index} ${ENTRY_TYPE_NAMES[e.type]}${payload === '' ? '' : ' ' + payload}`;
}

export function describeEntries(ents: readonly Entry[]): string {
  return ents.map((e) => describeEntry(e)).join('\n');
}

export function describeConfState(cs: ConfState): string {
  let s = `Voters:[${cs.voters.join(' ')}] VotersOutgoing:[${cs.votersOutgoing.join(' ')}] Learners:[${cs.learners.join(' ')}] LearnersNext:[${cs.learnersNext.join(' ')}]`;
  s += ` AutoLeave:${cs.autoLeave}`;
  return s;
}

export function describeSnapshot(s: Snapshot): string {
  const m = s.metadata;
  return `Index:${m.index} Term:${m.term} ConfState:${describeConfState(m.confState)}`;
}

export function describeHardState(hs: HardState): string {
  return `Term:${hs.term}${hs.vote !== NONE ? ` Vote:${hs.vote}` : ''} Commit:${hs.commit}`;
}

export function describeSoftState(ss: SoftState): string {
  return `Lead:${ss.lead} State:${describeRole(ss.role)}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${describeMessageType(m.type)} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map((e) => describeEntry(e)).join(', ')}]`;
  if (m.snapshot !== null) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  if (m.context.length > 0) s += ` Context:${describeData(m.context)}`;
  return s;
}

/** A multi-line rendering of a Ready, indented per section. */
export function describeReady(rd: Ready): string {
  const lines: string[] = [];
  if (rd.softState !== null) lines.push(describeSoftState(rd.softState));
  if (rd.hardState !== null) lines.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.readStates.length > 0) {
    lines.push(`ReadStates:`);
    for (const r of rd.readStates) lines.push(`  Index:${r.index} Context:${describeData(r.context)}`);
  }
  if (rd.entries.length > 0) {
    lines.push('Entries:');
    for (const e of rd.entries) lines.push(`${describeEntry(e)}`);
  }
  if (rd.snapshot !== null) lines.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) {
    lines.push('CommittedEntries:');
    for (const e of rd.committedEntries) lines.push(`${describeEntry(e)}`);
  }
  if (rd.messages.length > 0) {
    lines.push('Messages:');
    for (const m of rd.messages) lines.push(describeMessage(m));
  }
  if (lines.length === 0) return '<empty Ready>';
  return (rd.mustSync ? 'Ready MustSync=true:\n' : 'Ready MustSync=false:\n') + lines.join('\n');
}
