import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { GrpcCode } from '../../base/errors.js';
import { sniffProtocol } from './client-listener.js';
import {
  decodeGrpcMessage, encodeGrpcMessage, FramedMessages, frameMessage, frameMessages, GrpcStatusError, MessageReader,
  parseGrpcTimeout, type MessageEncoding,
} from './grpc-wire.js';
import { grpcFrame } from './test-support.js';

function readAll(reader: MessageReader, chunks: readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) reader.push(c, (m) => out.push(Buffer.from(m)));
  return out;
}

function statusOf(fn: () => unknown): { code: number; details: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof GrpcStatusError, `expected a GrpcStatusError, got ${String(err)}`);
    return { code: err.code, details: err.details };
  }
  assert.fail('expected a GrpcStatusError');
}

/** Cuts a buffer at the given offsets (sorted, deduplicated, inside the buffer). */
function cut(buf: Buffer, offsets: number[]): Buffer[] {
  const points = [...new Set(offsets.map((o) => o % (buf.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    parts.push(buf.subarray(at, p));
    at = p;
  }
  parts.push(buf.subarray(at));
  return parts;
}

test('messages come out whole and in order however the stream is cut into chunks', () => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
    fc.array(fc.nat(), { maxLength: 20 }),
    (messages, offsets) => {
      const wire = Buffer.concat(messages.map((m) => grpcFrame(m)));
      const got = readAll(new MessageReader({ maxBytes: 1000, encoding: 'identity' }), cut(wire, offsets));
      assert.deepEqual(got.map((b) => [...b]), messages.map((m) => [...m]));
    },
  ));
});

test('midMessage is true exactly while a frame is incomplete', () => {
  const reader = new MessageReader({ maxBytes: 100, encoding: 'identity' });
  const wire = grpcFrame(Buffer.from('hello'));
  reader.push(wire.subarray(0, 3), () => {});
  assert.equal(reader.midMessage, true);
  reader.push(wire.subarray(3, 7), () => {});
  assert.equal(reader.midMessage, true);
  const got: string[] = [];
  reader.push(wire.subarray(7), (m) => got.push(m.toString()));
  assert.deepEqual(got, ['hello']);
  assert.equal(reader.midMessage, false);
});

test('a message over the limit is refused from its prefix alone, with Go\'s text', () => {
  const reader = new MessageReader({ maxBytes: 10, encoding: 'identity' });
  const prefixOnly = grpcFrame(Buffer.alloc(11)).subarray(0, 5);
  assert.deepEqual(statusOf(() => reader.push(prefixOnly, () => {})), {
    code: GrpcCode.ResourceExhausted, details: 'grpc: received message larger than max (11 vs. 10)',
  });
  // Exactly the limit is fine.
  assert.equal(readAll(new MessageReader({ maxBytes: 10, encoding: 'identity' }), [grpcFrame(Buffer.alloc(10))]).length, 1);
});

test('compressed messages are inflated for gzip and deflate; the limit applies to the inflated size', () => {
  const payload = Buffer.from('x'.repeat(5000));
  const cases: Array<[MessageEncoding, Buffer]> = [['gzip', gzipSync(payload)], ['deflate', deflateSync(payload)]];
  for (const [encoding, packed] of cases) {
    const got = readAll(new MessageReader({ maxBytes: 5000, encoding }), [grpcFrame(packed, 1)]);
    assert.deepEqual(got, [payload]);
    const small = new MessageReader({ maxBytes: 4999, encoding });
    assert.deepEqual(statusOf(() => small.push(grpcFrame(packed, 1), () => {})), {
      code: GrpcCode.ResourceExhausted, details: 'grpc: received message larger than max (5000 vs. 4999)',
    });
  }
  // A bomb (50 MiB of zeros in ~50 KiB) stops inflating one byte past the limit.
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
  const reader = new MessageReader({ maxBytes: 100_000, encoding: 'gzip' });
  assert.deepEqual(statusOf(() => reader.push(grpcFrame(bomb, 1), () => {})), {
    code: GrpcCode.ResourceExhausted, details: 'grpc: received message larger than max (100001 vs. 100000)',
  });
});

test('bad frames are INTERNAL: compressed flag without encoding, unknown flag, corrupt gzip', () => {
  const identity = new MessageReader({ maxBytes: 100, encoding: 'identity' });
  assert.deepEqual(statusOf(() => identity.push(grpcFrame(Buffer.from('a'), 1), () => {})), {
    code: GrpcCode.Internal, details: 'grpc: compressed flag set with identity or empty encoding',
  });
  const flag = new MessageReader({ maxBytes: 100, encoding: 'identity' });
  assert.deepEqual(statusOf(() => flag.push(grpcFrame(Buffer.from('a'), 7), () => {})), {
    code: GrpcCode.Internal, details: 'grpc: received unexpected payload format 7',
  });
  const corrupt = new MessageReader({ maxBytes: 100, encoding: 'gzip' });
  const s = statusOf(() => corrupt.push(grpcFrame(Buffer.from('not gzip'), 1), () => {}));
  assert.equal(s.code, GrpcCode.Internal);
  assert.match(s.details, /^grpc: failed to decompress the received message /);
});

test('frameMessage copies small payloads behind the prefix and splits large ones; frameMessages batches', () => {
  const small = frameMessage(Buffer.from('abc'));
  assert.ok(Buffer.isBuffer(small));
  assert.deepEqual(small, grpcFrame(Buffer.from('abc')));
  const bigPayload = Buffer.alloc(64 * 1024, 1);
  const big = frameMessage(bigPayload);
  assert.ok(Array.isArray(big));
  assert.deepEqual(Buffer.concat(big), grpcFrame(bigPayload));
  const batch = frameMessages([Buffer.from('a'), Buffer.alloc(0), Buffer.from('bc')]);
  assert.deepEqual(batch, Buffer.concat([grpcFrame(Buffer.from('a')), grpcFrame(Buffer.alloc(0)), grpcFrame(Buffer.from('bc'))]));
});

test('grpc-timeout: every unit, rounding up, the 8-digit limit, and Go\'s error for a malformed value', () => {
  assert.equal(parseGrpcTimeout('1H'), 3_600_000);
  assert.equal(parseGrpcTimeout('2M'), 120_000);
  assert.equal(parseGrpcTimeout('3S'), 3000);
  assert.equal(parseGrpcTimeout('250m'), 250);
  assert.equal(parseGrpcTimeout('1500u'), 2);
  assert.equal(parseGrpcTimeout('1n'), 1);
  assert.equal(parseGrpcTimeout('0m'), 0);
  assert.equal(parseGrpcTimeout('99999999H'), Infinity);
  for (const bad of ['', 'S', '10', '10x', '123456789S', '-1S', '1.5S']) {
    assert.deepEqual(statusOf(() => parseGrpcTimeout(bad)), {
      code: GrpcCode.Internal, details: `transport: malformed grpc-timeout: ${JSON.stringify(bad)}`,
    });
  }
});

test('grpc-message percent-encoding matches Go and round-trips any text', () => {
  assert.equal(encodeGrpcMessage('etcdserver: key is not provided'), 'etcdserver: key is not provided');
  assert.equal(encodeGrpcMessage('100% ok\n'), '100%25 ok%0A');
  assert.equal(encodeGrpcMessage('é'), '%C3%A9');
  assert.equal(decodeGrpcMessage('%zz%4'), '%zz%4');
  fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
    const encoded = encodeGrpcMessage(s);
    assert.match(encoded, /^[\x20-\x7e]*$/);
    assert.equal(decodeGrpcMessage(encoded), s);
  }));
});

test('the protocol sniffer decides HTTP/1 on the first differing byte and HTTP/2 on the whole preface', () => {
  assert.equal(sniffProtocol(Buffer.from('G')), 'http/1.1');
  assert.equal(sniffProtocol(Buffer.from('P')), undefined);
  assert.equal(sniffProtocol(Buffer.from('PO')), 'http/1.1');
  assert.equal(sniffProtocol(Buffer.from('PUT / HTTP/1.1\r\n')), 'http/1.1');
  assert.equal(sniffProtocol(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n')), undefined);
  assert.equal(sniffProtocol(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00')), 'h2');
});

test('FramedMessages gives back the payloads it carries, and refuses a count or length that does not match', () => {
  const payloads = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(300, 7)];
  const bytes = frameMessages(payloads);
  assert.deepEqual(new FramedMessages(bytes, 3).payloads().map((p) => Buffer.from(p)), payloads);
  assert.equal(statusOf(() => new FramedMessages(bytes, 2).payloads()).code, GrpcCode.Internal);
  assert.throws(() => new FramedMessages(bytes.subarray(0, bytes.length - 1), 3).payloads());
});
