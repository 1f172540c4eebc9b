/**
 * The maintenance step of the applier chain (auth -> quota -> stores): applies replicated alarm requests,
 * refuses writes while an alarm is active, and enforces the backend quota at apply time.
 *
 * - NOSPACE active: puts, txns with puts and lease grants fail with NoSpace (etcd's capped applier);
 *   deletes, compaction and reads still apply, so space can be freed.
 * - CORRUPT active: every KV write, compaction and lease grant/revoke fails with Corrupt (etcd's corrupt
 *   applier); reads are served locally and never reach the applier.
 * - Quota: a write is checked against the quota before it is applied; it is applied anyway, but if it did
 *   not fit its client gets NoSpace and this member raises NOSPACE through raft (as etcd does: each member
 *   that applies it proposes its own alarm), answering the client once that proposal is done.
 */
import { EtcdError } from '../../base/errors.js';
import { AlarmRequest_AlarmAction, AlarmType, type AlarmRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { RaftRequest } from '../../gen/etcdts/internal.js';
import type { AlarmStore } from './alarm-store.js';
import { quotaCost, type BackendQuota, type QuotaRequest } from './quota.js';

/** What one step of the applier chain returns (the Applier's outcome). */
export interface StageOutcome {
  readonly value?: unknown;
  readonly error?: EtcdError;
  /** The client is answered once this settles. */
  readonly after?: Promise<unknown>;
}

export interface MaintenanceApplyOptions {
  readonly alarms: AlarmStore;
  readonly quota: BackendQuota;
  readonly localId: bigint;
  /** Proposes an alarm request through raft (resolves when applied or failed). */
  readonly proposeAlarm: (req: AlarmRequest) => Promise<unknown>;
}

const corruptRefused = new Set(['put', 'deleteRange', 'txn', 'compaction', 'leaseGrant', 'leaseRevoke']);

function asQuotaRequest(r: RaftRequest['request']): QuotaRequest | null {
  if (r?.$case === 'put' || r?.$case === 'txn' || r?.$case === 'leaseGrant') return r;
  return null;
}

export class MaintenanceApplyStage {
  readonly #o: MaintenanceApplyOptions;

  constructor(options: MaintenanceApplyOptions) {
    this.#o = options;
  }

  /** Applies req through this step; next() applies it to the stores. */
  apply(req: RaftRequest, next: () => StageOutcome): StageOutcome {
    const r = req.request;
    if (r?.$case === 'alarm') return { value: this.#o.alarms.apply(r.value) };
    if (r !== undefined && corruptRefused.has(r.$case) && this.#o.alarms.has(AlarmType.CORRUPT)) {
      return { error: new EtcdError('Corrupt') };
    }
    const q = asQuotaRequest(r);
    if (q === null) return next();
    if (this.#o.alarms.has(AlarmType.NOSPACE)) {
      if (q.$case !== 'txn' || quotaCost(q) > 0) return { error: new EtcdError('NoSpace') };
      return next();
    }
    const fits = this.#o.quota.available(q);
    const outcome = next();
    if (outcome.error !== undefined || fits) return outcome;
    return { error: new EtcdError('NoSpace'), after: this.#raiseNoSpace() };
  }

  #raiseNoSpace(): Promise<unknown> {
    const req: AlarmRequest = { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.#o.localId, alarm: AlarmType.NOSPACE };
    return this.#o.proposeAlarm(req).catch(() => {});
  }
}
