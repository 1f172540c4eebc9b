/**
 * The maintenance side of a member: alarms (store, apply step, raising NOSPACE at the API), the backend
 * quota, Status errors, defragmentation, the whole-backend hash. The server facade delegates to it.
 */
import { EtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import {
  AlarmRequest_AlarmAction,
  AlarmType,
  type AlarmRequest,
  type AlarmResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { AlarmStore, alarmText, type AlarmRecords } from './alarm-store.js';
import { MaintenanceApplyStage } from './maintenance-apply.js';
import { BackendQuota, effectiveQuotaBytes, quotaLimits, type QuotaRequest } from './quota.js';

/** What maintenance needs from the store. */
export interface MaintenanceStore {
  dbSizeBytes(): number;
  alarmRecords(): AlarmRecords;
  defragment(): Promise<void>;
  hash(): Promise<{ hash: number; revision: number }>;
}

export interface MaintenanceOptions {
  readonly log: Logger;
  readonly localId: bigint;
  readonly store: MaintenanceStore;
  /** --quota-backend-bytes as configured (0: default, negative: no quota). */
  readonly quotaBackendBytes: number;
  /** Proposes an AlarmRequest through raft; resolves with its applied response. */
  readonly proposeAlarm: (req: AlarmRequest) => Promise<AlarmResponse>;
}

export class Maintenance {
  readonly alarms: AlarmStore;
  readonly quota: BackendQuota;
  readonly applyStage: MaintenanceApplyStage;
  readonly #o: MaintenanceOptions;

  constructor(options: MaintenanceOptions) {
    this.#o = options;
    const quotaBytes = effectiveQuotaBytes(options.quotaBackendBytes);
    if (!Number.isFinite(quotaBytes)) options.log.info('disabled backend quota', { 'quota-size-bytes': options.quotaBackendBytes });
    else {
      if (quotaBytes > quotaLimits.maxRecommendedBytes) options.log.warn('quota exceeds the maximum value', { 'quota-size-bytes': quotaBytes });
      options.log.info('enabled backend quota', { 'quota-size-bytes': quotaBytes });
    }
    this.quota = new BackendQuota({ quotaBytes, sizeBytes: () => options.store.dbSizeBytes() });
    this.alarms = new AlarmStore(options.store.alarmRecords(), { log: options.log });
    this.applyStage = new MaintenanceApplyStage({
      alarms: this.alarms, quota: this.quota, localId: options.localId, proposeAlarm: options.proposeAlarm,
    });
  }

  /** The backend was replaced by a leader's snapshot. */
  reload(): void {
    this.alarms.reload(this.#o.store.alarmRecords());
  }

  /**
   * The API's quota check (etcd's quotaKVServer / quotaLeaseServer): a write that does not fit raises
   * NOSPACE for this member through raft and fails with NoSpace without being proposed.
   */
  async checkQuota(req: QuotaRequest): Promise<void> {
    if (this.quota.available(req)) return;
    await this.#o.proposeAlarm({ action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.#o.localId, alarm: AlarmType.NOSPACE })
      .catch(() => {});
    throw new EtcdError('NoSpace');
  }

  /** Status errors: one line per active alarm, in etcd's text. */
  statusErrors(): string[] {
    return this.alarms.get().map(alarmText);
  }

  /** Whether any alarm is active (for /health). */
  hasAlarms(): boolean {
    return this.alarms.get().length > 0;
  }

  async defragment(): Promise<void> {
    const started = performance.now();
    this.#o.log.info('defragmenting', { 'current-db-size-bytes': this.#o.store.dbSizeBytes() });
    try {
      await this.#o.store.defragment();
    } catch (err) {
      this.#o.log.warn('failed to defragment', { error: String(err) });
      throw err instanceof EtcdError ? err : new EtcdError('NotCapable');
    }
    this.#o.log.info('finished defragmenting', {
      'current-db-size-bytes': this.#o.store.dbSizeBytes(), took: `${Math.round(performance.now() - started)}ms`,
    });
  }

  hash(): Promise<{ hash: number; revision: number }> {
    return this.#o.store.hash();
  }
}
