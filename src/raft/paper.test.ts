/**
 * One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
 * Algorithm"), sections 5.1 to 5.4; each test name starts with the section it checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StateRole } from './contract.js';
import { describeMessage } from './describe.js';
import { Cluster, enc } from './rafttest/cluster.js';
import type { Entry, Message, NodeId } from './types.js';
import { EntryType, MessageType as MT } from './types.js';
import type { MessageFields } from './util.js';
import { makeMessage } from './util.js';

const ent = (index: number, term: number, data = ''): Entry => ({ index, term, type: EntryType.Normal, data: enc(data) });
const msg = (f: MessageFields): Message => makeMessage(f);
const describe = (ms: readonly Message[]): string[] => ms.map((m) => describeMessage(m));

/** Ticks a node until its (randomized) election timeout fires. */
function tickToElection(c: Cluster, id: NodeId): void {
  const r = c.raw(id).raft;
  for (let i = 0; i < 2 * r.electionTimeout && r.state !== StateRole.Candidate && r.state !== StateRole.PreCandidate; i++) c.raw(id).tick();
}

for (const role of ['follower', 'candidate', 'leader'] as const) {
  test(`§5.1 a ${role} receiving a message with a higher term updates its term and becomes follower`, () => {
    const c = Cluster.create(3);
    const r = c.raw(1n).raft;
    if (role !== 'follower') r.becomeCandidate();
    if (role === 'leader') r.becomeLeader();
    c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term: 5 }));
    assert.equal(r.term, 5);
    assert.equal(r.state, StateRole.Follower);
    assert.equal(r.lead, 2n);
  });
}

test('§5.1 a server rejects a request with a stale term number', () => {
  const c = Cluster.create(3);
  const r = c.raw(1n).raft;
  r.becomeFollower(2, 0n);
  c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term: 1, entries: [ent(1, 1)] }));
  assert.equal(r.raftLog.lastIndex(), 0, 'stale append not accepted');
  assert.equal(r.term, 2);
  assert.deepEqual(c.drain(1n), []);
});

test('§5.2 servers start up as followers', () => {
  const c = Cluster.create(3);
  for (const id of [1n, 2n, 3n]) {
    const r = c.raw(id).raft;
    assert.equal(r.state, StateRole.Follower);
    assert.equal(r.term, 0);
  }
});

test('§5.2 a leader sends heartbeats to all followers every heartbeat timeout', () => {
  const c = Cluster.create(3, { heartbeatTicks: 2 });
  c.elect(1n);
  c.raw(1n).tick();
  assert.deepEqual(c.drain(1n), [], 'nothing before the heartbeat timeout');
  c.raw(1n).tick();
  assert.deepEqual(describe(c.drain(1n)), ['1->2 MsgHeartbeat Term:1 Log:0/0 Commit:1', '1->3 MsgHeartbeat Term:1 Log:0/0 Commit:1']);
});

test('§5.2 a follower that hears nothing for an election timeout becomes candidate, votes for itself and requests votes', () => {
  const c = Cluster.create(3);
  const r = c.raw(1n).raft;
  tickToElection(c, 1n);
  assert.equal(r.state, StateRole.Candidate);
  assert.equal(r.term, 1);
  assert.equal(r.vote, 1n);
  assert.deepEqual(describe(c.drain(1n)), ['1->2 MsgVote Term:1 Log:0/0', '1->3 MsgVote Term:1 Log:0/0']);
});

test('§5.2 a candidate that neither wins nor loses starts a new election after another timeout', () => {
  const c = Cluster.create(3);
  const r = c.raw(1n).raft;
  tickToElection(c, 1n);
  c.drain(1n);
  assert.equal(r.term, 1);
  r.electionElapsed = 0;
  for (let i = 0; i < 2 * r.electionTimeout && r.term === 1; i++) c.raw(1n).tick();
  assert.equal(r.state, StateRole.Candidate);
  assert.equal(r.term, 2);
  assert.deepEqual(describe(c.drain(1n)), ['1->2 MsgVote Term:2 Log:0/0', '1->3 MsgVote Term:2 Log:0/0']);
});

test('§5.2 a candidate wins with votes from a majority, loses with rejections from a majority, waits otherwise', () => {
  const cases: Array<{ size: number; votes: Array<[number, boolean]>; want: number }> = [
    { size: 1, votes: [], want: StateRole.Leader },
    { size: 3, votes: [[2, true], [3, true]], want: StateRole.Leader },
    { size: 3, votes: [[2, true]], want: StateRole.Leader },
    { size: 5, votes: [[2, true], [3, true], [4, true], [5, true]], want: StateRole.Leader },
    { size: 5, votes: [[2, true], [3, true]], want: StateRole.Leader },
    { size: 3, votes: [[2, false], [3, false]], want: StateRole.Follower },
    { size: 5, votes: [[2, false], [3, false], [4, false]], want: StateRole.Follower },
    { size: 3, votes: [], want: StateRole.Candidate },
    { size: 5, votes: [[2, true]], want: StateRole.Candidate },
    { size: 5, votes: [[2, false], [3, false]], want: StateRole.Candidate },
  ];
  for (const tc of cases) {
    const c = Cluster.create(tc.size);
    c.raw(1n).campaign();
    c.drain(1n);
    for (const [from, granted] of tc.votes) {
      c.raw(1n).step(msg({ type: MT.VoteResp, from: BigInt(from), to: 1n, term: 1, reject: !granted }));
    }
    c.drain(1n);
    assert.equal(c.raw(1n).raft.state, tc.want, `size ${tc.size} votes ${JSON.stringify(tc.votes)}`);
  }
});

test('§5.2 each server votes for at most one candidate in a term, first-come-first-served', () => {
  const cases: Array<{ vote: bigint; from: bigint; reject: boolean }> = [
    { vote: 0n, from: 2n, reject: false },
    { vote: 0n, from: 3n, reject: false },
    { vote: 2n, from: 2n, reject: false },
    { vote: 3n, from: 3n, reject: false },
    { vote: 2n, from: 3n, reject: true },
    { vote: 3n, from: 2n, reject: true },
  ];
  for (const tc of cases) {
    const c = Cluster.create(3);
    const r = c.raw(1n).raft;
    r.term = 1;
    r.vote = tc.vote;
    c.raw(1n).step(msg({ type: MT.Vote, from: tc.from, to: 1n, term: 1 }));
    const out = c.drain(1n);
    assert.equal(out.length, 1);
    assert.equal(out[0]!.type, MT.VoteResp);
    assert.equal(out[0]!.reject, tc.reject, `vote ${tc.vote} request from ${tc.from}`);
  }
});

test('§5.2 a candidate receiving AppendEntries from a leader of its term or newer becomes follower', () => {
  for (const term of [1, 2]) {
    const c = Cluster.create(3);
    c.raw(1n).campaign();
    c.drain(1n);
    c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term }));
    const r = c.raw(1n).raft;
    assert.equal(r.state, StateRole.Follower);
    assert.equal(r.term, term);
    assert.equal(r.lead, 2n);
  }
});

test('§5.2 election timeouts are chosen randomly from [T, 2T)', () => {
  const c = Cluster.create(3);
  const r = c.raw(1n).raft;
  const seen = new Set<number>();
  for (let round = 0; round < 200; round++) {
    r.becomeFollower(r.term + 1, 0n);
    let ticks = 0;
    while (r.state === StateRole.Follower) {
      c.raw(1n).tick();
      ticks++;
    }
    c.drain(1n);
    assert.ok(ticks >= r.electionTimeout && ticks < 2 * r.electionTimeout, `timeout ${ticks}`);
    seen.add(ticks);
  }
  assert.equal(seen.size, r.electionTimeout, 'every value in [T, 2T) occurs');
});

test('§5.2 randomized timeouts mean that in most cases a single server times out first', () => {
  let conflicts = 0;
  const rounds = 300;
  for (let round = 0; round < rounds; round++) {
    const c = Cluster.create(5);
    for (const id of c.nodes.keys()) c.raw(id).raft.becomeFollower(round + 1, 0n);
    let timedOut = 0;
    while (timedOut === 0) {
      for (const id of c.nodes.keys()) {
        c.raw(id).tick();
        if (c.raw(id).raft.state !== StateRole.Follower) timedOut++;
      }
    }
    if (timedOut > 1) conflicts++;
  }
  // Each node draws from 10 values: two or more of 5 nodes share the earliest one in well under 30% of the cases.
  assert.ok(conflicts / rounds <= 0.3, `conflict rate ${conflicts / rounds}`);
});

test('§5.3 the leader appends a command to its log, then issues AppendEntries to every follower', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('some data'));
  const r = c.raw(1n).raft;
  assert.equal(r.raftLog.lastIndex(), 2);
  assert.deepEqual(describe(c.drain(1n)), [
    '1->2 MsgApp Term:1 Log:1/1 Commit:1 Entries:[1/2 EntryNormal "some data"]',
    '1->3 MsgApp Term:1 Log:1/1 Commit:1 Entries:[1/2 EntryNormal "some data"]',
  ]);
});

test('§5.3 the leader commits an entry once it is replicated on a majority, then applies it', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('some data'));
  c.processReady(1n);
  c.deliver(2n);
  c.processReady(2n);
  c.deliver(1n);
  const rd = c.processReady(1n)!;
  assert.equal(rd.hardState?.commit, 2);
  assert.deepEqual(rd.committedEntries.map((e) => `${e.term}/${e.index}`), ['1/2']);
  // The leader tells the followers the new commit index in its next appends.
  assert.ok(rd.messages.every((m) => m.commit === 2));
});

test('§5.3 an entry is committed once a majority of the cluster has acknowledged it', () => {
  const cases: Array<{ size: number; acceptors: number[]; committed: boolean }> = [
    { size: 1, acceptors: [], committed: true },
    { size: 3, acceptors: [], committed: false },
    { size: 3, acceptors: [2], committed: true },
    { size: 3, acceptors: [2, 3], committed: true },
    { size: 5, acceptors: [], committed: false },
    { size: 5, acceptors: [2], committed: false },
    { size: 5, acceptors: [2, 3], committed: true },
    { size: 5, acceptors: [2, 3, 4, 5], committed: true },
  ];
  for (const tc of cases) {
    const c = Cluster.create(tc.size);
    c.elect(1n);
    c.filter = (m) => m.from === 1n ? tc.acceptors.includes(Number(m.to)) : true;
    c.raw(1n).propose(enc('x'));
    c.stabilize();
    const committed = c.raw(1n).raft.raftLog.committed;
    assert.equal(committed >= 2, tc.committed, `size ${tc.size} acceptors ${tc.acceptors}`);
  }
});

test('§5.3 committing an entry also commits all preceding entries, including those of previous leaders', () => {
  const old = [ent(1, 1, 'a'), ent(2, 2, 'b')];
  const c = Cluster.create(3);
  for (const id of [1n, 2n, 3n]) c.withLog(id, { entries: old, term: 2 });
  c.elect(1n);
  c.raw(1n).propose(enc('c'));
  c.stabilize();
  assert.equal(c.raw(1n).raft.raftLog.committed, 4);
  for (const id of [1n, 2n, 3n]) assert.deepEqual(c.get(id).applied, ['a', 'b', 'c']);
});

test('§5.3 a follower applies an entry once it learns the entry is committed', () => {
  const c = Cluster.create(3);
  c.raw(1n).raft.becomeFollower(1, 2n);
  c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term: 1, entries: [ent(1, 1, 'a'), ent(2, 1, 'b')], commit: 1 }));
  let rd = c.processReady(1n)!;
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [1]);
  c.raw(1n).step(msg({ type: MT.Heartbeat, from: 2n, to: 1n, term: 1, commit: 2 }));
  rd = c.processReady(1n)!;
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [2]);
  assert.deepEqual(c.get(1n).applied, ['a', 'b']);
});

test('§5.3 a follower rejects AppendEntries whose preceding entry (index and term) it does not have', () => {
  const cases: Array<{ term: number; index: number; want: string }> = [
    // Matches the committed prefix: ack with the commit index.
    { term: 0, index: 0, want: '1->2 MsgAppResp Term:2 Log:0/1' },
    { term: 1, index: 1, want: '1->2 MsgAppResp Term:2 Log:0/1' },
    { term: 2, index: 2, want: '1->2 MsgAppResp Term:2 Log:0/2' },
    // Mismatching term: reject, hinting our last index with a term <= the leader's.
    { term: 1, index: 2, want: '1->2 MsgAppResp Term:2 Log:1/2 Rejected (Hint: 1)' },
    // Beyond our log: reject, hinting our last index.
    { term: 3, index: 3, want: '1->2 MsgAppResp Term:2 Log:2/3 Rejected (Hint: 2)' },
  ];
  for (const tc of cases) {
    const c = Cluster.create(3);
    c.withLog(1n, { entries: [ent(1, 1), ent(2, 2)], term: 2, commit: 1 });
    c.raw(1n).raft.becomeFollower(2, 2n);
    c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term: 2, logTerm: tc.term, index: tc.index }));
    assert.deepEqual(describe(c.drain(1n)), [tc.want], `prev ${tc.term}/${tc.index}`);
  }
});

test('§5.3 a follower deletes conflicting entries and appends the new ones', () => {
  const cases: Array<{ index: number; term: number; ents: Entry[]; want: string[] }> = [
    { index: 2, term: 2, ents: [ent(3, 3)], want: ['1/1', '2/2', '3/3'] },
    { index: 1, term: 1, ents: [ent(2, 3), ent(3, 4)], want: ['1/1', '3/2', '4/3'] },
    { index: 0, term: 0, ents: [ent(1, 1)], want: ['1/1', '2/2'] },
    { index: 0, term: 0, ents: [ent(1, 3)], want: ['3/1'] },
  ];
  for (const tc of cases) {
    const c = Cluster.create(3);
    c.withLog(1n, { entries: [ent(1, 1), ent(2, 2)], term: 2 });
    c.raw(1n).raft.becomeFollower(2, 2n);
    c.raw(1n).step(msg({ type: MT.App, from: 2n, to: 1n, term: 2, logTerm: tc.term, index: tc.index, entries: tc.ents }));
    c.drain(1n);
    const s = c.get(1n).storage;
    const got = s.entries(1, s.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => `${e.term}/${e.index}`);
    assert.deepEqual(got, tc.want);
  }
});

test('§5.3 the leader brings inconsistent follower logs into agreement with its own (Figure 7)', () => {
  const terms = (ts: number[]): Entry[] => ts.map((t, i) => ent(i + 1, t, `${i + 1}`));
  const leaderLog = terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
  const followers = [
    terms([1, 1, 1, 4, 4, 5, 5, 6, 6]), // (a) missing entries
    terms([1, 1, 1, 4]), // (b)
    terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6]), // (c) extra uncommitted entry
    terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7]), // (d) extra entries of a later term
    terms([1, 1, 1, 4, 4, 4, 4]), // (e) missing and extra
    terms([1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]), // (f) entries of terms the leader never saw
  ];
  for (const [k, flog] of followers.entries()) {
    const c = Cluster.create(3);
    c.withLog(1n, { entries: leaderLog, term: 8 });
    c.withLog(2n, { entries: flog, term: 7 });
    c.withLog(3n, { entries: leaderLog, term: 7 });
    c.elect(1n);
    assert.equal(c.raw(1n).raft.state, StateRole.Leader, `case ${k}`);
    const st = (id: NodeId): string[] => {
      const s = c.get(id).storage;
      return s.entries(1, s.lastIndex() + 1, Number.MAX_SAFE_INTEGER).map((e) => `${e.term}/${e.index}`);
    };
    assert.deepEqual(st(2n), st(1n), `follower case ${String.fromCharCode(97 + k)}`);
  }
});

test('§5.4.1 a vote request carries the index and term of the candidate\'s last log entry', () => {
  const c = Cluster.create(3);
  c.withLog(1n, { entries: [ent(1, 1), ent(2, 2)], term: 2 });
  c.raw(1n).campaign();
  assert.deepEqual(describe(c.drain(1n)), ['1->2 MsgVote Term:3 Log:2/2', '1->3 MsgVote Term:3 Log:2/2']);
});

test('§5.4.1 a voter denies its vote to a candidate whose log is less up-to-date than its own', () => {
  const cases: Array<{ log: Entry[]; index: number; logTerm: number; reject: boolean }> = [
    // same last term: the longer or equal log wins
    { log: [ent(1, 1), ent(2, 1)], index: 2, logTerm: 1, reject: false },
    { log: [ent(1, 1), ent(2, 1)], index: 3, logTerm: 1, reject: false },
    { log: [ent(1, 1), ent(2, 1)], index: 1, logTerm: 1, reject: true },
    // a later last term wins whatever the length
    { log: [ent(1, 1), ent(2, 1)], index: 1, logTerm: 2, reject: false },
    { log: [ent(1, 1), ent(2, 2)], index: 3, logTerm: 1, reject: true },
    { log: [ent(1, 1), ent(2, 2)], index: 2, logTerm: 2, reject: false },
  ];
  for (const tc of cases) {
    const c = Cluster.create(3);
    c.withLog(1n, { entries: tc.log, term: 2 });
    c.raw(1n).step(msg({ type: MT.Vote, from: 2n, to: 1n, term: 3, index: tc.index, logTerm: tc.logTerm }));
    const out = c.drain(1n);
    assert.equal(out[0]?.reject, tc.reject, `candidate ${tc.logTerm}/${tc.index}`);
  }
});

test('§5.4.2 a leader commits only entries of its own term by counting replicas', () => {
  // Figure 8: an entry of an earlier term, even once on a majority, commits only with an entry of the current term.
  for (const [index, want] of [[1, 0], [2, 0], [3, 3]] as const) {
    const c = Cluster.create(3);
    c.withLog(1n, { entries: [ent(1, 1), ent(2, 2)], term: 2 });
    const r = c.raw(1n).raft;
    r.becomeCandidate();
    r.becomeLeader();
    c.drain(1n);
    c.raw(1n).step(msg({ type: MT.AppResp, from: 2n, to: 1n, term: r.term, index }));
    assert.equal(r.raftLog.committed, want, `ack of index ${index}`);
  }
});

test('§5.4.3 a server missing a committed entry cannot be elected (leader completeness)', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('committed'));
  c.stabilize();
  assert.equal(c.raw(1n).raft.raftLog.committed, 2);
  // Node 1 goes away; node 3 (missing entry 2) campaigns and node 2 refuses it.
  c.isolate(1n);
  c.elect(3n);
  assert.notEqual(c.raw(3n).raft.state, StateRole.Leader);
  c.elect(2n);
  assert.equal(c.raw(2n).raft.state, StateRole.Leader);
  c.raw(2n).propose(enc('next'));
  c.stabilize();
  assert.deepEqual(c.get(3n).applied, ['committed', 'next']);
});

test('§5.5 a follower that crashes and restarts catches up from the leader (idempotent AppendEntries)', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('a'));
  c.stabilize();
  c.restart(3n);
  c.raw(1n).propose(enc('b'));
  c.stabilize();
  assert.equal(c.raw(3n).raft.raftLog.committed, 3);
  assert.deepEqual(c.get(2n).applied, ['a', 'b']);
});
