import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ConfChangeTransition,
  ConfChangeType,
  EntryType,
  MessageType,
  type ConfChangeV2,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type Snapshot,
  type SnapshotMetadata,
} from '../raft/types.js';
import {
  ByteWriter,
  CodecError,
  decodeConfChangeV2,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  decodeSnapshotMetadata,
  encodeConfChangeV2,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  encodeSnapshotMetadata,
} from './codec.js';

const SEED = 20261125;
const plain = { noNullPrototype: true } as const;
const runs = (numRuns: number): fc.Parameters<unknown> => ({ seed: SEED, numRuns });

const nodeId = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const safeNat = fc.oneof(fc.nat({ max: 1000 }), fc.maxSafeNat());
const bytes = fc.uint8Array({ maxLength: 48 });
const ids = fc.array(nodeId, { maxLength: 5 });

const entryArb: fc.Arbitrary<Entry> = fc.record({
  term: safeNat,
  index: safeNat,
  type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange, EntryType.ConfChangeV2),
  data: bytes,
}, plain);
const hardStateArb: fc.Arbitrary<HardState> = fc.record({ term: safeNat, vote: nodeId, commit: safeNat }, plain);
const confStateArb: fc.Arbitrary<ConfState> = fc.record({
  voters: ids,
  learners: ids,
  votersOutgoing: ids,
  learnersNext: ids,
  autoLeave: fc.boolean(),
}, plain);
const metadataArb: fc.Arbitrary<SnapshotMetadata> = fc.record({
  confState: confStateArb,
  index: safeNat,
  term: safeNat,
}, plain);
const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({ data: bytes, metadata: metadataArb }, plain);
const confChangeArb: fc.Arbitrary<ConfChangeV2> = fc.record({
  transition: fc.constantFrom(...Object.values(ConfChangeTransition)),
  changes: fc.array(fc.record({ type: fc.constantFrom(...Object.values(ConfChangeType)), nodeId }, plain), {
    maxLength: 4,
  }),
  context: bytes,
}, plain);
const messageArb: fc.Arbitrary<Message> = fc.record({
  type: fc.constantFrom(...Object.values(MessageType)),
  to: nodeId,
  from: nodeId,
  term: safeNat,
  logTerm: safeNat,
  index: safeNat,
  entries: fc.array(entryArb, { maxLength: 4 }),
  commit: safeNat,
  snapshot: fc.option(snapshotArb, { nil: null }),
  reject: fc.boolean(),
  rejectHint: safeNat,
  context: bytes,
}, plain);

interface Case<T> {
  readonly name: string;
  readonly arb: fc.Arbitrary<T>;
  readonly encode: (v: T) => Uint8Array;
  readonly decode: (b: Uint8Array) => T;
}
const cases: readonly Case<never>[] = [
  { name: 'Entry', arb: entryArb, encode: encodeEntry, decode: decodeEntry },
  { name: 'HardState', arb: hardStateArb, encode: encodeHardState, decode: decodeHardState },
  { name: 'ConfState', arb: confStateArb, encode: encodeConfState, decode: decodeConfState },
  { name: 'SnapshotMetadata', arb: metadataArb, encode: encodeSnapshotMetadata, decode: decodeSnapshotMetadata },
  { name: 'Snapshot', arb: snapshotArb, encode: encodeSnapshot, decode: decodeSnapshot },
  { name: 'ConfChangeV2', arb: confChangeArb, encode: encodeConfChangeV2, decode: decodeConfChangeV2 },
  { name: 'Message', arb: messageArb, encode: encodeMessage, decode: decodeMessage },
] as unknown as readonly Case<never>[];

function onlyCodecErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof CodecError)) throw err;
  }
}

describe('raft codec', () => {
  for (const c of cases) {
    const { name } = c;
    const kase = c as unknown as Case<unknown>;

    it(`${name}: random valid values round-trip`, () => {
      fc.assert(
        fc.property(kase.arb, (value) => {
          assert.deepStrictEqual(kase.decode(kase.encode(value)), value);
        }),
        runs(300),
      );
    });

    it(`${name}: every truncation and any trailing byte is a CodecError`, () => {
      fc.assert(
        fc.property(kase.arb, (value) => {
          const encoded = kase.encode(value);
          for (let cut = 0; cut < encoded.length; cut++) {
            assert.throws(() => kase.decode(encoded.subarray(0, cut)), CodecError);
          }
          const longer = new Uint8Array(encoded.length + 1);
          longer.set(encoded);
          assert.throws(() => kase.decode(longer), CodecError);
        }),
        runs(60),
      );
    });

    it(`${name}: random bytes throw nothing but CodecError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 96 }), (input) => onlyCodecErrors(() => kase.decode(input))),
        runs(2000),
      );
    });

    it(`${name}: flipped bytes of a valid encoding throw nothing but CodecError`, () => {
      fc.assert(
        fc.property(kase.arb, fc.nat(), fc.integer({ min: 1, max: 255 }), (value, at, mask) => {
          const encoded = kase.encode(value);
          if (encoded.length === 0) return;
          const i = at % encoded.length;
          encoded[i] = (encoded[i] as number) ^ mask;
          onlyCodecErrors(() => kase.decode(encoded));
        }),
        runs(1000),
      );
    });
  }

  it('lays out a hard state as varint term, fixed u64 vote, varint commit', () => {
    const encoded = encodeHardState({ term: 1, vote: 0x0102n, commit: 300 });
    assert.deepStrictEqual([...encoded], [1, 0x02, 0x01, 0, 0, 0, 0, 0, 0, 0xac, 0x02]);
  });

  it('keeps the extremes: u64 max node id, MAX_SAFE_INTEGER index', () => {
    const hs = { term: Number.MAX_SAFE_INTEGER, vote: (1n << 64n) - 1n, commit: 2 ** 31 };
    assert.deepStrictEqual(decodeHardState(encodeHardState(hs)), hs);
  });

  it('refuses a varint above 2^53 with a CodecError, not a lossy number', () => {
    // 2^53 as a varint: seven 0x80 bytes then 0x10 would be 2^53 exactly (8 bytes).
    const twoTo53 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
    const input = Uint8Array.from([...twoTo53, ...new Array<number>(8).fill(0), 0]);
    assert.throws(() => decodeHardState(input), (err: unknown) => {
      return err instanceof CodecError && /above 2\^53/.test(err.message) && err.offset === 0;
    });
    const nineBytes = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    assert.throws(() => decodeEntry(Uint8Array.from([0, ...nineBytes])), /varint too long/);
  });

  it('refuses unknown enum values and flags', () => {
    const entry = encodeEntry({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) });
    entry[0] = 3;
    assert.throws(() => decodeEntry(entry), /bad entry type 3/);
    const msg = encodeMessage(sampleMessage());
    msg[0] = 19;
    assert.throws(() => decodeMessage(msg), /bad message type 19/);
  });

  it('refuses a count larger than the input without allocating it', () => {
    const w = new ByteWriter();
    w.varint(Number.MAX_SAFE_INTEGER);
    assert.throws(() => decodeConfState(w.copy()), /count .* exceeds the input/);
  });

  it('copies byte fields by default and shares memory only when asked', () => {
    const encoded = encodeEntry({ term: 2, index: 3, type: EntryType.Normal, data: Uint8Array.of(7, 8, 9) });
    const copied = decodeEntry(encoded);
    const aliased = decodeEntry(encoded, { alias: true });
    encoded[encoded.length - 1] = 0;
    assert.deepStrictEqual([...copied.data], [7, 8, 9]);
    assert.deepStrictEqual([...aliased.data], [7, 8, 0]);
  });

  it('round-trips a message carrying entries and a snapshot', () => {
    const m = sampleMessage();
    assert.deepStrictEqual(decodeMessage(encodeMessage(m)), m);
  });
});

function sampleMessage(): Message {
  return {
    type: MessageType.App,
    to: 0xfedcba9876543210n,
    from: 1n,
    term: 7,
    logTerm: 6,
    index: 41,
    entries: [
      { term: 7, index: 42, type: EntryType.Normal, data: Uint8Array.of(1, 2, 3) },
      { term: 7, index: 43, type: EntryType.ConfChangeV2, data: new Uint8Array(0) },
    ],
    commit: 40,
    snapshot: {
      data: Uint8Array.of(9),
      metadata: {
        index: 30,
        term: 5,
        confState: { voters: [1n, 2n], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false },
      },
    },
    reject: false,
    rejectHint: 0,
    context: Uint8Array.of(0xaa),
  };
}
