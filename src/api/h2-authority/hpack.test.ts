import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { encodeLiteralBlock, HpackDecoder, HpackError, type HeaderField } from './hpack.js';
import { huffmanCodes, huffmanDecode, HuffmanError } from './hpack-huffman.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const plain = (name: string, value: string): HeaderField => ({ name, value, neverIndexed: false });
const decoder = (tableBytesMax = 4096): HpackDecoder =>
  new HpackDecoder({ tableBytesMax, initialTableBytes: Math.min(4096, tableBytesMax), headerListBytesMax: 1 << 20 });

/** Test-side Huffman encoder, from the same code table the decoder is built from. */
function huffmanEncode(s: string): Buffer {
  const bits: number[] = [];
  for (const ch of Buffer.from(s, 'latin1')) {
    const { code, bits: n } = huffmanCodes[ch]!;
    for (let b = n - 1; b >= 0; b--) bits.push(Math.floor(code / 2 ** b) % 2);
  }
  while (bits.length % 8 !== 0) bits.push(1); // EOS prefix as padding
  const out = Buffer.alloc(bits.length / 8);
  bits.forEach((bit, i) => (out[i >> 3]! |= bit << (7 - (i & 7))));
  return out;
}

test('huffman codes are the RFC 7541 Appendix B codes', () => {
  assert.deepEqual(huffmanCodes[48], { code: 0x0, bits: 5 }); // '0'
  assert.deepEqual(huffmanCodes[97], { code: 0x3, bits: 5 }); // 'a'
  assert.deepEqual(huffmanCodes[0], { code: 0x1ff8, bits: 13 });
  assert.deepEqual(huffmanCodes[10], { code: 0x3ffffffc, bits: 30 });
  assert.deepEqual(huffmanCodes[255], { code: 0x3ffffee, bits: 26 });
  assert.deepEqual(huffmanCodes[256], { code: 0x3fffffff, bits: 30 }); // EOS
});

test('huffman decoding round-trips every octet string', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const s = Buffer.from(bytes).toString('latin1');
      const encoded = huffmanEncode(s);
      assert.equal(huffmanDecode(encoded, 0, encoded.length), s);
    }),
    { numRuns: 300 },
  );
});

test('huffman decoding refuses long padding, non-EOS padding and an embedded EOS', () => {
  const a = huffmanEncode('a'); // 00011 + 111 padding
  assert.equal(huffmanDecode(a, 0, 1), 'a');
  assert.throws(() => huffmanDecode(Buffer.from([0x18]), 0, 1), HuffmanError); // padding 000
  assert.throws(() => huffmanDecode(Buffer.from([0x1f, 0xff]), 0, 2), HuffmanError); // 11 bits of padding
  assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4), HuffmanError); // EOS
});

interface Step {
  readonly block: string;
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly tableBytes: number;
}

function decodeSeries(tableBytesMax: number, steps: readonly Step[]): void {
  const d = decoder(tableBytesMax);
  for (const step of steps) {
    const { fields } = d.decode(hex(step.block));
    assert.deepEqual(fields.map((f) => [f.name, f.value]), step.fields);
    assert.equal(d.tableBytes, step.tableBytes);
  }
}

const requests = [
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com']],
  [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], [':authority', 'www.example.com'], ['cache-control', 'no-cache']],
  [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], [':authority', 'www.example.com'], ['custom-key', 'custom-value']],
] as const;

test('RFC 7541 C.3: requests without Huffman coding', () => {
  decodeSeries(4096, [
    { block: '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', fields: requests[0], tableBytes: 57 },
    { block: '8286 84be 5808 6e6f 2d63 6163 6865', fields: requests[1], tableBytes: 110 },
    { block: '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65', fields: requests[2], tableBytes: 164 },
  ]);
});

test('RFC 7541 C.4: requests with Huffman coding', () => {
  decodeSeries(4096, [
    { block: '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', fields: requests[0], tableBytes: 57 },
    { block: '8286 84be 5886 a8eb 1064 9cbf', fields: requests[1], tableBytes: 110 },
    { block: '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf', fields: requests[2], tableBytes: 164 },
  ]);
});

const date21 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const location = 'https://www.example.com';
const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const responses = [
  [[':status', '302'], ['cache-control', 'private'], ['date', date21], ['location', location]],
  [[':status', '307'], ['cache-control', 'private'], ['date', date21], ['location', location]],
  [[':status', '200'], ['cache-control', 'private'], ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'], ['location', location],
    ['content-encoding', 'gzip'], ['set-cookie', cookie]],
] as const;

test('RFC 7541 C.6: responses with Huffman coding and evictions in a 256-octet table', () => {
  decodeSeries(256, [
    {
      block: `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
              2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      fields: responses[0],
      tableBytes: 222,
    },
    { block: '4883 640e ffc1 c0bf', fields: responses[1], tableBytes: 222 },
    {
      block: `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
              77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
              9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      fields: responses[2],
      tableBytes: 215,
    },
  ]);
});

test('table size updates evict, are bounded, and must open the block', () => {
  const d = decoder(8192);
  d.decode(hex('4003 6162 6303 6465 66')); // abc: def, indexed
  assert.equal(d.tableEntries, 1);
  const { fields, tableSizeUpdates } = d.decode(hex('20 3fe1 1f 82')); // size 0, size 4096, :method GET
  assert.deepEqual(tableSizeUpdates, [0, 4096]);
  assert.deepEqual(fields, [plain(':method', 'GET')]);
  assert.equal(d.tableEntries, 0);
  assert.throws(() => d.decode(hex('be')), HpackError); // index 62: the entry was evicted
  assert.throws(() => d.decode(hex('82 20')), /size update after a header field/);
  assert.throws(() => d.decode(hex('3fe2 3f')), /too large/); // 8193 > 8192
});

test('malformed blocks are HpackErrors, never crashes', () => {
  const d = decoder();
  for (const bad of ['80', 'ff', 'ff ff ff ff ff ff 0f', '41', '41 05 61', '40 85 ff ff ff ff ff 01 61', '7f ff ff']) {
    assert.throws(() => d.decode(hex(bad)), HpackError, bad);
  }
  const small = new HpackDecoder({ tableBytesMax: 4096, headerListBytesMax: 40 });
  assert.throws(() => small.decode(hex('0003 6162 6303 6465 66 0003 6162 6303 6465 66')), /header list exceeds/);
});

test('literal blocks round-trip, keep never-indexed, and never touch the dynamic table', () => {
  const field = fc.record({
    name: fc.oneof(fc.constantFrom(':authority', ':path', 'content-type', 'te'), fc.string({ minLength: 1, maxLength: 20 })),
    value: fc.oneof(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('latin1'))),
    neverIndexed: fc.boolean(),
  }).map((f) => ({ ...f, name: Buffer.from(f.name, 'utf8').toString('latin1') }));
  fc.assert(
    fc.property(fc.array(field, { maxLength: 12 }), fc.array(fc.nat(4096), { maxLength: 2 }), (fields, updates) => {
      const d = decoder();
      const decoded = d.decode(encodeLiteralBlock(fields, updates));
      assert.deepEqual(decoded.fields, fields);
      assert.deepEqual(decoded.tableSizeUpdates, updates);
      assert.equal(d.tableEntries, 0);
    }),
    { numRuns: 300 },
  );
});
