import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReadIndexCoordinator } from './read-index.js';
import { isEtcdError } from '../base/errors.js';

function fakeHost() {
  const requests: Uint8Array[] = [];
  let applied = 0;
  return {
    requests,
    setApplied(i: number) { applied = i; },
    host: { requestReadIndex: (c: Uint8Array) => { requests.push(c); }, appliedIndex: () => applied },
  };
}

test('reads arriving during a round share the next round; each resolves only once applied reaches its index', async () => {
  const h = fakeHost();
  const c = new ReadIndexCoordinator(h.host, { timeoutMs: 10_000 });
  const order: string[] = [];
  const a = c.waitLinearizable().then(() => order.push('a'));
  const b = c.waitLinearizable().then(() => order.push('b'));
  const d = c.waitLinearizable().then(() => order.push('d'));
  assert.equal(h.requests.length, 1, 'one round for the first read; others queue');
  c.onReadStates([{ index: 5, context: h.requests[0]! }]);
  assert.equal(h.requests.length, 2, 'queued reads start the next round');
  await Promise.resolve();
  assert.deepEqual(order, [], 'not applied up to 5 yet');
  h.setApplied(5);
  c.onApplied(5);
  await a;
  assert.deepEqual(order, ['a']);
  c.onReadStates([{ index: 7, context: h.requests[1]! }]);
  h.setApplied(7);
  c.onApplied(7);
  await Promise.all([b, d]);
  assert.deepEqual(order.sort(), ['a', 'b', 'd']);
});

test('a round that raft refuses fails its reads with NoLeader; a leader change fails rounds in flight', async () => {
  const c1 = new ReadIndexCoordinator({ requestReadIndex: () => { throw new Error('no leader'); }, appliedIndex: () => 0 }, { timeoutMs: 10_000 });
  await assert.rejects(c1.waitLinearizable(), (e) => isEtcdError(e, 'NoLeader'));
  const h = fakeHost();
  const c2 = new ReadIndexCoordinator(h.host, { timeoutMs: 10_000 });
  const p = c2.waitLinearizable();
  c2.onLeaderChanged();
  await assert.rejects(p, (e) => isEtcdError(e, 'LeaderChanged'));
});

test('a round whose answer is lost is asked again until answered', async () => {
  const requests: Uint8Array[] = [];
  const applied = 10;
  const c = new ReadIndexCoordinator({ requestReadIndex: (x) => { requests.push(x); }, appliedIndex: () => applied }, { timeoutMs: 10_000, retryMs: 5 });
  const p = c.waitLinearizable();
  const deadline = Date.now() + 5000;
  while (requests.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.ok(requests.length >= 3, `asked ${requests.length} times`);
  assert.deepEqual(requests[1], requests[0], 'the same round is asked again, not a new one');
  c.onReadStates([{ index: 10, context: requests[0]! }]);
  await p;
  const asked = requests.length;
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(requests.length, asked, 'no more retries once answered');
});
