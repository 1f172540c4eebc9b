/** etcd's v3lock.Lock service: a thin adapter over the lock recipe (src/concurrency/mutex.ts). */
import type { Logger } from '../../base/logger.js';
import {
  LockService, type LockRequest, type LockResponse, type LockServer, type UnlockRequest, type UnlockResponse,
} from '../../gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import { recipeUnary } from './call-signal.js';
import type { ServiceRegistration } from './services.js';

export interface LockApi {
  /** Waits until the lock is held; stops (and withdraws) when `signal` aborts. */
  lock(request: LockRequest, signal: AbortSignal): Promise<LockResponse>;
  unlock(request: UnlockRequest): Promise<UnlockResponse>;
}

export function lockService(api: LockApi, log: Logger): ServiceRegistration {
  return {
    definition: LockService,
    implementation: {
      lock: recipeUnary('Lock', log, (r: LockRequest, signal) => api.lock(r, signal)),
      unlock: recipeUnary('Unlock', log, (r: UnlockRequest) => api.unlock(r)),
    } satisfies Partial<Record<keyof LockServer, unknown>>,
  };
}
