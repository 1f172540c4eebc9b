import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { crc32c } from './crc32c.js';

function bitwise(crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

test('crc32c matches the standard check value and a bit-at-a-time reference, incrementally', () => {
  assert.equal(crc32c(0, Buffer.from('123456789')), 0xe3069283);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 40 }), (a, b) => {
      assert.equal(crc32c(0, a), bitwise(0, a));
      assert.equal(crc32c(crc32c(0, a), b), bitwise(0, Buffer.concat([a, b])));
    }),
  );
});
