import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { decodeKeyOf, decodeKeyValue, decodeKeyValueMeta, encodeKeyValue } from './kv-codec.js';

const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
const safe = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: BigInt(Number.MAX_SAFE_INTEGER) }));
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

test('encoding is byte-identical to the generated protobuf codec and round-trips', () => {
  fc.assert(
    fc.property(bytes(40), safe, safe, safe, bytes(300), int64, (key, createRevision, modRevision, version, value, lease) => {
      const kv: KeyValue = { key, createRevision, modRevision, version, value, lease };
      const ours = encodeKeyValue(kv);
      const reference = Buffer.from(KeyValue.encode(kv).finish());
      assert.deepEqual(ours, reference);
      const back = decodeKeyValue(ours);
      assert.deepEqual({ ...back, key: Buffer.from(back.key), value: Buffer.from(back.value) }, kv);
      const meta = decodeKeyValueMeta(ours);
      assert.equal(meta.key, key.toString('latin1'));
      assert.equal(BigInt(meta.createRevision), createRevision);
      assert.equal(BigInt(meta.version), version);
      assert.equal(meta.lease, lease);
      assert.equal(decodeKeyOf(ours), key.toString('latin1'));
    }),
  );
});

test('a tombstone record holds only the key, as etcd writes it', () => {
  const kv: KeyValue = { key: Buffer.from('k'), createRevision: 0n, modRevision: 0n, version: 0n, value: Buffer.alloc(0), lease: 0n };
  assert.equal(encodeKeyValue(kv).toString('hex'), '0a016b');
});

test('unknown fields are skipped and truncation is caught', () => {
  const withUnknown = Buffer.concat([Buffer.from([0x38, 0x05, 0x42, 0x01, 0x00]), encodeKeyValue({ key: Buffer.from('x'), createRevision: 1n, modRevision: 1n, version: 1n, value: Buffer.from('v'), lease: 0n })]);
  assert.equal(decodeKeyValue(withUnknown).key.toString(), 'x');
  assert.throws(() => decodeKeyValue(Buffer.from([0x0a, 0x05, 0x61])));
  assert.throws(() => decodeKeyValueMeta(Buffer.from([0x10, 0xff])));
});
