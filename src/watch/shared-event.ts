/**
 * One change event shared by every watcher that receives it: encoded at most once per variant (with and
 * without prev_kv) however many watchers get it, as the bytes of field 11 of a WatchResponse, so a
 * response is its head followed by these buffers.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { type Event, Event as EventCodec, Event_EventType, type KeyValue } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { assert } from '../base/assert.js';

/** The key-value of `key` at revision `rev`, or undefined when absent or compacted away. */
export type PrevKvLookup = (key: Buffer, rev: number) => KeyValue | undefined;

const eventsField = 11;

export class SharedEvent {
  readonly event: Event;
  /** latin1 key, for matching watchers. */
  readonly key: string;
  readonly revision: number;
  readonly isPut: boolean;
  #plain: Buffer | undefined;
  #withPrev: Buffer | undefined;

  constructor(event: Event) {
    assert(event.kv !== undefined, 'an event without a key-value');
    this.event = event;
    this.key = event.kv.key.toString('latin1');
    this.revision = Number(event.kv.modRevision);
    this.isPut = event.type === Event_EventType.PUT;
  }

  /** etcd sends no prev_kv for the put that creates a key. */
  get isCreate(): boolean {
    return this.isPut && this.event.kv!.createRevision === this.event.kv!.modRevision;
  }

  /** The event as a WatchResponse field; with prev_kv, the previous key-value is looked up once. */
  field(withPrevKv: boolean, lookup: PrevKvLookup): Buffer {
    if (!withPrevKv || this.isCreate) {
      this.#plain ??= encodeField({ type: this.event.type, kv: this.event.kv, prevKv: undefined });
      return this.#plain;
    }
    if (this.#withPrev === undefined) {
      const prevKv = this.event.prevKv ?? lookup(this.event.kv!.key, this.revision - 1);
      this.#withPrev = encodeField({ type: this.event.type, kv: this.event.kv, prevKv });
    }
    return this.#withPrev;
  }
}

function encodeField(event: Event): Buffer {
  const w = new BinaryWriter();
  w.uint32((eventsField << 3) | 2).fork();
  EventCodec.encode(event, w);
  w.join();
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
