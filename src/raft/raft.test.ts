/** Behaviour of the state machine beyond the paper's claims: flow control, limits, durability ordering. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProposalDroppedError, StateRole } from './contract.js';
import { describeMessage } from './describe.js';
import { Cluster, enc } from './rafttest/cluster.js';
import type { Entry, Message } from './types.js';
import { EntryType, MessageType as MT } from './types.js';
import type { MessageFields } from './util.js';
import { makeMessage } from './util.js';

const msg = (f: MessageFields): Message => makeMessage(f);
const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array() });
const payload = (n: number): Uint8Array => new Uint8Array(n).fill(97);

test('fast backtracking: a follower with a long divergent tail is repaired in one round trip per term, not per entry', () => {
  const c = Cluster.create(3);
  const common = [ent(1, 1), ent(2, 1)];
  const divergent = [...common];
  for (let i = 3; i <= 50; i++) divergent.push(ent(i, 2));
  const leaderLog = [...common];
  for (let i = 3; i <= 40; i++) leaderLog.push(ent(i, 3));
  c.withLog(1n, { entries: leaderLog, term: 3 });
  c.withLog(2n, { entries: divergent, term: 3 });
  c.withLog(3n, { entries: leaderLog, term: 3 });
  c.elect(1n);
  let rejects = 0;
  const base = c.filter;
  c.filter = (m) => {
    if (m.type === MT.AppResp && m.reject && m.from === 2n) rejects++;
    return base(m);
  };
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  assert.ok(rejects <= 2, `rejections: ${rejects}`);
  const s2 = c.get(2n).storage;
  assert.equal(s2.lastIndex(), 42);
  assert.equal(s2.term(3), 3);
});

test('the rejection hint names the follower\'s last index whose term is <= the leader\'s term at the probe', () => {
  const c = Cluster.create(3);
  c.withLog(2n, { entries: [ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 2)], term: 4 });
  c.raw(2n).raft.becomeFollower(4, 1n);
  c.raw(2n).step(msg({ type: MT.App, from: 1n, to: 2n, term: 4, index: 7, logTerm: 3 }));
  c.raw(2n).step(msg({ type: MT.App, from: 1n, to: 2n, term: 4, index: 5, logTerm: 1 }));
  assert.deepEqual(c.drain(2n).map((m) => describeMessage(m)), [
    '2->1 MsgAppResp Term:4 Log:2/7 Rejected (Hint: 5)',
    '2->1 MsgAppResp Term:4 Log:1/5 Rejected (Hint: 2)',
  ]);
});

test('flow control by count: a replicating follower that does not answer gets at most maxInflightMsgs appends', () => {
  const c = Cluster.create(3, { maxInflightMsgs: 3 });
  c.elect(1n);
  c.filter = (m) => m.to !== 3n;
  for (let i = 0; i < 10; i++) {
    c.raw(1n).propose(enc(`p${i}`));
    c.stabilize();
  }
  const toThree = c.raw(1n).raft.trk.get(3n)!;
  assert.equal(toThree.inflights.count(), 3);
  assert.equal(toThree.isPaused(), true);
  assert.equal(toThree.next, 5, 'next advanced by exactly three single-entry appends');
  c.heal();
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.get(3n).applied.length, 10);
});

test('flow control by bytes: in-flight payload bytes are capped by maxInflightBytes', () => {
  const c = Cluster.create(3, { maxInflightBytes: 2048, maxSizePerMsgBytes: 1024 });
  c.elect(1n);
  c.filter = (m) => m.to !== 3n;
  for (let i = 0; i < 10; i++) {
    c.raw(1n).propose(payload(700));
    c.stabilize();
  }
  const pr = c.raw(1n).raft.trk.get(3n)!;
  assert.equal(pr.inflights.count(), 3, '700+700 < 2048 <= 2100: the third message fills the budget');
  assert.equal(pr.inflights.full(), true);
});

test('batching: appends carry at most maxSizePerMsgBytes of entries (but always at least one)', () => {
  const c = Cluster.create(3, { maxSizePerMsgBytes: 1000 });
  c.elect(1n);
  c.isolate(3n);
  for (let i = 0; i < 10; i++) c.raw(1n).propose(payload(300));
  c.stabilize();
  c.heal();
  const sizes: number[] = [];
  const base = c.filter;
  c.filter = (m) => {
    if (m.type === MT.App && m.to === 3n && m.entries.length > 0) sizes.push(m.entries.length);
    return base(m);
  };
  c.raw(1n).tick();
  c.stabilize();
  assert.ok(sizes.every((n) => n <= 3), `batches ${sizes}`);
  assert.ok(sizes.some((n) => n === 3));
  const big = Cluster.create(3, { maxSizePerMsgBytes: 100 });
  big.elect(1n);
  big.raw(1n).propose(payload(500));
  const out = big.drain(1n).filter((m) => m.type === MT.App);
  assert.equal(out[0]!.entries.length, 1);
});

test('maxUncommittedEntriesBytes: proposals past the cap are dropped until entries commit and apply', () => {
  const c = Cluster.create(3, { maxUncommittedEntriesBytes: 1000 });
  c.elect(1n);
  c.isolate(1n);
  c.raw(1n).propose(payload(600));
  assert.throws(() => c.raw(1n).propose(payload(600)), ProposalDroppedError);
  c.raw(1n).propose(new Uint8Array(0));
  c.heal();
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(1n).raft.uncommittedSize, 0);
  c.raw(1n).propose(payload(600));
});

test('a single proposal larger than the cap is accepted when nothing is uncommitted', () => {
  const c = Cluster.create(3, { maxUncommittedEntriesBytes: 100 });
  c.elect(1n);
  c.raw(1n).propose(payload(500));
  assert.throws(() => c.raw(1n).propose(payload(1)), ProposalDroppedError);
});

test('reportUnreachable moves a replicating follower back to probing', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  assert.equal(c.raw(1n).status().progress?.get(2n)?.state, 'replicate');
  c.raw(1n).reportUnreachable(2n);
  assert.equal(c.raw(1n).status().progress?.get(2n)?.state, 'probe');
});

test('durability: the vote is in the same Ready as the vote response, which has mustSync set', () => {
  const c = Cluster.create(3);
  c.raw(2n).step(msg({ type: MT.Vote, from: 1n, to: 2n, term: 1 }));
  const rd = c.raw(2n).ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: 1n, commit: 0 });
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages.map((m) => describeMessage(m)), ['2->1 MsgVoteResp Term:1 Log:0/0']);
  c.raw(2n).advance();
});

test('durability: appended entries and their acknowledgement come in one Ready; commit-only changes need no sync', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('x'));
  const app = c.drain(1n).find((m) => m.to === 2n)!;
  c.raw(2n).step(app);
  const rd = c.processReady(2n)!;
  assert.deepEqual(rd.entries.map((e) => e.index), [2]);
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messages.map((m) => describeMessage(m)), ['2->1 MsgAppResp Term:1 Log:0/2']);
  c.raw(2n).step(msg({ type: MT.Heartbeat, from: 1n, to: 2n, term: 1, commit: 2 }));
  const rd2 = c.processReady(2n)!;
  assert.equal(rd2.hardState?.commit, 2);
  assert.equal(rd2.mustSync, false);
});

test('the leader counts its own entries only once persisted, but followers\' acks may commit them first', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('x'));
  const rd = c.raw(1n).ready();
  // Messages go out in parallel with the leader's own write; it does not count itself yet.
  assert.equal(c.raw(1n).raft.trk.get(1n)!.match, 1);
  for (const m of rd.messages) c.raw(m.to).step(m);
  for (const id of [2n, 3n]) {
    const frd = c.raw(id).ready();
    c.get(id).storage.append(frd.entries);
    c.raw(id).advance();
    for (const m of frd.messages) c.raw(1n).step(m);
  }
  assert.equal(c.raw(1n).raft.raftLog.committed, 2, 'committed by the followers before the leader persisted');
  c.get(1n).storage.append(rd.entries);
  c.raw(1n).advance();
  assert.equal(c.raw(1n).raft.trk.get(1n)!.match, 2);
});

test('a response from a node outside the configuration is ignored; local message types from the network are refused', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).step(msg({ type: MT.AppResp, from: 9n, to: 1n, term: 1, index: 100 }));
  assert.equal(c.raw(1n).raft.raftLog.committed, 1);
  assert.throws(() => c.raw(1n).step(msg({ type: MT.Hup, from: 2n, to: 1n })), /local message/);
});

test('a forwarded proposal the leader cannot take is dropped quietly on the leader', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  c.heal();
  c.raw(1n).transferLeader(3n);
  c.raw(1n).step(msg({ type: MT.Prop, from: 2n, to: 1n, entries: [ent(0, 0)] }));
  assert.equal(c.raw(1n).raft.raftLog.lastIndex(), 2);
});

test('a leader whose followers all reject it because of a higher term steps down (check-quorum answer to stale leaders)', () => {
  const c = Cluster.create(3, { checkQuorum: true });
  c.elect(1n);
  c.raw(2n).raft.becomeFollower(5, 0n);
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(1n).raft.state, StateRole.Follower);
  assert.equal(c.raw(1n).raft.term, 5);
});

test('status: hard state, soft state, progress only on the leader', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  const st = c.raw(1n).status();
  assert.deepEqual(st.hardState, { term: 1, vote: 1n, commit: 1 });
  assert.equal(st.softState.role, StateRole.Leader);
  assert.deepEqual([...st.progress!.keys()], [1n, 2n, 3n]);
  assert.equal(c.raw(2n).status().progress, null);
  assert.deepEqual(c.raw(2n).status().config.voters, [1n, 2n, 3n]);
});

test('determinism: the same seeds give the same elections and messages', () => {
  const run = (): string[] => {
    const c = Cluster.create(5, { preVote: true });
    const log: string[] = [];
    c.filter = (m) => {
      log.push(describeMessage(m));
      return true;
    };
    for (let t = 0; t < 40; t++) {
      for (const id of c.nodes.keys()) c.raw(id).tick();
      c.stabilize();
    }
    return log;
  };
  const a = run();
  assert.ok(a.length > 0);
  assert.deepEqual(run(), a);
});
