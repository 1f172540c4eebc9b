/**
 * Applies committed lease requests (grant, revoke, checkpoint) to the lessor and, for a revocation, to the
 * key space, producing etcd's responses. Runs inside the apply of one raft entry, so the lease bucket, the
 * deleted keys and the consistent index land in the same backend batch.
 */
import type {
  LeaseCheckpointRequest,
  LeaseCheckpointResponse,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { Lessor } from '../../lease/lessor.js';
import { header } from './kv-apply.js';

/** What a revocation needs from the key space. */
export interface KeyDeleter {
  rev(): number;
  /** One write txn deleting these keys (latin1 strings); one revision, one delete event per key. */
  applyDeleteKeys(keys: readonly string[]): number;
}

export class LeaseApplier {
  readonly #lessor: Lessor;
  readonly #store: KeyDeleter;

  constructor(options: { lessor: Lessor; store: KeyDeleter }) {
    this.#lessor = options.lessor;
    this.#store = options.store;
  }

  grant(req: LeaseGrantRequest): LeaseGrantResponse {
    const granted = this.#lessor.grant(req.ID, req.TTL);
    return { header: header(this.#store.rev()), ID: granted.id, TTL: BigInt(granted.ttlSeconds), error: '' };
  }

  revoke(req: LeaseRevokeRequest): LeaseRevokeResponse {
    this.#lessor.revoke(req.ID, (keys) => void this.#store.applyDeleteKeys(keys));
    return { header: header(this.#store.rev()) };
  }

  checkpoint(req: LeaseCheckpointRequest): LeaseCheckpointResponse {
    for (const c of req.checkpoints) this.#lessor.checkpoint(c.ID, c.remainingTTL);
    return { header: header(this.#store.rev()) };
  }
}
