/**
 * Membership change values: which transition a ConfChangeV2 asks for, its protobuf encoding (the entry
 * payload, same wire shape as etcd's raftpb.ConfChangeV2 / raftpb.ConfChange) and a compact text form
 * ("v2 l3 r4") for tests and logs.
 */
import { assert } from '../base/assert.js';
import type { ConfChangeSingle, ConfChangeV2, NodeId } from './types.js';
import { ConfChangeTransition, ConfChangeType } from './types.js';
import { EMPTY_BYTES } from './util.js';

/** Whether cc uses joint consensus, and if so whether the joint config is left automatically. */
export function enterJoint(cc: ConfChangeV2): { joint: boolean; autoLeave: boolean } {
  if (cc.transition === ConfChangeTransition.Auto && cc.changes.length <= 1) return { joint: false, autoLeave: false };
  switch (cc.transition) {
    case ConfChangeTransition.Auto:
    case ConfChangeTransition.JointImplicit:
      return { joint: true, autoLeave: true };
    case ConfChangeTransition.JointExplicit:
      return { joint: true, autoLeave: false };
    default:
      throw new Error(`unknown transition ${String(cc.transition)}`);
  }
}

/** The empty change (any context) is the request to leave a joint configuration. */
export function isLeaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.Auto && cc.changes.length === 0;
}

export function leaveJointChange(): ConfChangeV2 {
  return { transition: ConfChangeTransition.Auto, changes: [], context: EMPTY_BYTES };
}

const TYPE_LETTERS: Record<ConfChangeType, string> = {
  [ConfChangeType.AddNode]: 'v',
  [ConfChangeType.RemoveNode]: 'r',
  [ConfChangeType.UpdateNode]: 'u',
  [ConfChangeType.AddLearnerNode]: 'l',
};

/** "v1 l2 r3 u4": add voter 1, add learner 2, remove 3, update 4. */
export function parseConfChanges(s: string): ConfChangeSingle[] {
  const out: ConfChangeSingle[] = [];
  for (const tok of s.trim().split(/\s+/)) {
    if (tok === '') continue;
    const letter = tok[0];
    const id = BigInt(tok.slice(1));
    const type = (Object.entries(TYPE_LETTERS).find(([, l]) => l === letter)?.[0]);
    if (type === undefined) throw new Error(`unknown conf change token ${tok}`);
    out.push({ type: Number(type) as ConfChangeType, nodeId: id });
  }
  return out;
}

export function formatConfChanges(changes: readonly ConfChangeSingle[]): string {
  return changes.map((c) => `${TYPE_LETTERS[c.type]}${c.nodeId}`).join(' ');
}

// --- protobuf wire encoding -------------------------------------------------------------------------

class Writer {
  bytes: number[] = [];
  varint(v: number | bigint): void {
    let x = BigInt(v);
    assert(x >= 0n, 'negative varint');
    while (x >= 0x80n) {
      this.bytes.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.bytes.push(Number(x));
  }
  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  bytesField(field: number, b: Uint8Array): void {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.bytes.push(x);
  }
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array, readonly end = buf.length) {}
  done(): boolean {
    return this.pos >= this.end;
  }
  varint(): bigint {
    let x = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.end) throw new Error('conf change: truncated varint');
      const b = this.buf[this.pos++] as number;
      x |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return x;
      shift += 7n;
      if (shift > 63n) throw new Error('conf change: varint overflow');
    }
  }
  lengthDelimited(): Uint8Array {
    const n = Number(this.varint());
    if (this.pos + n > this.end) throw new Error('conf change: truncated field');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 2) this.lengthDelimited();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`conf change: unsupported wire type ${wire}`);
  }
}

export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const w = new Writer();
  w.tag(1, 0);
  w.varint(cc.transition);
  for (const c of cc.changes) {
    const inner = new Writer();
    inner.tag(1, 0);
    inner.varint(c.type);
    inner.tag(2, 0);
    inner.varint(c.nodeId);
    w.bytesField(2, Uint8Array.from(inner.bytes));
  }
  if (cc.context.length > 0) w.bytesField(3, cc.context);
  return Uint8Array.from(w.bytes);
}

export function decodeConfChangeV2(buf: Uint8Array): ConfChangeV2 {
  const r = new Reader(buf);
  let transition: number = ConfChangeTransition.Auto;
  const changes: ConfChangeSingle[] = [];
  let context: Uint8Array = EMPTY_BYTES;
  while (!r.done()) {
    const key = Number(r.varint());
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === 0) transition = Number(r.varint());
    else if (field === 2 && wire === 2) changes.push(decodeSingle(r.lengthDelimited()));
    else if (field === 3 && wire === 2) context = r.lengthDelimited().slice();
    else r.skip(wire);
  }
  if (transition > ConfChangeTransition.JointExplicit) throw new Error(`conf change: bad transition ${transition}`);
  return { transition: transition as ConfChangeTransition, changes, context };
}

function decodeSingle(buf: Uint8Array): ConfChangeSingle {
  const r = new Reader(buf);
  let type = 0;
  let nodeId: NodeId = 0n;
  while (!r.done()) {
    const key = Number(r.varint());
    if (key === 0x08) type = Number(r.varint());
    else if (key === 0x10) nodeId = r.varint();
    else r.skip(key & 7);
  }
  if (type > ConfChangeType.AddLearnerNode) throw new Error(`conf change: bad type ${type}`);
  return { type: type as ConfChangeType, nodeId };
}

/** A legacy single change (raftpb.ConfChange: id=1, type=2, node_id=3, context=4), as etcd 3.4 writes. */
export interface ConfChangeV1 {
  readonly id: bigint;
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  readonly context: Uint8Array;
}

export function encodeConfChangeV1(cc: ConfChangeV1): Uint8Array {
  const w = new Writer();
  w.tag(1, 0);
  w.varint(cc.id);
  w.tag(2, 0);
  w.varint(cc.type);
  w.tag(3, 0);
  w.varint(cc.nodeId);
  if (cc.context.length > 0) w.bytesField(4, cc.context);
  return Uint8Array.from(w.bytes);
}

export function decodeConfChangeV1(buf: Uint8Array): ConfChangeV1 {
  const r = new Reader(buf);
  let id = 0n;
  let type = 0;
  let nodeId: NodeId = 0n;
  let context: Uint8Array = EMPTY_BYTES;
  while (!r.done()) {
    const key = Number(r.varint());
    if (key === 0x08) id = r.varint();
    else if (key === 0x10) type = Number(r.varint());
    else if (key === 0x18) nodeId = r.varint();
    else if (key === 0x22) context = r.lengthDelimited().slice();
    else r.skip(key & 7);
  }
  if (type > ConfChangeType.AddLearnerNode) throw new Error(`conf change: bad type ${type}`);
  return { id, type: type as ConfChangeType, nodeId, context };
}

/** A legacy change as the equivalent V2 change (a single step, no joint consensus). */
export function confChangeV1ToV2(cc: ConfChangeV1): ConfChangeV2 {
  return {
    transition: ConfChangeTransition.Auto,
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}
