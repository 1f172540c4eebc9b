import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProposalDroppedError, StateRole } from './contract.js';
import { MemoryStorage } from './memory-storage.js';
import { Cluster, enc, testConfig } from './rafttest/cluster.js';
import { RawNode } from './raw-node.js';
import { EntryType, MessageType as MT } from './types.js';

test('single node: campaign, become leader after the vote is persisted, commit a proposal', () => {
  const c = Cluster.create(1);
  const n = c.raw(1n);
  n.campaign();
  // The own vote counts only once durable: still a candidate until the Ready is advanced.
  assert.equal(n.raft.state, StateRole.Candidate);
  const rd = n.ready();
  assert.deepEqual(rd.hardState, { term: 1, vote: 1n, commit: 0 });
  assert.equal(rd.mustSync, true);
  c.get(1n).storage.setHardState(rd.hardState!);
  n.advance();
  assert.equal(n.raft.state, StateRole.Leader);
  c.stabilize();
  n.propose(enc('a'));
  c.stabilize();
  assert.deepEqual(c.get(1n).applied, ['a']);
  assert.equal(n.status().hardState.commit, 2);
  assert.equal(n.hasReady(), false);
});

test('three nodes: election, replication and apply on all nodes', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  assert.deepEqual(c.leaderIds(), [1n]);
  for (let i = 0; i < 10; i++) c.raw(1n).propose(enc(`v${i}`));
  c.stabilize();
  const want = Array.from({ length: 10 }, (_, i) => `v${i}`);
  for (const id of [1n, 2n, 3n]) assert.deepEqual(c.get(id).applied, want, `node ${id}`);
  const st = c.raw(1n).status();
  assert.equal(st.progress?.get(2n)?.match, 11);
  assert.equal(st.progress?.get(2n)?.state, 'replicate');
});

test('followers forward proposals to the leader; without a leader they refuse', () => {
  const c = Cluster.create(3);
  assert.throws(() => c.raw(2n).propose(enc('x')), ProposalDroppedError);
  c.elect(1n);
  c.raw(2n).propose(enc('fwd'));
  c.stabilize();
  assert.deepEqual(c.get(3n).applied, ['fwd']);
});

test('disableProposalForwarding: a follower drops proposals', () => {
  const c = Cluster.create(3, { disableProposalForwarding: true });
  c.elect(1n);
  assert.throws(() => c.raw(2n).propose(enc('x')), ProposalDroppedError);
});

test('proposeMany appends a batch as one message per follower', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).proposeMany([enc('a'), enc('b'), enc('c')]);
  const rd = c.processReady(1n)!;
  const apps = rd.messages.filter((m) => m.type === MT.App);
  assert.equal(apps.length, 2);
  for (const m of apps) assert.equal(m.entries.length, 3);
  c.stabilize();
  assert.deepEqual(c.get(3n).applied, ['a', 'b', 'c']);
});

test('bootstrap: conf change entries committed at term 1, the node can campaign at once', () => {
  const storage = new MemoryStorage();
  const n = new RawNode(testConfig(1n, storage));
  n.bootstrap([{ id: 1n }]);
  const rd = n.ready();
  assert.equal(rd.entries.length, 1);
  assert.equal(rd.entries[0]!.type, EntryType.ConfChangeV2);
  assert.equal(rd.committedEntries.length, 1);
  storage.append(rd.entries);
  storage.setHardState(rd.hardState!);
  n.advance();
  n.campaign();
  for (let i = 0; i < 5 && n.hasReady(); i++) {
    const r2 = n.ready();
    storage.append(r2.entries);
    if (r2.hardState) storage.setHardState(r2.hardState);
    n.advance();
  }
  assert.equal(n.raft.state, StateRole.Leader);
  assert.equal(n.status().hardState.commit, 2);
});

test('ready() twice without advance() is a contract violation', () => {
  const c = Cluster.create(1);
  c.raw(1n).campaign();
  c.raw(1n).ready();
  assert.throws(() => c.raw(1n).ready(), /advance/);
});

test('restart from storage keeps term, vote, log and commit', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  c.raw(1n).propose(enc('p'));
  c.stabilize();
  const before = c.raw(2n).status().hardState;
  c.restart(2n);
  const after = c.raw(2n).status().hardState;
  assert.deepEqual(after, before);
  assert.equal(c.raw(2n).raft.raftLog.lastIndex(), 2);
});

test('readIndex refuses an empty context (a heartbeat ack could never be matched to it)', () => {
  const c = Cluster.create(3);
  c.elect(1n);
  assert.throws(() => c.raw(1n).readIndex(new Uint8Array(0)), /non-empty/);
});
