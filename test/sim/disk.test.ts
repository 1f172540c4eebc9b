import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Entry, Snapshot } from '../../src/raft/types.js';
import { EntryType } from '../../src/raft/types.js';
import { SimDisk } from './disk.js';
import { Prng } from './prng.js';

function ents(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push({ index: i, term, type: EntryType.Normal, data: new Uint8Array([i]) });
  return out;
}

function snap(index: number, term: number): Snapshot {
  return {
    data: new Uint8Array(0),
    metadata: { index, term, confState: { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } },
  };
}

test('synced records survive a crash; unsynced ones are lost unless the kernel flushed a prefix', () => {
  let sawLoss = false;
  let sawKeep = false;
  for (let seed = 0; seed < 50; seed++) {
    const d = SimDisk.empty();
    d.write({ kind: 'entries', entries: ents(1, 3, 1) });
    d.write({ kind: 'hardState', hardState: { term: 1, vote: 1n, commit: 2 } });
    d.sync();
    d.write({ kind: 'entries', entries: ents(4, 6, 1) });
    d.write({ kind: 'hardState', hardState: { term: 2, vote: 2n, commit: 5 } });
    const loss = d.crash(Prng.stream(seed, 'd'), { tear: false });
    const s = d.durable();
    assert.equal(loss.buffered, 2);
    assert.ok(s.entries.length === 3 || s.entries.length === 6);
    // a prefix: the hard state record never survives without the entries written before it
    if (s.hardState.term === 2) assert.equal(s.entries.length, 6);
    if (s.entries.length === 3) sawLoss = true;
    if (s.entries.length === 6) sawKeep = true;
    assert.ok(s.hardState.commit >= 2);
  }
  assert.ok(sawLoss && sawKeep);
});

test('a torn write keeps a prefix of the first lost entries record', () => {
  let torn = 0;
  for (let seed = 0; seed < 50; seed++) {
    const d = SimDisk.empty();
    d.writeSynced({ kind: 'entries', entries: ents(1, 2, 1) });
    d.write({ kind: 'entries', entries: ents(3, 10, 1) });
    const loss = d.crash(Prng.stream(seed, 't'), { tear: true });
    const s = d.durable();
    const last = s.entries.at(-1)?.index ?? 0;
    assert.deepEqual(s.entries.map((e) => e.index), Array.from({ length: last }, (_, i) => i + 1));
    if (loss.kept === 0) assert.equal(last, 2 + loss.tornEntries);
    if (loss.tornEntries > 0) torn++;
  }
  assert.ok(torn > 0);
});

test('entries overwrite a conflicting tail and must attach to the log', () => {
  const d = SimDisk.empty();
  d.writeSynced({ kind: 'entries', entries: ents(1, 5, 1) });
  d.writeSynced({ kind: 'entries', entries: ents(4, 4, 2) });
  assert.deepEqual(d.durable().entries.map((e) => `${e.index}/${e.term}`), ['1/1', '2/1', '3/1', '4/2']);
  assert.throws(() => d.writeSynced({ kind: 'entries', entries: ents(7, 8, 2) }), /do not attach/);
});

test('an installed snapshot replaces the log; a local one compacts it and raises the commit', () => {
  const d = SimDisk.empty();
  d.writeSynced({ kind: 'entries', entries: ents(1, 10, 1) });
  d.writeSynced({ kind: 'localSnapshot', snapshot: snap(8, 1), compactIndex: 5 });
  let s = d.durable();
  assert.equal(s.firstIndex, 6);
  assert.equal(s.entries[0]?.index, 6);
  assert.equal(s.hardState.commit, 8);
  assert.equal(s.snapshot?.metadata.index, 8);
  d.writeSynced({ kind: 'installSnapshot', snapshot: snap(20, 3) });
  s = d.durable();
  assert.equal(s.firstIndex, 21);
  assert.equal(s.entries.length, 0);
  assert.equal(s.hardState.commit, 20);
  d.writeSynced({ kind: 'entries', entries: ents(21, 22, 3) });
  assert.equal(d.lastIndex, 22);
});

test('the durable view is a copy: later writes do not change it', () => {
  const d = SimDisk.empty();
  d.writeSynced({ kind: 'entries', entries: ents(1, 2, 1) });
  const before = d.durable();
  d.writeSynced({ kind: 'entries', entries: ents(3, 3, 1) });
  assert.equal(before.entries.length, 2);
});
