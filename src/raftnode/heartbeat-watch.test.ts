import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageType, type Message } from '../raft/types.js';
import { HeartbeatWatch } from './heartbeat-watch.js';

function message(type: number, to: bigint): Message {
  return {
    type, to, from: 1n, term: 2, logTerm: 0, index: 0, entries: [], commit: 0, snapshot: null,
    reject: false, rejectHint: 0, context: new Uint8Array(0),
  } as Message;
}

test('a heartbeat more than two intervals after the previous one to the same peer is late', () => {
  let now = 0;
  const sent: Message[] = [];
  const late: Array<[bigint, number]> = [];
  const w = new HeartbeatWatch({ send: (ms) => sent.push(...ms) }, { heartbeatMs: 100, now: () => now, onLate: (p, ms) => late.push([p, ms]) });
  w.send([message(MessageType.Heartbeat, 2n), message(MessageType.Heartbeat, 3n)]);
  now = 200;
  w.send([message(MessageType.Heartbeat, 2n), message(MessageType.App, 3n)]);
  assert.deepEqual(late, []);
  now = 450;
  w.send([message(MessageType.Heartbeat, 2n), message(MessageType.Heartbeat, 3n)]);
  assert.deepEqual(late, [[2n, 50], [3n, 250]]);
  assert.equal(sent.length, 6, 'every message still goes out');
  w.reset();
  now = 10_000;
  w.send([message(MessageType.Heartbeat, 2n)]);
  assert.equal(late.length, 2, 'the first heartbeat after a reset has nothing to be late against');
});
