/**
 * Claims of Ongaro's thesis ("Consensus: Bridging Theory and Practice"): leadership transfer (§3.10),
 * membership changes (§4), check-quorum (§6.2), reads (§6.4) and PreVote (§9.6); log compaction is the
 * paper's §7. Each test name starts with the section it checks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProposalDroppedError, StateRole } from './contract.js';
import { describeMessage } from './describe.js';
import { Cluster, confStateOf, enc } from './rafttest/cluster.js';
import { parseConfChanges } from './conf-change.js';
import type { ConfChangeTransition, Message, NodeId } from './types.js';
import { ConfChangeTransition as CT, MessageType as MT, NONE } from './types.js';
import type { MessageFields } from './util.js';
import { makeMessage } from './util.js';

const msg = (f: MessageFields): Message => makeMessage(f);
const dec = new TextDecoder();

function proposeCC(c: Cluster, id: NodeId, changes: string, transition: ConfChangeTransition = CT.Auto): void {
  c.raw(id).proposeConfChange({ transition, changes: parseConfChanges(changes), context: new Uint8Array() });
}

function tickElection(c: Cluster, id: NodeId): void {
  const r = c.raw(id).raft;
  for (let i = 0; i < 2 * r.electionTimeout; i++) c.raw(id).tick();
}

// --- §3.10 leadership transfer ---------------------------------------------------------------------

test('§3.10 transfer to an up-to-date follower: the leader sends TimeoutNow and the target wins at once', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).transferLeader(2n);
  const out = c.drain(1n);
  assert.deepEqual(out.map((m) => describeMessage(m)), ['1->2 MsgTimeoutNow Term:1 Log:0/0']);
  c.send(out);
  c.stabilize();
  assert.equal(c.raw(2n).raft.state, StateRole.Leader);
  assert.equal(c.raw(2n).raft.term, 2);
  assert.equal(c.raw(1n).raft.state, StateRole.Follower);
  assert.equal(c.raw(1n).raft.lead, 2n);
});

test('§3.10 transfer to a lagging follower: the leader first brings its log up to date', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  for (let i = 0; i < 3; i++) c.raw(1n).propose(enc(`p${i}`));
  c.stabilize();
  c.heal();
  c.raw(1n).transferLeader(3n);
  const first = c.drain(1n);
  assert.deepEqual(first.map((m) => m.type), [MT.App], 'catch-up append, no TimeoutNow yet');
  c.send(first);
  c.stabilize();
  assert.equal(c.raw(3n).raft.state, StateRole.Leader);
  assert.deepEqual(c.get(3n).applied, ['p0', 'p1', 'p2']);
});

test('§3.10 proposals are refused while a transfer is in progress', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  c.raw(1n).transferLeader(3n);
  assert.equal(c.raw(1n).raft.leadTransferee, 3n);
  assert.throws(() => c.raw(1n).propose(enc('y')), ProposalDroppedError);
});

test('§3.10 a transfer that does not finish within an election timeout is aborted', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  c.raw(1n).transferLeader(3n);
  for (let i = 0; i < c.raw(1n).raft.electionTimeout; i++) c.raw(1n).tick();
  assert.equal(c.raw(1n).raft.leadTransferee, NONE);
  assert.equal(c.raw(1n).raft.state, StateRole.Leader);
  c.raw(1n).propose(enc('after'));
});

test('§3.10 the transferee campaigns at once: no pre-vote, and the request overrides the leader lease', () => {
  const c = Cluster.create(3, { preVote: true, checkQuorum: true });
  c.elect(1n);
  c.raw(1n).transferLeader(2n);
  c.send(c.drain(1n));
  c.deliver(2n);
  const votes = c.drain(2n);
  assert.deepEqual(votes.map((m) => m.type), [MT.Vote, MT.Vote]);
  // Node 3 heard from the leader just now (lease) but grants the vote: the request is a transfer.
  c.send(votes);
  c.stabilize();
  assert.equal(c.raw(2n).raft.state, StateRole.Leader);
});

test('§3.10 transfer requests to self or to a learner are ignored; followers forward them to the leader', () => {
  const c = Cluster.create(3, {}, { learners: [3n] });
  c.elect(1n);
  c.raw(1n).transferLeader(1n);
  assert.equal(c.raw(1n).raft.leadTransferee, NONE);
  c.raw(1n).transferLeader(3n);
  assert.equal(c.raw(1n).raft.leadTransferee, NONE);
  c.raw(2n).transferLeader(2n);
  const fwd = c.drain(2n);
  assert.deepEqual(fwd.map((m) => `${m.to} ${m.type} from ${m.from}`), [`1 ${MT.TransferLeader} from 2`]);
  c.send(fwd);
  c.stabilize();
  assert.equal(c.raw(2n).raft.state, StateRole.Leader);
});

// --- §4 membership changes -------------------------------------------------------------------------

/** A node with an empty configuration: it joins by receiving the log (or a snapshot) from the leader. */
function addBlankNode(c: Cluster, id: NodeId): void {
  c.add(id, confStateOf([]));
}

test('§4.1 adding a server: the change takes effect when applied and the new server catches up', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  c.raw(1n).propose(enc('before'));
  addBlankNode(c, 4n);
  proposeCC(c, 1n, 'v4');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.voters, [1n, 2n, 3n, 4n]);
  assert.deepEqual(c.get(4n).confState.voters, [1n, 2n, 3n, 4n]);
  assert.deepEqual(c.get(4n).applied, ['before']);
  // Four voters: committing needs three of them now.
  c.isolate(4n);
  c.partition([1n, 2n], [3n, 4n]);
  c.raw(1n).propose(enc('minority'));
  c.stabilize();
  assert.deepEqual(c.get(1n).applied, ['before'], 'two of four is not a majority');
});

test('§4.1 removing a server: the remaining servers form the new majority', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  proposeCC(c, 1n, 'r3');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.voters, [1n, 2n]);
  assert.equal(c.raw(1n).status().progress?.has(3n), false);
  c.isolate(3n);
  c.raw(1n).propose(enc('two of two'));
  c.stabilize();
  assert.deepEqual(c.get(2n).applied, ['two of two']);
});

test('§4.1 only one configuration change may be pending: another is refused until the first is applied', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  addBlankNode(c, 4n);
  addBlankNode(c, 5n);
  proposeCC(c, 1n, 'v4');
  proposeCC(c, 1n, 'v5');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.voters, [1n, 2n, 3n, 4n], 'the second change became an empty entry');
  proposeCC(c, 1n, 'v5');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.voters, [1n, 2n, 3n, 4n, 5n]);
});

test('§4.1 a node does not campaign while a committed configuration change is not applied', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  proposeCC(c, 1n, 'v4');
  c.processReady(1n);
  c.deliver(2n);
  c.processReady(2n);
  c.deliver(1n);
  c.processReady(1n);
  c.deliver(2n);
  // Node 2 learned the commit index but has not applied the change yet.
  const r2 = c.raw(2n).raft;
  assert.ok(r2.raftLog.committed > r2.raftLog.applied);
  c.raw(2n).campaign();
  assert.equal(r2.state, StateRole.Follower);
});

test('§4.2.1 a learner receives the log but neither votes in the quorum nor counts toward commit', () => {
  const c = Cluster.create(3, {}, { learners: [3n] });
  c.elect(1n);
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  assert.deepEqual(c.get(3n).applied, ['x']);
  // Voters are 1 and 2: without node 2, nothing commits even though the learner acknowledges.
  c.isolate(2n);
  c.raw(1n).propose(enc('y'));
  c.stabilize();
  assert.deepEqual(c.get(1n).applied, ['x']);
  // A learner never campaigns.
  tickElection(c, 3n);
  assert.equal(c.raw(3n).raft.state, StateRole.Follower);
});

test('§4.2.1 a learner is promoted to voter by a configuration change', () => {
  const c = Cluster.create(3, {}, { learners: [3n] });
  c.elect(1n);
  proposeCC(c, 1n, 'v3');
  c.stabilize();
  assert.deepEqual(c.get(3n).confState.voters, [1n, 2n, 3n]);
  assert.equal(c.raw(3n).raft.isLearner, false);
  c.isolate(2n);
  c.raw(1n).propose(enc('with 3'));
  c.stabilize();
  assert.deepEqual(c.get(1n).applied, ['with 3']);
});

test('§4.2.2 a leader removed from the configuration steps down once the change is applied', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  proposeCC(c, 1n, 'r1');
  c.stabilize();
  assert.equal(c.raw(1n).raft.state, StateRole.Follower);
  assert.deepEqual(c.get(2n).confState.voters, [2n, 3n]);
  c.elect(2n);
  assert.equal(c.raw(2n).raft.state, StateRole.Leader);
});

test('§4.2.3 with check-quorum, a server that heard from a leader within the election timeout ignores vote requests', () => {
  const c = Cluster.create(3, { checkQuorum: true });
  c.elect(1n);
  const r2 = c.raw(2n).raft;
  c.raw(2n).step(msg({ type: MT.Vote, from: 3n, to: 2n, term: 5, index: 10, logTerm: 5 }));
  assert.equal(r2.term, 1, 'term unchanged');
  assert.deepEqual(c.drain(2n), [], 'no response at all');
  // Past the election timeout without hearing from the leader, the request is considered.
  for (let i = 0; i < r2.electionTimeout; i++) c.raw(2n).tick();
  c.raw(2n).step(msg({ type: MT.Vote, from: 3n, to: 2n, term: 5, index: 10, logTerm: 5 }));
  assert.equal(r2.term, 5);
  assert.equal(r2.vote, 3n);
});

test('§4.3 joint consensus: while joint, commitment needs a majority of both the old and the new configuration', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  addBlankNode(c, 4n);
  addBlankNode(c, 5n);
  // Replace 2 and 3 by 4 and 5 at once: that needs the joint configuration (1 4 5)&&(1 2 3).
  proposeCC(c, 1n, 'v4 v5 r2 r3', CT.JointExplicit);
  c.stabilize();
  const cs = c.get(1n).confState;
  assert.deepEqual(cs.voters, [1n, 4n, 5n]);
  assert.deepEqual(cs.votersOutgoing, [1n, 2n, 3n]);
  // New majority only (1, 4, 5): not enough.
  c.filter = (m) => ![2n, 3n].includes(m.to) && ![2n, 3n].includes(m.from);
  c.raw(1n).propose(enc('new only'));
  c.stabilize();
  assert.deepEqual(c.get(1n).applied, []);
  // Old majority joins (2 reachable again): committed.
  c.filter = (m) => m.to !== 3n && m.from !== 3n;
  c.raw(1n).raft.tick();
  c.stabilize();
  for (let i = 0; i < 3; i++) {
    c.raw(1n).tick();
    c.stabilize();
  }
  assert.deepEqual(c.get(1n).applied, ['new only']);
});

test('§4.3 with auto-leave the leader leaves the joint configuration once entering it is applied', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  addBlankNode(c, 4n);
  proposeCC(c, 1n, 'v4 r3');
  c.stabilize();
  const cs = c.get(1n).confState;
  assert.deepEqual(cs.voters, [1n, 2n, 4n]);
  assert.deepEqual(cs.votersOutgoing, [], 'left the joint configuration');
  assert.deepEqual(c.get(4n).confState.voters, [1n, 2n, 4n]);
  assert.equal(c.raw(1n).status().progress?.has(3n), false);
});

test('§4.3 with an explicit transition the configuration stays joint until an empty change leaves it; other changes are refused meanwhile', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  addBlankNode(c, 4n);
  proposeCC(c, 1n, 'v4 r3', CT.JointExplicit);
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.votersOutgoing, [1n, 2n, 3n]);
  proposeCC(c, 1n, 'r2');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.votersOutgoing, [1n, 2n, 3n], 'refused: must leave the joint config first');
  proposeCC(c, 1n, '');
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.votersOutgoing, []);
  assert.deepEqual(c.get(1n).confState.voters, [1n, 2n, 4n]);
});

test('§4.3 a voter demoted to learner in a joint change becomes a learner when the joint config is left', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  proposeCC(c, 1n, 'l3', CT.JointExplicit);
  c.stabilize();
  assert.deepEqual(c.get(1n).confState.learnersNext, [3n]);
  proposeCC(c, 1n, '');
  c.stabilize();
  const cs = c.get(1n).confState;
  assert.deepEqual(cs.voters, [1n, 2n]);
  assert.deepEqual(cs.learners, [3n]);
  assert.deepEqual(cs.learnersNext, []);
});

// --- §6.2 check-quorum -----------------------------------------------------------------------------

test('§6.2 a leader that has not heard from a majority for an election timeout steps down', () => {
  const c = Cluster.create(3, { checkQuorum: true });
  c.elect(1n);
  c.isolate(1n);
  const r = c.raw(1n).raft;
  for (let i = 0; i < 2 * r.electionTimeout && r.state === StateRole.Leader; i++) {
    c.raw(1n).tick();
    c.stabilize();
  }
  assert.equal(r.state, StateRole.Follower);
});

test('§6.2 a leader that hears from a majority keeps its leadership', () => {
  const c = Cluster.create(3, { checkQuorum: true });
  c.elect(1n);
  c.isolate(3n);
  for (let i = 0; i < 5 * c.raw(1n).raft.electionTimeout; i++) {
    c.raw(1n).tick();
    c.stabilize();
  }
  assert.equal(c.raw(1n).raft.state, StateRole.Leader);
});

// --- §6.4 read-only queries ------------------------------------------------------------------------

test('§6.4 ReadIndex (safe): the read index is the commit index, released after a heartbeat round confirms leadership', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('w'));
  c.stabilize();
  c.raw(1n).readIndex(enc('ctx1'));
  const out = c.drain(1n);
  assert.deepEqual(out.map((m) => describeMessage(m)), [
    '1->2 MsgHeartbeat Term:1 Log:0/0 Commit:2 Context:"ctx1"',
    '1->3 MsgHeartbeat Term:1 Log:0/0 Commit:2 Context:"ctx1"',
  ]);
  assert.equal(c.raw(1n).raft.readStates.length, 0, 'not before a majority acks');
  c.send(out);
  c.deliver(2n);
  c.processReady(2n);
  c.deliver(1n);
  const rs = c.raw(1n).raft.readStates;
  assert.deepEqual(rs.map((r) => `${r.index} ${dec.decode(r.context)}`), ['2 ctx1']);
});

test('§6.4 a deposed or partitioned leader cannot answer a safe read', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(1n);
  c.raw(1n).readIndex(enc('lost'));
  for (let i = 0; i < 5; i++) {
    c.raw(1n).tick();
    c.stabilize();
  }
  assert.equal(c.raw(1n).raft.readStates.length, 0);
});

test('§6.4 a new leader answers reads only after it has committed an entry of its own term', () => {
  const c = Cluster.create(3);
  c.raw(1n).campaign();
  c.processReady(1n);
  c.deliver(2n);
  c.processReady(2n);
  c.deliver(1n);
  assert.equal(c.raw(1n).raft.state, StateRole.Leader);
  c.raw(1n).readIndex(enc('early'));
  assert.equal(c.raw(1n).raft.pendingReadIndexMessages.length, 1, 'held back');
  c.stabilize();
  const rs = c.raw(1n).raft.readStates;
  assert.equal(rs.length, 0, 'readStates were handed out in a Ready');
  assert.equal(c.raw(1n).raft.pendingReadIndexMessages.length, 0);
  assert.equal(c.raw(1n).raft.readOnly.pendingCount, 0, 'answered after the heartbeat round');
});

test('§6.4 followers forward ReadIndex to the leader and receive the read index back', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('w'));
  c.stabilize();
  c.raw(2n).readIndex(enc('f'));
  let got: string[] = [];
  for (let i = 0; i < 10 && got.length === 0; i++) {
    c.deliver();
    for (const id of c.nodes.keys()) {
      let rd;
      while ((rd = c.processReady(id)) !== null) {
        if (id === 2n) got = got.concat(rd.readStates.map((r) => `${r.index} ${dec.decode(r.context)}`));
      }
    }
  }
  assert.deepEqual(got, ['2 f']);
});

test('§6.4 a single-voter cluster answers reads at once', () => {
  const c = Cluster.create(1);
  c.elect(1n);
  c.raw(1n).readIndex(enc('solo'));
  assert.deepEqual(c.raw(1n).raft.readStates.map((r) => r.index), [1]);
});

test('§6.4.1 lease-based reads are answered without a heartbeat round, and require check-quorum', () => {
  const c = Cluster.create(3, { readOnlyOption: 'lease-based', checkQuorum: true });
  c.elect(1n);
  c.raw(1n).readIndex(enc('lease'));
  assert.deepEqual(c.raw(1n).raft.readStates.map((r) => r.index), [1]);
  assert.deepEqual(c.drain(1n), []);
  assert.throws(() => Cluster.create(3, { readOnlyOption: 'lease-based', checkQuorum: false }), /CheckQuorum/);
});

// --- §9.6 PreVote ----------------------------------------------------------------------------------

test('§9.6 with PreVote a partitioned server does not increase its term', () => {
  const c = Cluster.create(3, { preVote: true });
  c.elect(1n);
  c.isolate(3n);
  for (let k = 0; k < 5; k++) {
    tickElection(c, 3n);
    c.stabilize();
  }
  assert.equal(c.raw(3n).raft.term, 1);
  assert.equal(c.raw(3n).raft.state, StateRole.PreCandidate);
});

test('§9.6 with PreVote a rejoining server whose log fell behind does not disrupt the leader', () => {
  const c = Cluster.create(3, { preVote: true });
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('progress'));
  tickElection(c, 3n);
  c.stabilize();
  c.heal();
  tickElection(c, 3n);
  c.stabilize();
  // The pre-vote failed (log behind): nobody moved to a new term.
  assert.equal(c.raw(1n).raft.state, StateRole.Leader);
  assert.equal(c.raw(1n).raft.term, 1);
  assert.equal(c.raw(3n).raft.term, 1);
  // The next heartbeat brings the server back as a follower.
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(3n).raft.state, StateRole.Follower);
  assert.equal(c.raw(3n).raft.lead, 1n);
  assert.deepEqual(c.get(3n).applied, ['progress']);
});

test('§9.6 without PreVote a rejoining server with a higher term disrupts the leader', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('progress'));
  c.stabilize();
  tickElection(c, 3n);
  c.stabilize();
  assert.equal(c.raw(3n).raft.term, 2);
  c.heal();
  tickElection(c, 3n);
  c.stabilize();
  // Node 3 cannot win (its log is behind) but its vote requests forced everyone to a new term.
  assert.equal(c.raw(1n).raft.term, 3);
  assert.notEqual(c.raw(1n).raft.state, StateRole.Leader);
  assert.notEqual(c.raw(3n).raft.state, StateRole.Leader);
});

test('§9.6 a pre-vote is granted without changing the voter\'s term or vote; the pre-candidate then runs a real election', () => {
  const c = Cluster.create(3, { preVote: true });
  c.raw(1n).campaign();
  const r1 = c.raw(1n).raft;
  assert.equal(r1.state, StateRole.PreCandidate);
  assert.equal(r1.term, 0);
  const pre = c.drain(1n);
  assert.deepEqual(pre.map((m) => describeMessage(m)), ['1->2 MsgPreVote Term:1 Log:0/0', '1->3 MsgPreVote Term:1 Log:0/0']);
  c.raw(2n).step(pre[0]!);
  assert.equal(c.raw(2n).raft.term, 0);
  assert.equal(c.raw(2n).raft.vote, NONE);
  const resp = c.drain(2n);
  assert.deepEqual(resp.map((m) => describeMessage(m)), ['2->1 MsgPreVoteResp Term:1 Log:0/0']);
  c.raw(1n).step(resp[0]!);
  c.drain(1n);
  assert.equal(r1.state, StateRole.Candidate);
  assert.equal(r1.term, 1);
});

test('§9.6 with check-quorum a pre-vote is refused by a server that hears from a leader', () => {
  const c = Cluster.create(3, { preVote: true, checkQuorum: true });
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  c.heal();
  c.filter = (m) => !(m.from === 1n && m.to === 3n);
  tickElection(c, 3n);
  c.stabilize();
  assert.equal(c.raw(1n).raft.state, StateRole.Leader);
  assert.equal(c.raw(2n).raft.term, 1);
});

// --- §7 log compaction (paper) ---------------------------------------------------------------------

function compact(c: Cluster, id: NodeId): number {
  const n = c.get(id);
  const applied = n.node.raft.raftLog.applied;
  n.storage.createSnapshot(applied, { confState: n.confState, data: enc(n.applied.join(',')) });
  n.storage.compact(applied);
  return applied;
}

test('§7 the leader sends a snapshot to a follower whose next entries were compacted away', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  for (let i = 0; i < 5; i++) c.raw(1n).propose(enc(`e${i}`));
  c.stabilize();
  const idx = compact(c, 1n);
  // Node 3 can hear the leader again, but its answers do not get through yet.
  c.filter = (m) => !(m.from === 3n && m.to === 1n && m.type === MT.AppResp && !m.reject);
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(1n).status().progress?.get(3n)?.state, 'snapshot', 'snapshot sent, not yet acknowledged');
  assert.equal(c.get(3n).storage.storedSnapshot().metadata.index, idx);
  assert.deepEqual(c.get(3n).applied, ['e0', 'e1', 'e2', 'e3', 'e4']);
  c.heal();
  c.raw(1n).reportSnapshot(3n, 'finish');
  assert.equal(c.raw(1n).status().progress?.get(3n)?.state, 'probe');
  c.raw(1n).propose(enc('after'));
  // Probing resumes with the next heartbeat response (the follower's ack of the snapshot was lost).
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(1n).status().progress?.get(3n)?.state, 'replicate');
  assert.deepEqual(c.get(3n).applied.at(-1), 'after');
});

test('§7 a failed snapshot is reported, the follower returns to probing and gets the snapshot again', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.isolate(3n);
  c.raw(1n).propose(enc('a'));
  c.stabilize();
  compact(c, 1n);
  // The snapshot is lost on the way.
  c.filter = (m) => m.type !== MT.Snap;
  c.raw(1n).tick();
  c.stabilize();
  assert.equal(c.raw(1n).status().progress?.get(3n)?.state, 'snapshot');
  c.raw(1n).reportSnapshot(3n, 'failure');
  assert.equal(c.raw(1n).status().progress?.get(3n)?.state, 'probe');
  c.heal();
  c.raw(1n).tick();
  c.stabilize();
  assert.deepEqual(c.get(3n).applied, ['a']);
});

test('§7 a follower ignores a snapshot that is not newer than its commit index', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('a'));
  c.stabilize();
  const snap = c.get(1n).storage.createSnapshot(1, { confState: confStateOf([1n, 2n, 3n]), data: new Uint8Array() });
  c.raw(2n).step(msg({ type: MT.Snap, from: 1n, to: 2n, term: 1, snapshot: snap }));
  const out = c.drain(2n);
  assert.deepEqual(out.map((m) => describeMessage(m)), ['2->1 MsgAppResp Term:1 Log:0/2']);
  assert.equal(c.get(2n).storage.storedSnapshot().metadata.index, 0);
});

test('§7 a server restores its configuration from a snapshot', () => {
  const c = Cluster.create(3, {}, { index: 1 });
  c.elect(1n);
  addBlankNode(c, 4n);
  c.isolate(4n);
  proposeCC(c, 1n, 'v4');
  c.raw(1n).propose(enc('x'));
  c.stabilize();
  compact(c, 1n);
  c.heal();
  c.raw(1n).tick();
  c.stabilize();
  assert.deepEqual(c.get(4n).storage.storedSnapshot().metadata.confState.voters, [1n, 2n, 3n, 4n]);
  assert.deepEqual(c.raw(4n).status().config.voters, [1n, 2n, 3n, 4n]);
  assert.deepEqual(c.get(4n).applied, ['x']);
});

test('§7 a restarted server resumes from its snapshot and stored log', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  for (let i = 0; i < 4; i++) c.raw(1n).propose(enc(`e${i}`));
  c.stabilize();
  const idx = compact(c, 2n);
  c.restart(2n);
  const r = c.raw(2n).raft;
  assert.equal(r.raftLog.firstIndex(), idx + 1);
  assert.equal(r.raftLog.committed, idx);
  assert.equal(r.raftLog.applied, idx);
  c.raw(1n).propose(enc('more'));
  c.stabilize();
  assert.deepEqual(c.get(2n).applied, ['e0', 'e1', 'e2', 'e3', 'more'], 'state from the snapshot, later entries applied once');
});
