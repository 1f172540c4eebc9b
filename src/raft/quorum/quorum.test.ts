import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { NodeId } from '../types.js';
import { JointConfig } from './joint.js';
import { MajorityConfig } from './majority.js';
import { EMPTY_CONFIG_COMMIT, MapAckIndexer, VoteResult } from './quorum.js';

/** The obvious definition: the largest index that at least a majority of voters have acked. */
function naiveCommitted(voters: readonly NodeId[], acked: ReadonlyMap<NodeId, number>): number {
  if (voters.length === 0) return EMPTY_CONFIG_COMMIT;
  const q = Math.floor(voters.length / 2) + 1;
  let best = 0;
  const candidates = new Set<number>([0, ...voters.map((v) => acked.get(v) ?? 0)]);
  for (const idx of candidates) {
    const n = voters.filter((v) => (acked.get(v) ?? 0) >= idx).length;
    if (n >= q && idx > best) best = idx;
  }
  return best;
}

function naiveVote(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  const q = Math.floor(voters.length / 2) + 1;
  const yes = voters.filter((v) => votes.get(v) === true).length;
  const no = voters.filter((v) => votes.get(v) === false).length;
  if (yes >= q) return VoteResult.Won;
  if (voters.length - no >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

const idsArb = fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 7 }).map((xs) => xs.map((x) => BigInt(x)));
const ackArb = fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.integer({ min: 0, max: 20 }));
const toAcks = (d: Record<string, number>): Map<NodeId, number> => new Map(Object.entries(d).map(([k, v]) => [BigInt(k), v]));
const voteArb = fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.boolean());
const toVotes = (d: Record<string, boolean>): Map<NodeId, boolean> => new Map(Object.entries(d).map(([k, v]) => [BigInt(k), v]));

test('property: majority committed index equals the naive computation', () => {
  fc.assert(
    fc.property(idsArb, ackArb, (voters, acks) => {
      const m = toAcks(acks);
      assert.equal(new MajorityConfig(voters).committedIndex(new MapAckIndexer(m)), naiveCommitted(voters, m));
    }),
    { numRuns: 2000 },
  );
});

test('property: joint committed index is the minimum of both halves (naive)', () => {
  fc.assert(
    fc.property(idsArb, idsArb, ackArb, (inc, out, acks) => {
      const m = toAcks(acks);
      const j = new JointConfig(new MajorityConfig(inc), new MajorityConfig(out));
      const want = Math.min(naiveCommitted(inc, m), naiveCommitted(out, m));
      assert.equal(j.committedIndex(new MapAckIndexer(m)), want);
    }),
    { numRuns: 2000 },
  );
});

test('property: majority and joint vote results equal the naive computation', () => {
  fc.assert(
    fc.property(idsArb, idsArb, voteArb, (inc, out, vs) => {
      const votes = toVotes(vs);
      assert.equal(new MajorityConfig(inc).voteResult(votes), naiveVote(inc, votes));
      const a = naiveVote(inc, votes);
      const b = naiveVote(out, votes);
      const want = a === b ? a : a === VoteResult.Lost || b === VoteResult.Lost ? VoteResult.Lost : VoteResult.Pending;
      assert.equal(new JointConfig(new MajorityConfig(inc), new MajorityConfig(out)).voteResult(votes), want);
    }),
    { numRuns: 2000 },
  );
});

test('committed index examples: majority of 3, joint, unknown voters count as 0', () => {
  const acks = new MapAckIndexer(new Map([[1n, 5], [2n, 3], [3n, 9]]));
  assert.equal(new MajorityConfig([1n, 2n, 3n]).committedIndex(acks), 5);
  assert.equal(new MajorityConfig([1n, 2n, 3n, 4n]).committedIndex(acks), 3);
  const j = new JointConfig(new MajorityConfig([1n, 3n]), new MajorityConfig([2n]));
  assert.equal(j.committedIndex(acks), 3);
  assert.equal(j.toString(), '(1 3)&&(2)');
});
