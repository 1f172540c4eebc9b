import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry } from '../../src/raft/types.js';
import { EntryType } from '../../src/raft/types.js';
import { decodePut, encodePut, KvMachine } from './kv-machine.js';

function put(index: number, term: number, proposalId: number, key: number): Entry {
  return { index, term, type: EntryType.Normal, data: encodePut({ proposalId, key }) };
}

test('puts round-trip through entries; the empty no-op carries none', () => {
  assert.deepEqual(decodePut(put(1, 1, 123456789, 7)), { proposalId: 123456789, key: 7 });
  assert.equal(decodePut({ index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) }), null);
});

test('applies in order, keeps the last write per key, and its chain depends on the whole history', () => {
  const a = KvMachine.empty();
  const b = KvMachine.empty();
  a.apply(put(1, 1, 10, 0));
  a.apply(put(2, 1, 11, 0));
  b.apply(put(1, 1, 10, 0));
  b.apply(put(2, 2, 11, 0));
  assert.deepEqual(a.get(0), { proposalId: 11, index: 2 });
  assert.notEqual(a.chain, b.chain);
  assert.throws(() => a.apply(put(4, 1, 12, 1)), /apply 4 after 2/);
});

test('a restored snapshot continues the same chain', () => {
  const a = KvMachine.empty(2);
  a.apply(put(3, 1, 1, 1));
  const b = KvMachine.restore(a.serialize());
  a.apply(put(4, 1, 2, 2));
  b.apply(put(4, 1, 2, 2));
  assert.equal(a.chain, b.chain);
  assert.equal(b.applied, 4);
  assert.deepEqual(b.get(1), { proposalId: 1, index: 3 });
});
