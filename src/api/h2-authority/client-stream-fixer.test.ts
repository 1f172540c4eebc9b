import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientStreamFixer } from './client-stream-fixer.js';
import { FrameFlag, FrameType, H2ConnectionError, H2ErrorCode, writeFrameHeader } from './h2-frames.js';
import { encodeLiteralBlock, HpackDecoder, type HeaderField } from './hpack.js';

const limits = { headerBlockBytesMax: 256 * 1024, headerListBytesMax: 1 << 20, tableBytesMax: 65536 };
const newFixer = (dropFirstSettingsAck = false): ClientStreamFixer =>
  new ClientStreamFixer({ limits, fallbackAuthority: '127.0.0.1:1', dropFirstSettingsAck });

function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.alloc(9 + payload.length);
  writeFrameHeader(out, 0, { length: payload.length, type, flags, streamId });
  payload.copy(out, 9);
  return out;
}

const f = (name: string, value: string): HeaderField => ({ name, value, neverIndexed: false });
const request = (authority: string, extra: HeaderField[] = []): HeaderField[] =>
  [f(':method', 'POST'), f(':scheme', 'http'), f(':path', '/etcdserverpb.KV/Range'), f(':authority', authority), ...extra];

interface ParsedFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

function parseFrames(bytes: Buffer): ParsedFrame[] {
  const frames: ParsedFrame[] = [];
  for (let pos = 0; pos < bytes.length;) {
    const length = bytes.readUIntBE(pos, 3);
    frames.push({ type: bytes[pos + 3]!, flags: bytes[pos + 4]!, streamId: bytes.readUInt32BE(pos + 5), payload: bytes.subarray(pos + 9, pos + 9 + length) });
    pos += 9 + length;
  }
  return frames;
}

/** What the server's HPACK decoder sees: every header block of the fixer's output, in order. */
function serverView(output: Buffer): { blocks: HeaderField[][]; frames: ParsedFrame[] } {
  const decoder = new HpackDecoder({ tableBytesMax: 4096, headerListBytesMax: 1 << 20 });
  const frames = parseFrames(output);
  const blocks: HeaderField[][] = [];
  let fragments: Buffer[] = [];
  for (const fr of frames) {
    if (fr.type !== FrameType.Headers && fr.type !== FrameType.Continuation) continue;
    let body = fr.payload;
    if (fr.type === FrameType.Headers) {
      const padded = (fr.flags & FrameFlag.Padded) !== 0;
      const start = (padded ? 1 : 0) + ((fr.flags & FrameFlag.Priority) !== 0 ? 5 : 0);
      body = body.subarray(start, body.length - (padded ? body[0]! : 0));
    }
    fragments.push(body);
    if ((fr.flags & FrameFlag.EndHeaders) !== 0) {
      blocks.push(decoder.decode(Buffer.concat(fragments)).fields);
      fragments = [];
    }
  }
  return { blocks, frames };
}

const run = (fixer: ClientStreamFixer, chunks: Buffer[]): Buffer => Buffer.concat(chunks.flatMap((c) => fixer.push(c)));

/** Splits `bytes` at the given cut points (fractions of its length). */
function cut(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  return chunks;
}

// A Node-like client: blocks that index into the dynamic table (incremental indexing literals).
const indexedBlock = (authority: string): Buffer =>
  Buffer.concat([Buffer.from([0x83, 0x86]), Buffer.from([0x44, 22]), Buffer.from('/etcdserverpb.KV/Range'),
    Buffer.from([0x41, authority.length]), Buffer.from(authority, 'latin1')]);

test('traffic with a valid authority passes byte for byte, however it is chunked', () => {
  const input = Buffer.concat([
    frame(FrameType.Settings, 0, 0, Buffer.from([0, 4, 0, 1, 0, 0])),
    frame(FrameType.WindowUpdate, 0, 0, Buffer.from([0, 1, 0, 0])),
    frame(FrameType.Headers, FrameFlag.EndHeaders, 1, indexedBlock('127.0.0.1:2379')),
    frame(FrameType.Data, FrameFlag.EndStream, 1, Buffer.alloc(40000, 7)),
    frame(FrameType.Headers, FrameFlag.EndHeaders | FrameFlag.EndStream, 3, Buffer.from([0x83, 0x86, 0xbf, 0xbe])),
    frame(FrameType.Ping, 0, 0, Buffer.alloc(8, 1)),
  ]);
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }), (cuts) => {
      const fixer = newFixer();
      assert.deepEqual(run(fixer, cut(input, cuts)), input);
      assert.equal(fixer.rewriting, false);
      assert.equal(fixer.headerBlocksDone, 2);
      assert.equal(fixer.highestStreamId, 3);
    }),
    { numRuns: 200 },
  );
});

test('the first SETTINGS ACK answers the front and is dropped, later ones pass', () => {
  const fixer = newFixer(true);
  const ack = frame(FrameType.Settings, FrameFlag.Ack, 0);
  const settings = frame(FrameType.Settings, 0, 0);
  assert.deepEqual(run(fixer, [settings, ack.subarray(0, 4), ack.subarray(4), ack]), Buffer.concat([settings, ack]));
  assert.equal(fixer.settingsAckPending, false);
});

test('a bad authority is repaired and every later block re-encoded against the client table', () => {
  const fixer = newFixer();
  const bad = 'http://127.0.0.1:2379';
  const input = Buffer.concat([
    frame(FrameType.Headers, FrameFlag.EndHeaders, 1, indexedBlock(bad)),
    frame(FrameType.Data, FrameFlag.EndStream, 1, Buffer.from('body')),
    // 0xbf = the ":path" entry, 0xbe = the ":authority: http://..." one: unknown to the server's table.
    frame(FrameType.Headers, FrameFlag.EndHeaders | FrameFlag.EndStream, 3, Buffer.from([0x83, 0x86, 0xbf, 0xbe])),
  ]);
  const { blocks, frames } = serverView(run(fixer, cut(input, [0.3, 0.5, 0.9])));
  const want = request('127.0.0.1:2379');
  assert.deepEqual(blocks, [want, want]);
  assert.equal(fixer.rewriting, true);
  assert.deepEqual(frames.map((x) => [x.type, x.flags, x.streamId]), [
    [FrameType.Headers, FrameFlag.EndHeaders, 1],
    [FrameType.Data, FrameFlag.EndStream, 1],
    [FrameType.Headers, FrameFlag.EndHeaders | FrameFlag.EndStream, 3],
  ]);
  assert.equal(frames[1]!.payload.toString(), 'body');
});

test('padding and priority are handled and a long block is split into CONTINUATION frames', () => {
  const fixer = newFixer();
  const big = f('x-big', 'v'.repeat(40000));
  const block = encodeLiteralBlock(request('#initially=[http://10.1.2.3:2379]', [big]), []);
  const priority = Buffer.from([0x80, 0, 0, 0, 15]);
  const padding = Buffer.alloc(20);
  const first = Buffer.concat([Buffer.from([padding.length]), priority, block.subarray(0, 10000), padding]);
  const input = Buffer.concat([
    frame(FrameType.Headers, FrameFlag.Padded | FrameFlag.Priority | FrameFlag.EndStream, 5, first),
    frame(FrameType.Continuation, 0, 5, block.subarray(10000, 30000)),
    frame(FrameType.Continuation, FrameFlag.EndHeaders, 5, block.subarray(30000)),
  ]);
  const { blocks, frames } = serverView(run(fixer, [input]));
  assert.deepEqual(blocks, [request('10.1.2.3:2379', [big])]);
  assert.deepEqual(frames.map((x) => x.type), [FrameType.Headers, FrameType.Continuation, FrameType.Continuation]);
  assert.equal(frames[0]!.flags, FrameFlag.Priority | FrameFlag.EndStream);
  assert.deepEqual(frames[0]!.payload.subarray(0, 5), priority);
  assert.equal(frames[2]!.flags, FrameFlag.EndHeaders);
  for (const fr of frames) assert.ok(fr.payload.length <= 16384);
});

test('table size updates are replayed to the server and evictions tracked', () => {
  const fixer = newFixer();
  const sizeUpdate = Buffer.from([0x3f, 0xe1, 0x07]); // 1024
  const input = Buffer.concat([
    frame(FrameType.Headers, FrameFlag.EndHeaders, 1, Buffer.concat([sizeUpdate, indexedBlock('127.0.0.1:2379')])),
    // Shrink to 0 (evicting everything), grow back, then index a bad authority.
    frame(FrameType.Headers, FrameFlag.EndHeaders, 3, Buffer.concat([Buffer.from([0x20]), sizeUpdate, indexedBlock('a b')])),
    frame(FrameType.Headers, FrameFlag.EndHeaders, 5, Buffer.from([0x83, 0x86, 0xbf, 0xbe])),
  ]);
  const output = run(fixer, [input]);
  const { blocks } = serverView(output);
  assert.deepEqual(blocks, [request('127.0.0.1:2379'), request('127.0.0.1:1'), request('127.0.0.1:1')]);
  // Block 2 was re-encoded: it must still carry its size update (0), first thing in the block.
  const second = parseFrames(output)[1]!;
  assert.equal(second.payload[0], 0x20);
});

test('framing and HPACK errors are connection errors with the right code', () => {
  const headers = frame(FrameType.Headers, 0, 1, indexedBlock('127.0.0.1:1'));
  const cases: Array<[Buffer, number]> = [
    [frame(FrameType.Continuation, FrameFlag.EndHeaders, 1, Buffer.from([0x82])), H2ErrorCode.ProtocolError],
    [Buffer.concat([headers, frame(FrameType.Data, 0, 1)]), H2ErrorCode.ProtocolError],
    [Buffer.concat([headers, frame(FrameType.Continuation, FrameFlag.EndHeaders, 3)]), H2ErrorCode.ProtocolError],
    [frame(FrameType.Headers, FrameFlag.EndHeaders, 1, Buffer.from([0x80])), H2ErrorCode.CompressionError],
    [frame(FrameType.Headers, FrameFlag.EndHeaders | FrameFlag.Padded, 1, Buffer.from([9, 0x82])), H2ErrorCode.ProtocolError],
    [frame(FrameType.Headers, FrameFlag.EndHeaders, 1, Buffer.alloc(300 * 1024, 0x82)), H2ErrorCode.EnhanceYourCalm],
  ];
  for (const [input, code] of cases) {
    assert.throws(() => newFixer().push(input), (err) => err instanceof H2ConnectionError && err.code === code);
  }
});

test('bytes held mid-frame are returned for a hand-over', () => {
  const fixer = newFixer();
  const block = frame(FrameType.Headers, 0, 1, indexedBlock('127.0.0.1:1'));
  const cont = frame(FrameType.Continuation, FrameFlag.EndHeaders, 1, Buffer.alloc(0));
  assert.deepEqual(fixer.push(Buffer.concat([block, cont.subarray(0, 5)])), []);
  assert.deepEqual(Buffer.concat(fixer.heldBytes()), Buffer.concat([block, cont.subarray(0, 5)]));
});

test('arbitrary input either passes or fails as a connection error, never anything else', () => {
  const frameArb = fc.record({
    type: fc.constantFrom(FrameType.Data, FrameType.Headers, FrameType.Continuation, FrameType.Settings, FrameType.Ping, 0x42),
    flags: fc.integer({ min: 0, max: 255 }),
    streamId: fc.integer({ min: 0, max: 7 }),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
      fc.constantFrom(indexedBlock('http://127.0.0.1:2379'), indexedBlock('127.0.0.1:1')),
    ),
  }).map((x) => frame(x.type, x.flags, x.streamId, x.payload));
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 8 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (frames, cuts) => {
      const fixer = newFixer(true);
      try {
        run(fixer, cut(Buffer.concat(frames), cuts));
      } catch (err) {
        assert.ok(err instanceof H2ConnectionError, String(err));
      }
    }),
    { numRuns: 500 },
  );
});
