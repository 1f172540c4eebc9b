/**
 * One client's watch stream (etcd's serverWatchStream + mvcc watchStream): creates and cancels watchers
 * with etcd 3.4's ids and answers, frames their responses, and owns the stream's outgoing queue.
 *
 * Output: responses are gathered while the store delivers one write (all watchers of this stream that
 * receive it) and handed to the transport as one buffer of gRPC-framed messages when the store is done
 * (flushOutput), so a fan-out costs one allocation and one write per stream rather than per watcher.
 * Control responses flush at once.
 *
 * Back-pressure: responses go straight to the transport while it accepts them; once it reports full,
 * they wait in a bounded queue until it drains. An event response that does not fit is not queued: the
 * store parks its watcher as a victim and catches it up from history when this stream drains. Control
 * responses (created, canceled, progress) are always queued; a client that lets thousands of them pile
 * up while still sending requests has its stream failed.
 *
 * Ordering: every response of a watcher goes through this one queue in order, and a watcher's next
 * revision only advances once its response is queued; so a progress response queued after them is a
 * valid bookmark.
 */
import { randomInt } from 'node:crypto';
import { assert } from '../base/assert.js';
import { EtcdError } from '../base/errors.js';
import {
  ResponseHeader,
  WatchCreateRequest_FilterType as FilterType,
  type WatchCreateRequest,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { progressIntervalDefaultMs } from './limits.js';
import type { SharedEvent } from './shared-event.js';
import {
  bodySize, encodeHeaderField, encodeResponse, fragmentResponse, framePrefixBytes, frameFields, writeFramed, type ResponseHead,
} from './watch-response.js';
import type { WatchableStore } from './watchable-store.js';
import { aboveAllKeys, Watcher, type EventBatch, type WatcherOwner, type WatcherState } from './watcher.js';

/** Where a stream's responses go (the gRPC call, or a test). */
export interface ResponseSink {
  /**
   * Writes `count` encoded WatchResponses, each behind gRPC's 5-byte length prefix, back to back; false
   * when the transport is full (call onDrain() later).
   */
  write(framed: Buffer, count: number): boolean;
  /** Ends the stream with an error status. */
  fail(err: EtcdError): void;
}

export interface WatchStreamOptions {
  /** The response header (cluster, member, raft term) at a revision. */
  readonly header: (revision: number) => ResponseHeader;
  /** Fragmenting watchers get responses of at least this many bytes cut up (etcd: max request + 512 KiB). */
  readonly fragmentBytesMax: number;
  /** Period of progress notifications for watchers that asked (etcd adds up to 10% jitter). */
  readonly progressIntervalMs?: number;
}

/** etcd's cancel_reason texts and special ids (clientv3's AutoWatchID and InvalidWatchID). */
export const cancelReasons = {
  emptyRange: 'mvcc: watcher range is empty',
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  tooManyWatchers: 'etcd-ts: too many watchers',
} as const;
const autoWatchId = 0n;
const invalidWatchId = -1n;
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER);
const empty = Buffer.alloc(0);
/** Gathered output goes to the transport at this size even mid-write: one HTTP/2 DATA frame's worth. */
const outputChunkBytes = 16 * 1024;

/** The header last encoded by any stream: a write fanned out over many streams encodes it once. */
let lastHeader: { header: ResponseHeader; bytes: Uint8Array; field: Buffer } | undefined;

function sharedHeader(h: ResponseHeader): { bytes: Uint8Array; field: Buffer } {
  const l = lastHeader?.header;
  if (l !== undefined && l.revision === h.revision && l.raftTerm === h.raftTerm && l.memberId === h.memberId && l.clusterId === h.clusterId) {
    return lastHeader!;
  }
  const bytes = ResponseHeader.encode(h).finish();
  lastHeader = { header: { ...h }, bytes, field: encodeHeaderField(bytes) };
  return lastHeader;
}

/** A request's int64 start revision as a number: beyond 2^53 it is only compared, so clamped. */
function revisionOf(v: bigint): number {
  if (v > maxSafe) return Number.MAX_SAFE_INTEGER;
  if (v < -maxSafe) return -Number.MAX_SAFE_INTEGER;
  return Number(v);
}

interface QueuedResponse {
  /** One framed response. */
  readonly bytes: Buffer;
  readonly control: boolean;
}

export class WatchStream implements WatcherOwner {
  readonly #store: WatchableStore;
  readonly #sink: ResponseSink;
  readonly #o: WatchStreamOptions;
  readonly #watchers = new Map<bigint, Watcher>();
  readonly #progressWatchers = new Set<Watcher>();
  #nextId = 0n;
  /** Entries before #queueHead are already written (and cleared). */
  readonly #queue: Array<QueuedResponse | undefined> = [];
  #queueHead = 0;
  #queuedBytes = 0;
  #queuedControl = 0;
  #blocked = false;
  #notSynced = 0;
  #progressPending = false;
  #timer: NodeJS.Timeout | undefined;
  #headerCache: { revision: number; term: bigint; bytes: Uint8Array; field: Buffer } | undefined;
  /** The cached header was checked against the current term since the last flushOutput(). */
  #headerFresh = false;
  /**
   * Responses gathered for the next write, as parallel arrays (header field, watch id field, event
   * fields; a whole message sits in the first with the others empty) so a fan-out allocates nothing per
   * watcher. Only filled while the transport is not blocked and the queue is empty.
   */
  readonly #outHeads: Buffer[] = [];
  readonly #outIds: Buffer[] = [];
  readonly #outBodies: Array<Buffer | readonly Buffer[]> = [];
  #outBytes = 0;
  #closed = false;

  constructor(store: WatchableStore, sink: ResponseSink, options: WatchStreamOptions) {
    this.#store = store;
    this.#sink = sink;
    this.#o = options;
    store.registerStream(this);
  }

  get watcherCount(): number {
    return this.#watchers.size;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  // ---------------------------------------------------------------------------- client requests

  create(req: WatchCreateRequest): void {
    if (this.#closed) return;
    const key = req.key.length === 0 ? '\0' : req.key.toString('latin1');
    let end: string | undefined;
    if (req.rangeEnd.length === 1 && req.rangeEnd[0] === 0) end = aboveAllKeys;
    else if (req.rangeEnd.length > 0) end = req.rangeEnd.toString('latin1');
    const current = this.#store.history.revision();
    if (end !== undefined && key >= end) return this.#refuse(current, cancelReasons.emptyRange);
    let id = req.watchId;
    if (id === autoWatchId) {
      while (this.#watchers.has(this.#nextId)) this.#nextId++;
      id = this.#nextId++;
    } else if (this.#watchers.has(id)) {
      return this.#refuse(current, cancelReasons.duplicateId);
    }
    if (this.#watchers.size >= this.#store.limits.watchersPerStreamMax) return this.#refuse(current, cancelReasons.tooManyWatchers);
    const w = new Watcher({
      id, key, end,
      noPut: req.filters.includes(FilterType.NOPUT),
      noDelete: req.filters.includes(FilterType.NODELETE),
      prevKv: req.prevKv,
      progressNotify: req.progressNotify,
      fragment: req.fragment,
    }, this);
    if (!this.#store.hasCapacity()) return this.#refuse(current, cancelReasons.tooManyWatchers);
    // Created goes out before the store can send anything for this watcher.
    this.#sendControl(encodeResponse({ header: this.#header(current), watchId: id, created: true }));
    if (this.#closed) return;
    this.#watchers.set(id, w);
    this.#store.add(w, req.startRevision === 0n ? current + 1 : revisionOf(req.startRevision));
    if (w.progressNotify) this.#addProgressWatcher(w);
  }

  cancel(watchId: bigint): void {
    if (this.#closed) return;
    const w = this.#watchers.get(watchId);
    if (w === undefined) return; // etcd answers nothing for an unknown id
    this.#watchers.delete(watchId);
    this.#progressWatchers.delete(w);
    // Canceled goes out before removing it may release a deferred progress response.
    this.#sendControl(encodeResponse({ header: this.#header(this.#store.history.revision()), watchId, canceled: true }));
    this.#store.remove(w);
  }

  /**
   * An on-demand progress request: answered (watch id -1, header = current revision) once every
   * watcher of the stream is synced, so the revision is a bookmark: nothing at or below it is still to
   * come on this stream.
   */
  requestProgress(): void {
    if (this.#closed) return;
    if (this.#notSynced === 0) this.#sendProgressAll();
    else this.#progressPending = true;
  }

  /** The transport accepts writes again. */
  onDrain(): void {
    if (this.#closed) return;
    this.#blocked = false;
    this.#flush();
    const l = this.#store.limits;
    const pending = this.#queue.length - this.#queueHead;
    if (!this.#blocked || (pending <= l.streamQueuedResponsesMax / 2 && this.#queuedBytes <= l.streamQueuedBytesMax / 2)) {
      this.#store.wakeVictims(this);
    }
  }

  /** The client went away: drop every watcher and the queue. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#watchers.values()) this.#store.remove(w);
    this.#watchers.clear();
    this.#progressWatchers.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#store.queued(-this.#queuedBytes);
    this.#queue.length = 0;
    this.#queueHead = 0;
    this.#queuedBytes = 0;
    this.#clearOutput();
    this.#store.unregisterStream(this);
  }

  /** @internal For tests: the count of watchers behind matches their states. */
  checkInvariants(): void {
    const behind = [...this.#watchers.values()].filter((w) => w.state === 'unsynced' || w.state === 'victim').length;
    assert(this.#notSynced === behind, () => `stream counts ${this.#notSynced} watchers behind, ${behind} are`);
    assert(this.#queuedBytes >= 0 && this.#queuedControl >= 0, 'negative queue accounting');
  }

  /** The server is stopping. */
  shutdown(): void {
    if (this.#closed) return;
    this.close();
    this.#sink.fail(new EtcdError('Stopped'));
  }

  // ---------------------------------------------------------------------------- WatcherOwner

  hasRoom(): boolean {
    if (this.#closed) return false;
    const pending = this.#queue.length - this.#queueHead;
    if (!this.#blocked && pending === 0) return true;
    const l = this.#store.limits;
    return pending < l.streamQueuedResponsesMax && this.#queuedBytes < l.streamQueuedBytesMax &&
      this.#store.queuedBytes < l.queuedBytesMax;
  }

  deliver(w: Watcher, { events, headerRev }: EventBatch): boolean {
    let wanted = 0;
    for (const e of events) if (!(e.isPut ? w.noPut : w.noDelete)) wanted++;
    if (wanted === 0) return true; // filtered out: nothing to send, and nothing missed
    if (!this.hasRoom()) return false;
    const lookup = this.#store.lookupPrevKv;
    let body: Buffer | Buffer[];
    if (events.length === 1) {
      body = events[0]!.field(w.prevKv, lookup);
    } else {
      body = [];
      for (const e of events) if (!(e.isPut ? w.noPut : w.noDelete)) body.push(e.field(w.prevKv, lookup));
    }
    if (w.fragment) {
      const head: ResponseHead = { header: this.#header(headerRev), watchId: w.id };
      const fields = Buffer.isBuffer(body) ? [body] : body;
      for (const part of fragmentResponse(head, fields, { maxBytes: this.#o.fragmentBytesMax })) this.#emit(part, empty, empty, false);
    } else {
      this.#emit(this.#headerField(headerRev), w.idField, body, false);
    }
    w.quietSinceTick = false;
    return true;
  }

  /**
   * Hands the gathered responses to the transport as one write. The store calls it once it has
   * delivered a write to every watcher (see WatchableStore.outputPending).
   */
  flushOutput(): void {
    this.#headerFresh = false;
    const n = this.#outHeads.length;
    if (n === 0 || this.#closed) return this.#clearOutput();
    const out = Buffer.allocUnsafe(this.#outBytes);
    let pos = 0;
    for (let i = 0; i < n; i++) pos = writeFramed(out, pos, this.#outHeads[i]!, this.#outIds[i]!, this.#outBodies[i]!);
    assert(pos === out.length, () => `gathered output sized ${out.length}, written ${pos}`);
    this.#clearOutput();
    if (!this.#sink.write(out, n)) this.#blocked = true;
  }

  compacted(w: Watcher, compactRev: number): void {
    // etcd's compacted response carries header revision 0.
    this.#sendControl(encodeResponse({ header: this.#header(0), watchId: w.id, canceled: true, compactRevision: BigInt(compactRev) }));
  }

  stateChanged(w: Watcher, from: WatcherState): void {
    const behind = (s: WatcherState): boolean => s === 'unsynced' || s === 'victim';
    if (behind(from) === behind(w.state)) return;
    this.#notSynced += behind(w.state) ? 1 : -1;
    if (this.#notSynced === 0 && this.#progressPending && !this.#closed) {
      this.#progressPending = false;
      this.#sendProgressAll();
    }
  }

  // ---------------------------------------------------------------------------- progress

  #sendProgressAll(): void {
    this.#sendControl(encodeResponse({ header: this.#header(this.#store.history.revision()), watchId: invalidWatchId }));
  }

  #addProgressWatcher(w: Watcher): void {
    this.#progressWatchers.add(w);
    if (this.#timer !== undefined) return;
    const base = this.#o.progressIntervalMs ?? progressIntervalDefaultMs;
    // etcd adds up to 10% jitter so streams created together do not all report at once.
    const jitter = base >= 10 ? randomInt(Math.floor(base / 10)) : 0;
    this.#timer = setInterval(() => this.#progressTick(), base + jitter);
    this.#timer.unref();
  }

  /** etcd's periodic progress: a synced watcher that got no events since the last tick gets a header. */
  #progressTick(): void {
    if (this.#closed) return;
    const rev = this.#store.history.revision();
    for (const w of this.#progressWatchers) {
      if (w.quietSinceTick && w.state === 'synced' && this.hasRoom()) {
        this.#emit(encodeResponse({ header: this.#header(rev), watchId: w.id }), empty, empty, false);
      }
      w.quietSinceTick = true;
    }
    this.flushOutput();
  }

  // ---------------------------------------------------------------------------- output

  #refuse(current: number, reason: string): void {
    this.#sendControl(encodeResponse({ header: this.#header(current), watchId: invalidWatchId, created: true, canceled: true, cancelReason: reason }));
  }

  #header(revision: number): Uint8Array {
    return this.#cachedHeader(revision).bytes;
  }

  #headerField(revision: number): Buffer {
    return this.#cachedHeader(revision).field;
  }

  /**
   * A fan-out sends many responses at one revision: the header is encoded once for them, and checked
   * against the current term once per write delivered (the term cannot change while one is delivered).
   */
  #cachedHeader(revision: number): { bytes: Uint8Array; field: Buffer } {
    const c = this.#headerCache;
    if (c !== undefined && c.revision === revision && this.#headerFresh) return c;
    this.#headerFresh = true;
    const h = this.#o.header(revision);
    if (c !== undefined && c.revision === revision && c.term === h.raftTerm) return c;
    this.#headerCache = { revision, term: h.raftTerm, ...sharedHeader(h) };
    return this.#headerCache;
  }

  #sendControl(bytes: Buffer): void {
    this.#emit(bytes, empty, empty, true);
    if (this.#queuedControl > this.#store.limits.streamQueuedControlMax) {
      // The client keeps sending requests but reads none of the answers.
      this.close();
      this.#sink.fail(new EtcdError('TooManyRequests'));
    }
  }

  /** One response: head, watch id and event fields (or a whole message as head, the others empty). */
  #emit(head: Buffer, id: Buffer, body: Buffer | readonly Buffer[], control: boolean): void {
    if (this.#closed) return;
    if (this.#blocked || this.#queue.length !== this.#queueHead) {
      // No flush follows a queued response: the next one checks the header's term again.
      this.#headerFresh = false;
      const bytes = frameFields(head, id, body);
      this.#queue.push({ bytes, control });
      this.#queuedBytes += bytes.length;
      this.#store.queued(bytes.length);
      if (control) this.#queuedControl++;
      return;
    }
    if (this.#outHeads.length === 0) this.#store.outputPending(this);
    this.#outHeads.push(head);
    this.#outIds.push(id);
    this.#outBodies.push(body);
    this.#outBytes += framePrefixBytes + head.length + id.length + bodySize(body);
    if (control || this.#outBytes >= outputChunkBytes) this.flushOutput();
  }

  #clearOutput(): void {
    this.#outHeads.length = 0;
    this.#outIds.length = 0;
    this.#outBodies.length = 0;
    this.#outBytes = 0;
  }

  /** Writes queued responses, several per write, until the transport is full again. */
  #flush(): void {
    while (!this.#blocked && this.#queueHead < this.#queue.length && !this.#closed) {
      const parts: Buffer[] = [];
      let bytes = 0;
      while (this.#queueHead < this.#queue.length) {
        const item = this.#queue[this.#queueHead]!;
        if (parts.length > 0 && bytes + item.bytes.length > outputChunkBytes) break;
        this.#queue[this.#queueHead++] = undefined;
        this.#queuedBytes -= item.bytes.length;
        this.#store.queued(-item.bytes.length);
        if (item.control) this.#queuedControl--;
        parts.push(item.bytes);
        bytes += item.bytes.length;
      }
      const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, bytes);
      if (!this.#sink.write(out, parts.length)) this.#blocked = true;
    }
    if (this.#queueHead === this.#queue.length) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    } else if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
  }
}
