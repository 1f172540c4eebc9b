import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimNetwork, type LinkFaults } from './network.js';
import { Prng } from './prng.js';

const quiet: LinkFaults = { dropProb: 0, duplicateProb: 0, reorderProb: 0, delayMinRounds: 1, delayMaxRounds: 5 };

function drain(net: SimNetwork<number>, until: number): number[] {
  const out: number[] = [];
  for (let r = 0; r <= until; r++) for (const e of net.deliverDue(r)) out.push(e.msg);
  return out;
}

test('without reordering a link is FIFO even with random delays', () => {
  const net = new SimNetwork<number>(Prng.stream(1, 'n'), { faults: quiet, queueMax: 1000 });
  for (let i = 0; i < 200; i++) assert.equal(net.send(1n, 2n, i, 0), 'queued');
  assert.deepEqual(drain(net, 10), Array.from({ length: 200 }, (_, i) => i));
});

test('reordering lets messages overtake, and nothing is lost', () => {
  const net = new SimNetwork<number>(Prng.stream(2, 'n'), { faults: { ...quiet, reorderProb: 1 }, queueMax: 1000 });
  for (let i = 0; i < 200; i++) net.send(1n, 2n, i, 0);
  const got = drain(net, 10);
  assert.notDeepEqual(got, Array.from({ length: 200 }, (_, i) => i));
  assert.deepEqual([...got].sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i));
});

test('messages are not delivered before their delay', () => {
  const net = new SimNetwork<number>(Prng.stream(3, 'n'), { faults: { ...quiet, delayMinRounds: 3, delayMaxRounds: 3 }, queueMax: 10 });
  net.send(1n, 2n, 7, 10);
  assert.deepEqual(net.deliverDue(12), []);
  assert.deepEqual(net.deliverDue(13).map((e) => e.msg), [7]);
});

test('drop and duplicate probabilities show up in the counts', () => {
  const net = new SimNetwork<number>(Prng.stream(4, 'n'), {
    faults: { ...quiet, dropProb: 0.2, duplicateProb: 0.1 },
    queueMax: 100_000,
  });
  for (let i = 0; i < 10_000; i++) net.send(1n, 2n, i, 0);
  const got = drain(net, 10);
  assert.ok(net.stats.dropped > 1700 && net.stats.dropped < 2300, `dropped ${net.stats.dropped}`);
  assert.ok(net.stats.duplicated > 600 && net.stats.duplicated < 1000, `duplicated ${net.stats.duplicated}`);
  assert.equal(got.length, 10_000 - net.stats.dropped + net.stats.duplicated);
});

test('a symmetric partition cuts both ways, including messages in flight, and heal restores', () => {
  const net = new SimNetwork<number>(Prng.stream(5, 'n'), { faults: quiet, queueMax: 100 });
  net.send(1n, 3n, 1, 0);
  const cut: number[] = [];
  net.partition([[1n, 2n], [3n]], [1n, 2n, 3n]);
  assert.equal(net.send(3n, 1n, 2, 0), 'blocked');
  assert.equal(net.send(1n, 2n, 3, 0), 'queued');
  const got = [];
  for (let r = 0; r <= 10; r++) for (const e of net.deliverDue(r, (x) => cut.push(x.msg))) got.push(e.msg);
  assert.deepEqual(got, [3]);
  assert.deepEqual(cut, [1]);
  net.heal();
  assert.equal(net.send(3n, 1n, 4, 11), 'queued');
});

test('a one-way cut blocks only its direction; a node in no group is isolated', () => {
  const net = new SimNetwork<number>(Prng.stream(6, 'n'), { faults: quiet, queueMax: 100 });
  net.cutOneWay(1n, 2n);
  assert.equal(net.send(1n, 2n, 1, 0), 'blocked');
  assert.equal(net.send(2n, 1n, 2, 0), 'queued');
  net.heal();
  net.partition([[1n, 2n]], [1n, 2n, 3n]);
  assert.ok(net.isCut(3n, 1n) && net.isCut(1n, 3n) && !net.isCut(1n, 2n));
});

test('the queue is bounded', () => {
  const net = new SimNetwork<number>(Prng.stream(7, 'n'), { faults: quiet, queueMax: 3 });
  const outcomes = [1, 2, 3, 4].map((i) => net.send(1n, 2n, i, 0));
  assert.deepEqual(outcomes, ['queued', 'queued', 'queued', 'overflow']);
});

test('same seed, same deliveries', () => {
  const run = () => {
    const net = new SimNetwork<number>(Prng.stream(8, 'n'), { faults: { ...quiet, reorderProb: 0.5, dropProb: 0.1 }, queueMax: 1000 });
    for (let i = 0; i < 300; i++) net.send(BigInt(i % 3), BigInt((i + 1) % 3), i, i % 7);
    return drain(net, 30);
  };
  assert.deepEqual(run(), run());
});
