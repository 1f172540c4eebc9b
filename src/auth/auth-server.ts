/**
 * The API member's half of auth: resolving a request's credentials to a user, checking reads before they
 * run and admin-only calls, stamping proposals with the user and auth revision (apply checks again), and
 * the Auth service's RPCs. Passwords are hashed and checked here, on the libuv threadpool, never on the
 * apply path.
 */
import { EtcdError, type ErrorKind } from '../base/errors.js';
import type { Logger } from '../base/logger.js';
import { requestContext, type Credentials } from '../base/request-context.js';
import type {
  AuthDisableResponse, AuthEnableResponse, AuthStatusResponse, AuthenticateRequest, AuthenticateResponse, AuthRoleAddRequest,
  AuthRoleAddResponse, AuthRoleDeleteRequest, AuthRoleDeleteResponse, AuthRoleGetRequest, AuthRoleGetResponse,
  AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, AuthRoleListResponse,
  AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, AuthUserAddRequest, AuthUserAddResponse,
  AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, AuthUserDeleteRequest, AuthUserDeleteResponse,
  AuthUserGetRequest, AuthUserGetResponse, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse,
  AuthUserListResponse, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, RangeRequest, ResponseHeader,
  TxnRequest,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { RaftRequest } from '../gen/etcdts/internal.js';
import { hashPassword, rootUser, type AuthInfo, type AuthStore } from './auth-store.js';
import { checkTxnPermissions } from './txn-perms.js';
import type { KeyRange } from './range-perms.js';
import type { TokenProvider } from './tokens.js';

type RequestBody = NonNullable<RaftRequest['request']>;

export interface AuthServerOptions {
  readonly store: AuthStore;
  readonly tokens: TokenProvider;
  readonly bcryptCost: number;
  /** --client-cert-auth: a verified client certificate's CN names the user when no token is given. */
  readonly clientCertAuth: boolean;
  /** Proposes through raft (stamped by the server with this request's user) and resolves with the apply result. */
  readonly propose: <T>(body: RequestBody) => Promise<T>;
  readonly waitLinearizable: () => Promise<void>;
  readonly header: () => ResponseHeader;
  readonly log: Logger;
}

/** What the apply of an Authenticate returns to its proposer. */
export interface AuthenticateApplied {
  readonly token: string;
  readonly revision: number;
}

const unmappedKinds: Partial<Record<ErrorKind, ErrorKind>> = {
  PermissionDenied: 'UnmappedAuthPermissionDenied',
  UserEmpty: 'UnmappedAuthUserEmpty',
  UserNotFound: 'UnmappedAuthUserNotFound',
  InvalidAuthToken: 'UnmappedAuthInvalidToken',
};

/** The number of times Authenticate re-checks a password that went stale while proposing. */
const authenticateAttemptsMax = 5;

export class AuthServer {
  readonly #o: AuthServerOptions;

  constructor(options: AuthServerOptions) {
    this.#o = options;
  }

  get store(): AuthStore {
    return this.#o.store;
  }

  // ---------------------------------------------------------------------------- credentials

  /** This request's user (memoized in the request context), null without credentials. */
  authInfo(): Promise<AuthInfo | null> {
    const ctx = requestContext.getStore();
    if (!ctx) return Promise.resolve(null);
    if (ctx.internal) return Promise.resolve({ username: rootUser, revision: this.#o.store.revision });
    ctx.resolvedAuth ??= this.resolve(ctx.credentials);
    return ctx.resolvedAuth;
  }

  /** etcd's AuthInfoFromCtx: a token must be valid; without one, the TLS CN when configured so. */
  async resolve(c: Credentials | undefined): Promise<AuthInfo | null> {
    const store = this.#o.store;
    if (c?.token !== undefined) {
      const info = await this.#o.tokens.info(c.token, store.revision);
      if (!info) throw new EtcdError('InvalidAuthToken');
      return info;
    }
    if (this.#o.clientCertAuth && c?.commonName && store.enabled) return { username: c.commonName, revision: store.revision };
    return null;
  }

  /** The user and revision a proposal carries (etcd's RequestHeader username / auth_revision). */
  async stamp(): Promise<{ authUser: string; authRevision: bigint }> {
    const info = await this.authInfo();
    return info ? { authUser: info.username, authRevision: BigInt(info.revision) } : { authUser: '', authRevision: 0n };
  }

  // --------------------------------------------------------------------------------- checks

  /**
   * etcd's doSerialize: check, read, then refuse the answer if the auth store changed meanwhile (the read
   * may have used permissions that are gone).
   */
  async guardRead<T>(check: (info: AuthInfo | null) => void, read: () => T): Promise<T> {
    const info = await this.authInfo();
    check(info);
    const result = read();
    if (info && info.revision !== 0 && info.revision !== this.#o.store.revision) throw new EtcdError('AuthOldRevision');
    return result;
  }

  guardRange<T>(req: RangeRequest, read: () => T): Promise<T> {
    return this.guardRead((info) => this.#o.store.checkRange(info, req), read);
  }

  guardTxn<T>(req: TxnRequest, read: () => T): Promise<T> {
    return this.guardRead((info) => checkTxnPermissions(this.#o.store, info, req), read);
  }

  /** Admin-only calls (maintenance, membership): the root role. */
  async checkAdmin(): Promise<void> {
    this.#o.store.checkAdmin(await this.authInfo());
  }

  /** Maintenance calls: the root role, with etcd 3.4's unmapped error texts (its Maintenance service skips the mapping). */
  async checkAdminUnmapped(): Promise<void> {
    try {
      this.#o.store.checkAdmin(await this.authInfo());
    } catch (err) {
      const unmapped = err instanceof EtcdError ? unmappedKinds[err.kind] : undefined;
      throw unmapped ? new EtcdError(unmapped) : err;
    }
  }

  /** A watch on [key, rangeEnd): read permission, checked once at creation. */
  async checkWatch(credentials: Credentials, range: KeyRange): Promise<void> {
    const info = await this.resolve(credentials);
    this.#o.store.checkRange(info, range);
  }

  // ------------------------------------------------------------------------------- the RPCs

  #hdr<T>(res: T): T & { header: ResponseHeader } {
    return { ...res, header: this.#o.header() };
  }

  async authEnable(): Promise<AuthEnableResponse> {
    await this.#o.propose({ $case: 'authEnable', value: {} });
    return this.#hdr({});
  }

  async authDisable(): Promise<AuthDisableResponse> {
    await this.#o.propose({ $case: 'authDisable', value: {} });
    return this.#hdr({});
  }

  /** etcd 3.5's AuthStatus: anyone may ask (a linearizable answer, as etcd's goes through raft). */
  async authStatus(): Promise<AuthStatusResponse> {
    await this.authInfo(); // a bad token is refused, as with any etcd proposal
    await this.#o.waitLinearizable();
    return this.#hdr({ enabled: this.#o.store.enabled, authRevision: BigInt(this.#o.store.revision) });
  }

  /**
   * etcd's Authenticate: a linearizable read, the password checked here (bcrypt on the threadpool), then
   * a proposal that issues the token; if the auth store changed meanwhile, check again.
   */
  async authenticate(req: AuthenticateRequest): Promise<AuthenticateResponse> {
    await this.#o.waitLinearizable();
    const store = this.#o.store;
    for (let attempt = 1; ; attempt++) {
      const checked = await store.checkPassword(req.name, req.password);
      const prefix = this.#o.tokens.genTokenPrefix();
      const applied = await this.#o.propose<AuthenticateApplied>({ $case: 'authenticate', value: { name: req.name, simpleToken: prefix } });
      if (checked === store.revision || attempt >= authenticateAttemptsMax) {
        const token = this.#o.tokens.kind === 'jwt' ? await this.#o.tokens.sign(req.name, applied.revision) : applied.token;
        return this.#hdr({ token });
      }
      this.#o.log.info('revision when password checked became stale; retrying');
    }
  }

  async userAdd(req: AuthUserAddRequest): Promise<AuthUserAddResponse> {
    const noPassword = req.options?.noPassword ?? false;
    // Hash before proposing: the log never holds a clear password and apply never runs bcrypt.
    const hashed = noPassword ? Buffer.alloc(0) : await hashPassword(req.password, this.#o.bcryptCost);
    await this.#o.propose({ $case: 'authUserAdd', value: { name: req.name, hashedPassword: hashed, options: { noPassword } } });
    return this.#hdr({});
  }

  async userDelete(req: AuthUserDeleteRequest): Promise<AuthUserDeleteResponse> {
    await this.#o.propose({ $case: 'authUserDelete', value: req });
    return this.#hdr({});
  }

  async userChangePassword(req: AuthUserChangePasswordRequest): Promise<AuthUserChangePasswordResponse> {
    const hashed = await hashPassword(req.password, this.#o.bcryptCost);
    await this.#o.propose({ $case: 'authUserChangePassword', value: { name: req.name, hashedPassword: hashed } });
    return this.#hdr({});
  }

  async userGrantRole(req: AuthUserGrantRoleRequest): Promise<AuthUserGrantRoleResponse> {
    await this.#o.propose({ $case: 'authUserGrantRole', value: req });
    return this.#hdr({});
  }

  async userRevokeRole(req: AuthUserRevokeRoleRequest): Promise<AuthUserRevokeRoleResponse> {
    await this.#o.propose({ $case: 'authUserRevokeRole', value: req });
    return this.#hdr({});
  }

  async roleAdd(req: AuthRoleAddRequest): Promise<AuthRoleAddResponse> {
    await this.#o.propose({ $case: 'authRoleAdd', value: req });
    return this.#hdr({});
  }

  async roleDelete(req: AuthRoleDeleteRequest): Promise<AuthRoleDeleteResponse> {
    await this.#o.propose({ $case: 'authRoleDelete', value: req });
    return this.#hdr({});
  }

  async roleGrantPermission(req: AuthRoleGrantPermissionRequest): Promise<AuthRoleGrantPermissionResponse> {
    await this.#o.propose({ $case: 'authRoleGrantPermission', value: req });
    return this.#hdr({});
  }

  async roleRevokePermission(req: AuthRoleRevokePermissionRequest): Promise<AuthRoleRevokePermissionResponse> {
    await this.#o.propose({ $case: 'authRoleRevokePermission', value: req });
    return this.#hdr({});
  }

  // Reads: etcd 3.4 sends these through raft; a ReadIndex round gives the same linearizable answer.

  async userGet(req: AuthUserGetRequest): Promise<AuthUserGetResponse> {
    const info = await this.#linearizableAs();
    // A user may read itself without the root role.
    if (!(info && info.username === req.name)) this.#o.store.checkAdmin(info);
    return this.#hdr({ roles: this.#o.store.userGet(req.name) });
  }

  async userList(): Promise<AuthUserListResponse> {
    this.#o.store.checkAdmin(await this.#linearizableAs());
    return this.#hdr({ users: this.#o.store.userList() });
  }

  async roleGet(req: AuthRoleGetRequest): Promise<AuthRoleGetResponse> {
    const info = await this.#linearizableAs();
    // A user may read the roles it holds.
    if (!(info && this.#o.store.hasRole(info.username, req.role))) this.#o.store.checkAdmin(info);
    return this.#hdr({ perm: this.#o.store.roleGet(req.role) });
  }

  async roleList(): Promise<AuthRoleListResponse> {
    this.#o.store.checkAdmin(await this.#linearizableAs());
    return this.#hdr({ roles: this.#o.store.roleList() });
  }

  async #linearizableAs(): Promise<AuthInfo | null> {
    const info = await this.authInfo();
    await this.#o.waitLinearizable();
    return info;
  }
}
