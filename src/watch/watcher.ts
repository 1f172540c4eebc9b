/**
 * One watcher: a key or key range, the first revision it still has to see (minRev), and where it is in
 * the store's life cycle:
 *
 *   synced    caught up; receives each write's events as they are applied
 *   unsynced  behind (a past start revision, or woken victim); the catch-up loop reads its history
 *   victim    its stream had no room for a response: parked, holding no events, until the stream drains
 *   compacted its start revision was compacted away; the client was told; only its id remains
 *   canceled  removed
 *
 * Keys are latin1 strings (one char per byte) so that string order is etcd's byte order.
 */
import type { SharedEvent } from './shared-event.js';
import { encodeWatchIdField } from './watch-response.js';

export type WatcherState = 'synced' | 'unsynced' | 'victim' | 'compacted' | 'canceled';

/** Greater than every latin1 key: the upper bound of a from-key ("\0" range end) watch. */
export const aboveAllKeys = '\u0100';

/** Whole revisions of events for one response, and the revision its header carries. */
export interface EventBatch {
  readonly events: readonly SharedEvent[];
  readonly headerRev: number;
}

/** What the store needs from the stream a watcher belongs to. */
export interface WatcherOwner {
  /**
   * Sends one response carrying the batch's events (whole revisions, oldest first).
   * False when the stream has no room: nothing was sent and the watcher must be caught up later.
   */
  deliver(w: Watcher, batch: EventBatch): boolean;
  /** Whether the stream would take another event response now. */
  hasRoom(): boolean;
  /** Tells the client the start revision is compacted (a control response: always accepted). */
  compacted(w: Watcher, compactRev: number): void;
  /** The watcher moved between states (the stream counts its watchers that are not synced). */
  stateChanged(w: Watcher, from: WatcherState): void;
}

export interface WatcherSpec {
  readonly id: bigint;
  /** latin1 key. */
  readonly key: string;
  /** undefined: the single key; otherwise the exclusive end (aboveAllKeys for "every key >= key"). */
  readonly end: string | undefined;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
}

export class Watcher implements WatcherSpec {
  readonly id: bigint;
  readonly key: string;
  readonly end: string | undefined;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;
  readonly owner: WatcherOwner;
  /** The watch id as response field bytes, encoded once. */
  readonly idField: Buffer;
  /** The first revision this watcher has not been sent yet (events below it are never sent again). */
  minRev = 0;
  state: WatcherState = 'canceled';
  /** For periodic progress: no event response was sent since the last tick. */
  quietSinceTick = true;

  constructor(spec: WatcherSpec, owner: WatcherOwner) {
    this.id = spec.id;
    this.key = spec.key;
    this.end = spec.end;
    this.noPut = spec.noPut;
    this.noDelete = spec.noDelete;
    this.prevKv = spec.prevKv;
    this.progressNotify = spec.progressNotify;
    this.fragment = spec.fragment;
    this.owner = owner;
    this.idField = encodeWatchIdField(spec.id);
  }

  get isRange(): boolean {
    return this.end !== undefined;
  }

  contains(key: string): boolean {
    return this.end === undefined ? key === this.key : key >= this.key && key < this.end;
  }
}
