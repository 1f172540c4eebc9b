/**
 * The auth step of the apply chain (before the quota and the stores): every write is checked again with
 * the user and auth revision it was proposed with, so a permission revoked between proposal and apply
 * takes effect; then the auth store's own requests are applied. Synchronous and deterministic: every
 * member decides the same from the same entry.
 */
import type { ApplyStage } from '../applier.js';
import { EtcdError } from '../../base/errors.js';
import type { RaftRequest } from '../../gen/etcdts/internal.js';
import type { AuthInfo, AuthStore } from '../../auth/auth-store.js';
import type { AuthenticateApplied } from '../../auth/auth-server.js';
import { checkTxnPermissions } from '../../auth/txn-perms.js';
import type { TokenProvider } from '../../auth/tokens.js';

/** The lessor as the auth step needs it: the keys a lease holds. */
export interface LeaseKeys {
  lookup(id: bigint): { readonly keys: readonly string[] } | undefined;
}

type Body = NonNullable<RaftRequest['request']>;

export class AuthApplier {
  readonly #store: AuthStore;
  readonly #tokens: TokenProvider;
  readonly #leases: LeaseKeys;

  constructor(options: { store: AuthStore; tokens: TokenProvider; leases: LeaseKeys }) {
    this.#store = options.store;
    this.#tokens = options.tokens;
    this.#leases = options.leases;
  }

  /** The applier chain's first step: re-check the requester's rights, apply auth requests, else go on. */
  asStage(): ApplyStage {
    return {
      apply: (req, next, index) => {
        this.gate(req);
        return (req.request && this.apply(req.request, index)) || next();
      },
    };
  }

  /** Throws the EtcdError that refuses this request, as etcd's authApplierV3 would. */
  gate(req: RaftRequest): void {
    const store = this.#store;
    if (!store.enabled || !req.request) return;
    const info: AuthInfo | null = req.authUser === '' && req.authRevision === 0n
      ? null : { username: req.authUser, revision: Number(req.authRevision) };
    const r = req.request;
    switch (r.$case) {
      case 'put':
        store.checkPut(info, r.value.key);
        // A lease already holding keys this user cannot write: the user could not revoke it either.
        this.#checkLeaseKeys(info, r.value.lease);
        if (r.value.prevKv) store.checkRange(info, { key: r.value.key, rangeEnd: Buffer.alloc(0) });
        return;
      case 'deleteRange':
        store.checkDeleteRange(info, r.value);
        if (r.value.prevKv) store.checkRange(info, r.value);
        return;
      case 'txn':
        checkTxnPermissions(store, info, r.value);
        return;
      case 'leaseRevoke':
        this.#checkLeaseKeys(info, r.value.ID);
        return;
      default:
        if (needsAdmin(r)) store.checkAdmin(info);
    }
  }

  #checkLeaseKeys(info: AuthInfo | null, id: bigint): void {
    if (id === 0n) return;
    for (const key of this.#leases.lookup(id)?.keys ?? []) this.#store.checkPut(info, Buffer.from(key, 'latin1'));
  }

  /** Applies an auth request; undefined when `r` is not one. */
  apply(r: Body, index: number): { value: unknown } | undefined {
    const store = this.#store;
    switch (r.$case) {
      case 'authEnable':
        store.enable();
        break;
      case 'authDisable':
        store.disable();
        break;
      case 'authenticate':
        return { value: this.#authenticate(r.value.name, r.value.simpleToken, index) };
      case 'authUserAdd':
        store.userAdd({ name: r.value.name, hashedPassword: r.value.hashedPassword, options: r.value.options });
        break;
      case 'authUserDelete':
        store.userDelete(r.value.name);
        break;
      case 'authUserChangePassword':
        store.userChangePassword(r.value.name, r.value.hashedPassword);
        break;
      case 'authUserGrantRole':
        store.userGrantRole(r.value.user, r.value.role);
        break;
      case 'authUserRevokeRole':
        store.userRevokeRole(r.value.name, r.value.role);
        break;
      case 'authRoleAdd':
        store.roleAdd(r.value.name);
        break;
      case 'authRoleDelete':
        store.roleDelete(r.value.role);
        break;
      case 'authRoleGrantPermission':
        if (!r.value.perm) throw new EtcdError('PermissionNotGranted');
        store.roleGrantPermission(r.value.name, r.value.perm);
        break;
      case 'authRoleRevokePermission':
        store.roleRevokePermission(r.value.role, r.value);
        break;
      default:
        return undefined;
    }
    return { value: null };
  }

  #authenticate(name: string, prefix: string, index: number): AuthenticateApplied {
    this.#store.authenticateApply(name);
    const token = this.#tokens.kind === 'simple' ? this.#tokens.assignSimple(name, { prefix, index }) : '';
    return { token, revision: this.#store.revision };
  }
}

function needsAdmin(r: Body): boolean {
  switch (r.$case) {
    case 'authEnable': case 'authDisable': case 'authUserAdd': case 'authUserDelete': case 'authUserChangePassword':
    case 'authUserGrantRole': case 'authUserRevokeRole': case 'authRoleAdd': case 'authRoleDelete':
    case 'authRoleGrantPermission': case 'authRoleRevokePermission':
      return true;
    default:
      return false;
  }
}
