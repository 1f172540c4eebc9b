/**
 * The replicated state machine: applies committed raft entries, in order, to the KV store and the member
 * list, and wakes the client waiting on each request id. Entries at or below the store's consistent index
 * are already in the backend (a restart replays the WAL from the last snapshot) and are skipped, so no
 * entry is ever applied twice.
 */
import { EtcdError } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { RaftRequest } from '../gen/etcdts/internal.js';
import { ConfChangeType, EntryType, type ConfChangeV2, type ConfState, type Entry, type Message, type Snapshot } from '../raft/types.js';
import { closeSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { RawNodeApi } from '../raft/contract.js';
import { decodeConfChangeV2 } from '../raft/conf-change.js';
import type { StateMachine } from '../raftnode/raft-node.js';
import type { KvStore } from './kv-store.js';
import { fromInfo, type Membership } from './membership.js';
import { MemberInfo } from '../gen/etcdts/internal.js';
import type { WaitRegistry } from './wait.js';
import type { LeaseApplier } from './apply/lease-apply.js';

export interface ApplierOptions {
  readonly store: KvStore;
  readonly membership: Membership;
  readonly waits: WaitRegistry;
  readonly rawNode: () => RawNodeApi;
  readonly log: Logger;
  readonly localId: bigint;
  /** The current raft term, for response headers. */
  readonly term: () => number;
  readonly onClusterVersion: (version: string) => void;
  /** Called when this member has been removed from the cluster. */
  readonly onRemovedSelf: () => void;
  /** Where received and outgoing backend snapshots are staged. */
  readonly snapDir: string;
  /** The backend was replaced by a leader's snapshot: everything derived from it must reload. */
  readonly onRestored?: () => void;
  readonly leases: LeaseApplier;
  /** A leader's empty entry was applied (the lessor is promoted when it is the current leader's). */
  readonly onEmptyEntry?: (entry: Entry) => void;
  /** A request whose apply took longer than thresholdMs (etcd's --experimental-warning-apply-duration). */
  readonly slowApply?: { readonly thresholdMs: number; onSlow(request: string, tookMs: number): void };
  /** Steps of the applier chain before the stores, in order (auth, then alarms and quota). */
  readonly stages?: readonly ApplyStage[];
}

/**
 * One step of the applier chain: answers the request itself (an error, or a request of its own kind) or
 * calls next() to go on. `index` is the raft entry's, for steps that need it (auth tokens).
 */
export interface ApplyStage {
  apply(req: RaftRequest, next: () => ApplyOutcome, index: number): ApplyOutcome;
}

function writeDurably(file: string, data: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface ApplyOutcome {
  readonly value?: unknown;
  readonly error?: EtcdError;
  /** The waiting client is answered once this settles (e.g. an alarm proposal a failure raised). */
  readonly after?: Promise<unknown>;
}

export class Applier implements StateMachine {
  readonly #o: ApplierOptions;
  #confState: ConfState;

  constructor(options: ApplierOptions, initial: { confState: ConfState }) {
    this.#o = options;
    this.#confState = initial.confState;
  }

  confState(): ConfState {
    return this.#confState;
  }

  applyEntries(entries: readonly Entry[]): void {
    const store = this.#o.store;
    const consistent = store.consistentIndex();
    for (const e of entries) {
      if (e.type !== EntryType.Normal) {
        // Raft's configuration is not in the backend: conf changes replayed after a restart must reach
        // the raft core again even when the backend already holds their effect.
        this.#applyConfChange(e, e.index > consistent);
      } else if (e.index > consistent) {
        this.#applyNormal(e);
      }
      if (e.index > consistent) store.setConsistentIndex(e.index, e.term);
    }
  }

  async applySnapshot(snapshot: Snapshot): Promise<void> {
    const file = join(this.#o.snapDir, `${snapshot.metadata.term.toString(16).padStart(16, '0')}-${snapshot.metadata.index.toString(16).padStart(16, '0')}.snap.db`);
    writeDurably(file, snapshot.data);
    await this.#o.store.restoreFromFile(file);
    this.#o.membership.reload();
    this.#confState = snapshot.metadata.confState;
    this.#o.onRestored?.();
    this.#o.log.info('restored the backend from a leader snapshot', {
      'snapshot-index': snapshot.metadata.index, 'consistent-index': this.#o.store.consistentIndex(), 'db-size-bytes': snapshot.data.length,
    });
  }

  async prepareSnapshotMessage(message: Message): Promise<Message> {
    const file = join(this.#o.snapDir, `send-${message.to.toString(16)}-${Date.now()}.db`);
    // The follower gets the state as applied now, described as such: the stored raft snapshot may be older
    // and name a configuration without a member added since (which that member would refuse).
    const metadata = { index: this.#o.store.consistentIndex(), term: this.#o.store.consistentTerm(), confState: this.#confState };
    try {
      await this.#o.store.snapshotToFile(file);
      const data = readFileSync(file);
      if (!message.snapshot) throw new Error('snapshot message without a snapshot');
      return { ...message, snapshot: { data, metadata } };
    } finally {
      rmSync(file, { force: true });
    }
  }

  flush(): Promise<void> {
    return this.#o.store.forceCommit();
  }

  #applyNormal(e: Entry): void {
    if (e.data.length === 0) {
      this.#o.onEmptyEntry?.(e); // a new leader's empty entry
      return;
    }
    let req: RaftRequest;
    try {
      req = RaftRequest.decode(e.data);
    } catch (err) {
      // Every member decodes the same bytes; refusing to go on is the only safe answer to a corrupt log.
      throw new Error(`cannot decode raft entry ${e.index}: ${(err as Error).message}`);
    }
    const startMs = performance.now();
    const outcome = this.#chain(req, e.index, 0);
    const tookMs = performance.now() - startMs;
    const slow = this.#o.slowApply;
    if (slow !== undefined && tookMs > slow.thresholdMs) slow.onSlow(req.request?.$case ?? 'empty', tookMs);
    const settle = (): void => {
      if (outcome.error) this.#o.waits.fail(req.id, outcome.error);
      else this.#o.waits.trigger(req.id, outcome.value);
    };
    if (outcome.after) void outcome.after.then(settle, settle);
    else settle();
  }

  #chain(req: RaftRequest, index: number, i: number): ApplyOutcome {
    const stage = this.#o.stages?.[i];
    if (stage === undefined) return this.#dispatch(req);
    try {
      return stage.apply(req, () => this.#chain(req, index, i + 1), index);
    } catch (err) {
      if (err instanceof EtcdError) return { error: err };
      throw err;
    }
  }

  #dispatch(req: RaftRequest): ApplyOutcome {
    const store = this.#o.store;
    const r = req.request;
    try {
      switch (r?.$case) {
        case 'put':
          return { value: store.applyPut(r.value) };
        case 'deleteRange':
          return { value: store.applyDeleteRange(r.value) };
        case 'txn':
          return { value: store.applyTxn(r.value) };
        case 'compaction':
          return { value: store.applyCompaction(r.value) };
        case 'leaseGrant':
          return { value: this.#o.leases.grant(r.value) };
        case 'leaseRevoke':
          return { value: this.#o.leases.revoke(r.value) };
        case 'leaseCheckpoint':
          return { value: this.#o.leases.checkpoint(r.value) };
        case 'memberAttributes':
          this.#o.membership.setAttributes(r.value.memberId, { name: r.value.name, clientUrls: r.value.clientUrls });
          return { value: null };
        case 'clusterVersion':
          this.#o.onClusterVersion(r.value.version);
          return { value: null };
        default:
          this.#o.log.warn('skipped a raft request this member cannot apply', { request: r?.$case ?? 'empty' });
          return { error: new EtcdError('NotCapable') };
      }
    } catch (err) {
      if (err instanceof EtcdError) return { error: err };
      throw err;
    }
  }

  #applyConfChange(e: Entry, toBackend: boolean): void {
    const cc: ConfChangeV2 = decodeConfChangeV2(e.data);
    if (toBackend) this.#applyMembership(cc);
    this.#confState = this.#o.rawNode().applyConfChange(cc);
    if (cc.context.length > 0) {
      const requestId = MemberInfo.decode(cc.context).requestId;
      if (requestId !== 0n) this.#o.waits.trigger(requestId, null);
    }
  }

  #applyMembership(cc: ConfChangeV2): void {
    const membership = this.#o.membership;
    for (const change of cc.changes) {
      if (change.type === ConfChangeType.RemoveNode) {
        membership.remove(change.nodeId);
        if (change.nodeId === this.#o.localId) this.#o.onRemovedSelf();
      } else if (cc.context.length === 0) {
        const existing = membership.get(change.nodeId);
        if (existing) membership.upsert({ ...existing, isLearner: change.type === ConfChangeType.AddLearnerNode });
      } else {
        const info = fromInfo(MemberInfo.decode(cc.context));
        const isLearner = change.type === ConfChangeType.AddLearnerNode;
        const existing = membership.get(change.nodeId);
        membership.upsert({
          ...info,
          id: change.nodeId,
          isLearner: change.type === ConfChangeType.UpdateNode ? (existing?.isLearner ?? isLearner) : isLearner,
          name: existing?.name ?? info.name,
          clientUrls: existing?.clientUrls ?? info.clientUrls,
        });
      }
    }
  }
}
