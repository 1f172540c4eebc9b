import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  confChangeV1ToV2,
  decodeConfChangeV1,
  decodeConfChangeV2,
  encodeConfChangeV1,
  encodeConfChangeV2,
  enterJoint,
  formatConfChanges,
  isLeaveJoint,
  parseConfChanges,
} from './conf-change.js';
import type { ConfChangeV2 } from './types.js';
import { ConfChangeTransition as CT, ConfChangeType } from './types.js';

const ccArb: fc.Arbitrary<ConfChangeV2> = fc.record({
  transition: fc.constantFrom(CT.Auto, CT.JointImplicit, CT.JointExplicit),
  changes: fc.array(
    fc.record({
      type: fc.constantFrom(ConfChangeType.AddNode, ConfChangeType.RemoveNode, ConfChangeType.UpdateNode, ConfChangeType.AddLearnerNode),
      nodeId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    }),
    { maxLength: 5 },
  ),
  context: fc.uint8Array({ maxLength: 20 }),
});

test('property: ConfChangeV2 encode/decode round-trips (64-bit node ids included)', () => {
  fc.assert(
    fc.property(ccArb, (cc) => {
      const back = decodeConfChangeV2(encodeConfChangeV2(cc));
      assert.deepEqual(back, {
        transition: cc.transition,
        changes: cc.changes.map((c) => ({ type: c.type, nodeId: c.nodeId })),
        context: Uint8Array.from(cc.context),
      });
    }),
    { numRuns: 300 },
  );
});

test('ConfChangeV2 wire bytes match raftpb (transition, repeated changes, context)', () => {
  const b = encodeConfChangeV2({ transition: CT.JointExplicit, changes: [{ type: ConfChangeType.AddNode, nodeId: 300n }], context: Uint8Array.of(7) });
  assert.deepEqual([...b], [0x08, 0x02, 0x12, 0x05, 0x08, 0x00, 0x10, 0xac, 0x02, 0x1a, 0x01, 0x07]);
  assert.deepEqual(decodeConfChangeV2(new Uint8Array(0)), { transition: CT.Auto, changes: [], context: new Uint8Array(0) });
});

test('legacy ConfChange round-trips and converts to a single-step V2 change', () => {
  const v1 = { id: 42n, type: ConfChangeType.RemoveNode, nodeId: 0xffff_ffff_ffff_fffen, context: Uint8Array.of(1, 2) };
  const back = decodeConfChangeV1(encodeConfChangeV1(v1));
  assert.deepEqual(back, v1);
  const v2 = confChangeV1ToV2(back);
  assert.equal(v2.transition, CT.Auto);
  assert.deepEqual(v2.changes, [{ type: ConfChangeType.RemoveNode, nodeId: 0xffff_ffff_ffff_fffen }]);
});

test('enterJoint / isLeaveJoint decide the transition', () => {
  const one = parseConfChanges('v2');
  const two = parseConfChanges('v2 r3');
  assert.deepEqual(enterJoint({ transition: CT.Auto, changes: one, context: new Uint8Array() }), { joint: false, autoLeave: false });
  assert.deepEqual(enterJoint({ transition: CT.Auto, changes: two, context: new Uint8Array() }), { joint: true, autoLeave: true });
  assert.deepEqual(enterJoint({ transition: CT.JointImplicit, changes: one, context: new Uint8Array() }), { joint: true, autoLeave: true });
  assert.deepEqual(enterJoint({ transition: CT.JointExplicit, changes: one, context: new Uint8Array() }), { joint: true, autoLeave: false });
  assert.equal(isLeaveJoint({ transition: CT.Auto, changes: [], context: Uint8Array.of(1) }), true);
  assert.equal(isLeaveJoint({ transition: CT.JointExplicit, changes: [], context: new Uint8Array() }), false);
  assert.equal(formatConfChanges(parseConfChanges(' v1  l2 r3 u4 ')), 'v1 l2 r3 u4');
  assert.throws(() => parseConfChanges('x1'), /unknown/);
});
