/**
 * The simulated disk of one node: an append-only sequence of records (like a WAL plus a snapshot file).
 * write() buffers a record; sync() makes every buffered record durable. A crash keeps the durable state
 * plus a random prefix of the buffered records, and may tear the last entries record (a WAL detects the
 * torn record by its checksum and drops it, so what survives is always a prefix).
 */
import type { Entry, HardState, Snapshot } from '../../src/raft/types.js';
import { NONE } from '../../src/raft/types.js';
import { assert } from '../../src/base/assert.js';
import type { Prng } from './prng.js';

export type DiskRecord =
  | { readonly kind: 'entries'; readonly entries: readonly Entry[] }
  | { readonly kind: 'hardState'; readonly hardState: HardState }
  /** A snapshot received from the leader: it replaces the whole log. */
  | { readonly kind: 'installSnapshot'; readonly snapshot: Snapshot }
  /** A snapshot the node took of its own state machine: the log before compactIndex goes away. */
  | { readonly kind: 'localSnapshot'; readonly snapshot: Snapshot; readonly compactIndex: number };

/** What survives a crash. `entries` starts at `firstIndex` (snapshot index + 1, or later after compaction). */
export interface DurableState {
  readonly snapshot: Snapshot | null;
  readonly hardState: HardState;
  readonly firstIndex: number;
  readonly entries: readonly Entry[];
}

export interface CrashLoss {
  readonly buffered: number;
  readonly kept: number;
  readonly tornEntries: number;
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: NONE, commit: 0 };

export class SimDisk {
  #snapshot: Snapshot | null;
  #hardState: HardState;
  #firstIndex: number;
  #entries: Entry[];
  #buffer: DiskRecord[] = [];
  syncs = 0;

  constructor(initial: DurableState) {
    this.#snapshot = initial.snapshot;
    this.#hardState = initial.hardState;
    this.#firstIndex = initial.firstIndex;
    this.#entries = [...initial.entries];
  }

  static empty(): SimDisk {
    return new SimDisk({ snapshot: null, hardState: EMPTY_HARD_STATE, firstIndex: 1, entries: [] });
  }

  get bufferedRecords(): number {
    return this.#buffer.length;
  }

  write(record: DiskRecord): void {
    this.#buffer.push(record);
  }

  sync(): void {
    for (const r of this.#buffer) this.#applyDurable(r);
    this.#buffer = [];
    this.syncs++;
  }

  /** Writes a record and syncs it at once (snapshot files are written and fsynced as a unit). */
  writeSynced(record: DiskRecord): void {
    this.write(record);
    this.sync();
  }

  /**
   * Loses what was not synced, except a random prefix of the buffered records (the kernel may have
   * flushed some on its own); with `tear`, the first lost entries record may survive in part.
   */
  crash(rng: Prng, options: { tear: boolean }): CrashLoss {
    const buffered = this.#buffer.length;
    const kept = rng.intn(buffered + 1);
    for (const r of this.#buffer.slice(0, kept)) this.#applyDurable(r);
    let tornEntries = 0;
    const next = this.#buffer[kept];
    if (options.tear && next?.kind === 'entries' && next.entries.length > 1) {
      tornEntries = rng.intn(next.entries.length);
      if (tornEntries > 0) this.#applyDurable({ kind: 'entries', entries: next.entries.slice(0, tornEntries) });
    }
    this.#buffer = [];
    return { buffered, kept, tornEntries };
  }

  durable(): DurableState {
    return {
      snapshot: this.#snapshot,
      hardState: this.#hardState,
      firstIndex: this.#firstIndex,
      entries: [...this.#entries],
    };
  }

  get lastIndex(): number {
    return this.#firstIndex + this.#entries.length - 1;
  }

  #applyDurable(r: DiskRecord): void {
    switch (r.kind) {
      case 'hardState':
        this.#hardState = r.hardState;
        return;
      case 'entries':
        this.#appendEntries(r.entries);
        return;
      case 'installSnapshot':
        this.#snapshot = r.snapshot;
        this.#firstIndex = r.snapshot.metadata.index + 1;
        this.#entries = [];
        this.#raiseCommit(r.snapshot.metadata.index);
        return;
      case 'localSnapshot':
        this.#snapshot = r.snapshot;
        this.#compact(r.compactIndex);
        this.#raiseCommit(r.snapshot.metadata.index);
        return;
    }
  }

  /** A snapshot holds only committed state, so the durable commit is at least its index. */
  #raiseCommit(index: number): void {
    if (this.#hardState.commit < index) this.#hardState = { ...this.#hardState, commit: index };
  }

  #appendEntries(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(
      first.index >= this.#firstIndex && first.index <= this.lastIndex + 1,
      () => `disk: entries from ${first.index} do not attach to the log [${this.#firstIndex}, ${this.lastIndex}]`,
    );
    this.#entries.length = first.index - this.#firstIndex;
    for (const e of entries) this.#entries.push(e);
  }

  #compact(compactIndex: number): void {
    if (compactIndex < this.#firstIndex) return;
    assert(compactIndex <= this.lastIndex, () => `disk: compact ${compactIndex} past last index ${this.lastIndex}`);
    const drop = Math.min(compactIndex - this.#firstIndex + 1, this.#entries.length);
    this.#entries = this.#entries.slice(drop);
    this.#firstIndex = compactIndex + 1;
  }
}
