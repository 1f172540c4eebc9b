/**
 * The JSON mapping: every message type of proto/ survives bytes -> jsonpb -> bytes (random values from the
 * descriptors, so no message is hand-picked), the output is the exact text etcd 3.4's gateway writes for
 * messages seen from it, and bad input gets Go's texts (each one observed from real etcd 3.4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  create, createFileRegistry, equals, fromBinary, ScalarType, toBinary, type DescField, type DescMessage,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { fileDescriptorSetBase64 } from '../../gen/descriptor-set.js';
import { PutResponse, RangeResponse, WatchResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { checkValid, goBase64Decode, GoJsonError, goQuote, parseValid, scanNext } from './go-json.js';
import { JsonMapper } from './jsonpb.js';

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, Buffer.from(fileDescriptorSetBase64, 'base64')));
const messages: DescMessage[] = [];
for (const type of registry) if (type.kind === 'message') messages.push(type);
const mapper = JsonMapper.fromProtoDescriptors();

/** mulberry32: a small seeded generator, so each fast-check seed makes one message. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const alphabet = ['a', 'Z', '0', '<', '>', '&', '"', '\\', '\n', '\u0001', '\u2028', 'é', '😀', ' ', '/'];

function randomScalar(t: ScalarType, r: () => number): unknown {
  const big = (bits: number, signed: boolean): bigint => {
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(Math.floor(r() * 65536));
    v &= (1n << BigInt(bits)) - 1n;
    return signed && v >= 1n << BigInt(bits - 1) ? v - (1n << BigInt(bits)) : v;
  };
  switch (t) {
    case ScalarType.INT64: case ScalarType.SINT64: case ScalarType.SFIXED64: return big(64, true);
    case ScalarType.UINT64: case ScalarType.FIXED64: return big(64, false);
    case ScalarType.INT32: case ScalarType.SINT32: case ScalarType.SFIXED32: return Number(big(32, true));
    case ScalarType.UINT32: case ScalarType.FIXED32: return Number(big(32, false));
    case ScalarType.BOOL: return r() < 0.5;
    case ScalarType.STRING: return Array.from({ length: Math.floor(r() * 6) }, () => alphabet[Math.floor(r() * alphabet.length)]).join('');
    case ScalarType.BYTES: return Uint8Array.from({ length: Math.floor(r() * 7) }, () => Math.floor(r() * 256));
    default: return Math.floor(r() * 1000);
  }
}

function randomSingle(field: DescField, r: () => number, depth: number): unknown {
  if (field.message !== undefined) return randomInit(field.message, r, depth + 1);
  if (field.enum !== undefined) {
    const values = field.enum.values;
    return r() < 0.9 ? values[Math.floor(r() * values.length)]!.number : 1000 + Math.floor(r() * 10);
  }
  return randomScalar(field.scalar!, r);
}

function randomInit(desc: DescMessage, r: () => number, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  if (depth > 3) return init;
  for (const member of desc.members) {
    if (r() < 0.4) continue;
    if (member.kind === 'oneof') {
      const field = member.fields[Math.floor(r() * member.fields.length)]!;
      init[member.localName] = { case: field.localName, value: randomSingle(field, r, depth) };
    } else if (member.fieldKind === 'list') {
      init[member.localName] = Array.from({ length: Math.floor(r() * 3) }, () => randomSingle(member, r, depth));
    } else if (member.fieldKind !== 'map') {
      init[member.localName] = randomSingle(member, r, depth);
    }
  }
  return init;
}

test('every message type: bytes -> jsonpb -> bytes is the identity; the JSON is valid and uses .proto names', () => {
  assert.ok(messages.length > 100, `descriptors hold ${messages.length} messages`);
  fc.assert(fc.property(fc.nat(), fc.nat(messages.length - 1), (seed, which) => {
    const desc = messages[which]!;
    const message = create(desc, randomInit(desc, rng(seed), 0) as never);
    const bytes = toBinary(desc, message);
    const json = mapper.decodeResponse(desc, bytes);
    const parsed = JSON.parse(json) as Record<string, unknown>;
    const names = new Set(desc.fields.map((f) => f.name));
    for (const key of Object.keys(parsed)) assert.ok(names.has(key), `${key} is a field of ${desc.typeName}`);
    const again = fromBinary(desc, mapper.encodeRequest(desc, parseValid(json)));
    assert.ok(equals(desc, again, fromBinary(desc, bytes)), `${desc.typeName}: ${json}`);
  }), { seed: 7, numRuns: 600 });
});

const rangeResponse = registry.getMessage('etcdserverpb.RangeResponse')!;
const rangeRequest = registry.getMessage('etcdserverpb.RangeRequest')!;

test('output is the text etcd 3.4 writes', () => {
  const header = { clusterId: 15118495548433857066n, memberId: 13668033151171901709n, revision: 2n, raftTerm: 2n };
  const headerJson = '"header":{"cluster_id":"15118495548433857066","member_id":"13668033151171901709","revision":"2","raft_term":"2"}';
  const range = RangeResponse.encode({
    header, more: false, count: 1n,
    kvs: [{ key: Buffer.from('foo'), createRevision: 2n, modRevision: 2n, version: 1n, value: Buffer.from('bar'), lease: 0n }],
  }).finish();
  assert.equal(mapper.decodeResponse(rangeResponse, range),
    `{${headerJson},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}`);
  const put = PutResponse.encode({ header, prevKv: undefined }).finish();
  assert.equal(mapper.decodeResponse(registry.getMessage('etcdserverpb.PutResponse')!, put), `{${headerJson}}`);
  const watch = WatchResponse.encode(WatchResponse.fromPartial({
    header, events: [{ type: 1, kv: { key: Buffer.from('foo'), modRevision: 4n } }],
  })).finish();
  assert.equal(mapper.decodeResponse(registry.getMessage('etcdserverpb.WatchResponse')!, watch),
    `{${headerJson},"events":[{"type":"DELETE","kv":{"key":"Zm9v","mod_revision":"4"}}]}`);
});

/** What the gateway answers for a unary body, as real etcd 3.4 answered each (observed with curl). */
function decodeError(body: string): string | null {
  const r = scanNext(Buffer.from(body), 0, true);
  if (r.kind === 'error') return r.message;
  if (r.kind !== 'value') return null;
  try {
    mapper.encodeRequest(rangeRequest, parseValid(body.slice(r.start, r.end)));
    return null;
  } catch (err) {
    assert.ok(err instanceof GoJsonError);
    return err.message;
  }
}

test('input errors are Go\'s texts', () => {
  const cases: Array<[string, string | null]> = [
    ['{"key":"Zm9v"', 'unexpected EOF'],
    ['{bad', "invalid character 'b' looking for beginning of object key string"],
    ['{"key":"Zm9v","limit":"x"}', "invalid character 'x' looking for beginning of value"],
    ['{"key":"Zm9v","limit":true}', 'json: cannot unmarshal bool into Go value of type int64'],
    ['{"key":"Zm9v!"}', 'illegal base64 data at input byte 4'],
    ['{"key":"Zm9"}', 'illegal base64 data at input byte 0'],
    ['{"key":"Zm9v","sort_order":"BOGUS"}', 'unknown value "BOGUS" for enum etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","sort_order":true}', 'json: cannot unmarshal bool into Go value of type etcdserverpb.RangeRequest_SortOrder'],
    ['{"key":"Zm9v","limit":1.5}', 'json: cannot unmarshal number 1.5 into Go value of type int64'],
    ['{"key":"Zm9v","limit":"1e0"}', 'json: cannot unmarshal number 1e0 into Go value of type int64'],
    ['{"key":"Zm9v","serializable":"true"}', 'json: cannot unmarshal string into Go value of type bool'],
    ['{"key":1}', 'json: cannot unmarshal number into Go value of type []uint8'],
    ['[1]', 'json: cannot unmarshal array into Go value of type map[string]json.RawMessage'],
    ['"x"', 'json: cannot unmarshal string into Go value of type map[string]json.RawMessage'],
    ['{"key":"Zm9v","foo":1,"limit":null,"sortOrder":2,"keysOnly":true}', null],
    ['{"key":"Zm9v"} trailing', null],
    ['{"key":"Zm9v","limit":"18446744073709551616"}', 'json: cannot unmarshal number 18446744073709551616 into Go value of type int64'],
  ];
  for (const [body, expected] of cases) assert.equal(decodeError(body), expected, body);
});

test('Go scanner details: stream splitting, literals, checkValid', () => {
  const two = Buffer.from(' {"a":1}{"b":[2]}\n3 ');
  const first = scanNext(two, 0, false);
  assert.deepEqual(first, { kind: 'value', start: 1, end: 8 });
  assert.deepEqual(scanNext(two, 8, false), { kind: 'value', start: 8, end: 17 });
  assert.deepEqual(scanNext(two, 17, false), { kind: 'value', start: 18, end: 19 });
  assert.deepEqual(scanNext(two, 19, false), { kind: 'more' });
  assert.deepEqual(scanNext(two, 19, true), { kind: 'eof' });
  assert.deepEqual(scanNext(Buffer.from('3'), 0, false), { kind: 'more' }, 'a number may go on');
  assert.deepEqual(scanNext(Buffer.from('3'), 0, true), { kind: 'value', start: 0, end: 1 });
  assert.deepEqual(scanNext(Buffer.from('{"a":tru}'), 0, true), { kind: 'error', message: "invalid character '}' in literal true (expecting 'e')" });
  assert.deepEqual(scanNext(Buffer.from('{"a":1,}'), 0, true), { kind: 'error', message: "invalid character '}' looking for beginning of object key string" });
  assert.deepEqual(scanNext(Buffer.from('{"a" 1}'), 0, true), { kind: 'error', message: "invalid character '1' after object key" });
  assert.deepEqual(scanNext(Buffer.from('{"a":"\\x"}'), 0, true), { kind: 'error', message: "invalid character 'x' in string escape code" });
  assert.deepEqual(scanNext(Buffer.from('{"a":-}'), 0, true), { kind: 'error', message: "invalid character '}' in numeric literal" });
  assert.throws(() => checkValid(Buffer.from('1 2')), { message: "invalid character '2' after top-level value" });
  assert.throws(() => checkValid(Buffer.from('')), { message: 'unexpected end of JSON input' });
  checkValid(Buffer.from(' "\\\\" '));
});

test('Go base64 and string quoting', () => {
  assert.deepEqual(goBase64Decode('Zm9v\nYmFy'), Buffer.from('foobar'));
  assert.deepEqual(goBase64Decode('YQ=='), Buffer.from('a'));
  assert.deepEqual(goBase64Decode(''), Buffer.alloc(0));
  assert.throws(() => goBase64Decode('YQ='), { message: 'illegal base64 data at input byte 3' });
  assert.throws(() => goBase64Decode('YQ==YQ=='), { message: 'illegal base64 data at input byte 4' });
  assert.throws(() => goBase64Decode('Y==='), { message: 'illegal base64 data at input byte 1' });
  assert.throws(() => goBase64Decode('YQ-_'), { message: 'illegal base64 data at input byte 2' });
  assert.equal(goQuote('a<b>&"\\\n\t\u0001\u2028é😀'), '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\t\\u0001\\u2028é😀"');
});
