import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseHeader, WatchResponse } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType, type Event, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { SharedEvent } from './shared-event.js';
import {
  encodeHeaderField, encodeResponse, encodeWatchIdField, fragmentResponse, frameFields, frameResponse, splitFramed,
} from './watch-response.js';

const header = { clusterId: 0xdeadbeefcafen, memberId: 17n, revision: 42n, raftTerm: 3n };
const headerBytes = ResponseHeader.encode(header).finish();

function kv(key: string, value: string, mod: number, create = 2): KeyValue {
  return { key: Buffer.from(key), value: Buffer.from(value), createRevision: BigInt(create), modRevision: BigInt(mod), version: 1n, lease: 0n };
}

test('an assembled response is byte-identical to the generated codec, for every flag and with events', () => {
  const events: Event[] = [
    { type: Event_EventType.PUT, kv: kv('a', 'x'.repeat(300), 5), prevKv: undefined },
    { type: Event_EventType.DELETE, kv: { ...kv('b', '', 5, 0), version: 0n }, prevKv: undefined },
  ];
  const prev = kv('a', 'old', 4);
  const fields = events.map((e) => new SharedEvent(e).field(true, () => prev));
  const cases = [
    { watchId: 0n },
    { watchId: -1n, created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty' },
    { watchId: 7n, canceled: true, compactRevision: 9n },
    { watchId: 123456789012n, fragment: true },
  ];
  for (const c of cases) {
    const ours = encodeResponse({ header: headerBytes, ...c }, fields);
    const theirs = WatchResponse.encode({
      header, watchId: c.watchId, created: c.created ?? false, canceled: c.canceled ?? false,
      compactRevision: c.compactRevision ?? 0n, cancelReason: c.cancelReason ?? '', fragment: c.fragment ?? false,
      events: events.map((e) => ({ ...e, prevKv: prev })),
    }).finish();
    assert.deepEqual(ours, Buffer.from(theirs));
  }
});

test('a shared event is encoded once per variant; a create event never carries prev_kv', () => {
  let lookups = 0;
  const e = new SharedEvent({ type: Event_EventType.PUT, kv: kv('k', 'v', 7, 7), prevKv: undefined });
  assert.equal(e.isCreate, true);
  const a = e.field(true, () => (lookups++, kv('k', 'old', 6)));
  assert.equal(a, e.field(false, () => undefined));
  assert.equal(lookups, 0);
  const u = new SharedEvent({ type: Event_EventType.PUT, kv: kv('k', 'v2', 8, 7), prevKv: undefined });
  const withPrev = u.field(true, () => (lookups++, kv('k', 'v', 7, 7)));
  assert.equal(u.field(true, () => (lookups++, undefined)), withPrev);
  assert.equal(lookups, 1);
  assert.notEqual(u.field(false, () => undefined), withPrev);
  assert.ok(WatchResponse.decode(encodeResponse({ header: headerBytes, watchId: 1n }, [withPrev])).events[0]!.prevKv !== undefined);
});

/** etcd's sendFragments, written over the generated codec's sizes, as the reference. */
function etcdFragments(events: Event[], maxBytes: number): WatchResponse[] {
  const wr: WatchResponse = { header, watchId: 3n, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events };
  const size = (r: WatchResponse): number => WatchResponse.encode(r).finish().length;
  if (size(wr) < maxBytes || events.length < 2) return [wr];
  const out: WatchResponse[] = [];
  let idx = 0;
  for (;;) {
    const cur: WatchResponse = { ...wr, fragment: true, events: [] };
    for (const ev of events.slice(idx)) {
      cur.events.push(ev);
      if (cur.events.length > 1 && size(cur) >= maxBytes) {
        cur.events.pop();
        break;
      }
      idx++;
    }
    if (idx === events.length) cur.fragment = false;
    out.push(cur);
    if (!cur.fragment) return out;
  }
}

test('fragmenting cuts exactly where etcd does, and the fragments join back into the whole response', () => {
  for (const [count, valueBytes, maxBytes] of [[1, 5000, 100], [2, 10, 10_000], [10, 100, 350], [50, 37, 1000], [7, 1000, 1]] as const) {
    const events: Event[] = Array.from({ length: count }, (_, i) => ({ type: Event_EventType.PUT, kv: kv(`k${i}`, 'v'.repeat(valueBytes), 9), prevKv: undefined }));
    const fields = events.map((e) => new SharedEvent(e).field(false, () => undefined));
    const ours = fragmentResponse({ header: headerBytes, watchId: 3n }, fields, { maxBytes });
    const want = etcdFragments(events, maxBytes);
    assert.deepEqual(ours, want.map((r) => Buffer.from(WatchResponse.encode(r).finish())), `count=${count} max=${maxBytes}`);
    assert.deepEqual(ours.flatMap((b) => WatchResponse.decode(b).events), events);
  }
});

test('framed responses from pre-encoded fields equal the codec, and split back one by one', () => {
  const events: Event[] = [1, 2, 3].map((i) => ({ type: Event_EventType.PUT, kv: kv(`k${i}`, 'v'.repeat(i * 50), 9), prevKv: undefined }));
  const fields = events.map((e) => new SharedEvent(e).field(false, () => undefined));
  const hf = encodeHeaderField(headerBytes);
  const framed = Buffer.concat([
    frameFields(hf, encodeWatchIdField(0n), fields[0]!),
    frameFields(hf, encodeWatchIdField(-1n), fields),
    frameResponse(encodeResponse({ header: headerBytes, watchId: 7n, created: true })),
    frameFields(hf, encodeWatchIdField(123456789012n), []),
  ]);
  const want: WatchResponse[] = [
    WatchResponse.fromPartial({ header, watchId: 0n, events: events.slice(0, 1) }),
    WatchResponse.fromPartial({ header, watchId: -1n, events }),
    WatchResponse.fromPartial({ header, watchId: 7n, created: true }),
    WatchResponse.fromPartial({ header, watchId: 123456789012n }),
  ];
  assert.deepEqual(splitFramed(framed), want.map((r) => Buffer.from(WatchResponse.encode(r).finish())));
  assert.throws(() => splitFramed(framed.subarray(0, framed.length - 1)));
});
