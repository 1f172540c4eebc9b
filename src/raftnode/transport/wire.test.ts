import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ByteWriter, decodeMessage } from '../codec.js';
import type { Message } from '../../raft/types.js';
import { appMessage } from './test-support.js';
import { FrameError, FrameReader, appendFrame, idToHex, parseHexId } from './wire.js';

function framesOf(messages: readonly Message[]): Uint8Array {
  const w = new ByteWriter();
  for (const m of messages) appendFrame(w, m);
  return w.copy();
}

function readAll(stream: Uint8Array, cuts: readonly number[], frameBytesMax = 1 << 20): Message[] {
  const out: Message[] = [];
  const reader = new FrameReader({ frameBytesMax, onFrame: (f) => out.push(decodeMessage(f)) });
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    reader.push(stream.subarray(at, cut));
    at = cut;
  }
  reader.push(stream.subarray(at));
  assert.equal(reader.midFrame, false);
  return out;
}

describe('FrameReader', () => {
  const messages = [
    appMessage({ from: 1n, to: 2n, index: 5, entryBytes: 128 }),
    appMessage({ from: 1n, to: 2n, index: 6 }),
    appMessage({ from: 1n, to: 2n, index: 7, entries: 3, entryBytes: 1000 }),
  ];
  const stream = framesOf(messages);

  it('returns the same messages whatever the chunk boundaries (every single cut point)', () => {
    for (let cut = 0; cut <= stream.length; cut++) assert.deepEqual(readAll(stream, [cut]), messages);
  });

  it('returns the same messages for random chunkings, byte by byte included', () => {
    assert.deepEqual(readAll(stream, Array.from({ length: stream.length }, (_, i) => i)), messages);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
        assert.deepEqual(readAll(stream, cuts), messages);
      }),
      { seed: 4242, numRuns: 300 },
    );
  });

  it('refuses a frame above the limit before reading its body', () => {
    const big = framesOf([appMessage({ from: 1n, to: 2n, index: 1, entryBytes: 5000 })]);
    const reader = new FrameReader({ frameBytesMax: 4096, onFrame: () => assert.fail('no frame expected') });
    assert.throws(() => reader.push(big.subarray(0, 6)), FrameError);
  });

  it('refuses an empty frame', () => {
    const reader = new FrameReader({ frameBytesMax: 4096, onFrame: () => assert.fail('no frame expected') });
    assert.throws(() => reader.push(new Uint8Array([0, 0, 0, 0])), /empty frame/);
  });

  it('reports a partial frame as pending', () => {
    const reader = new FrameReader({ frameBytesMax: 1 << 20, onFrame: () => {} });
    reader.push(stream.subarray(0, 2));
    assert.equal(reader.midFrame, true);
  });
});

describe('ids in headers', () => {
  it('prints ids as etcd does and parses them back', () => {
    assert.equal(idToHex(0x8e9e05c52164694dn), '8e9e05c52164694d');
    assert.equal(idToHex(0x0ab1n), 'ab1');
    assert.equal(parseHexId('8e9e05c52164694d'), 0x8e9e05c52164694dn);
    assert.equal(parseHexId('FFFFFFFFFFFFFFFF'), (1n << 64n) - 1n);
  });

  it('rejects what is not a 64-bit hex number', () => {
    for (const bad of [undefined, '', 'xyz', '-1', '0x12', '1'.repeat(17), '12 ']) assert.equal(parseHexId(bad), null, String(bad));
  });
});
