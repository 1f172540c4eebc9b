/**
 * The auth store: users, roles and their key permissions, the enabled flag and the auth revision, kept
 * in the backend's "auth", "authUsers" and "authRoles" buckets with etcd's encodings (authpb.User and
 * authpb.Role under the name; "authEnabled" and "authRevision" in "auth"), so they are written in the
 * same apply batches as the consistent index and travel inside snapshots.
 *
 * Every mutation runs on the apply path, which is synchronous and deterministic: passwords arrive
 * already hashed. Checking a password (bcrypt on the libuv threadpool) is the API member's business.
 */
import { EtcdError } from '../base/errors.js';
import { Permission, Role, User, type UserAddOptions } from '../gen/etcd/auth/authpb/auth.js';
import { bcryptCompare, bcryptHash } from './bcrypt-pool.js';
import { mergePerms, permits, type KeyRange, type PermKind, type UnifiedPerms } from './range-perms.js';

export type AuthBucket = 'auth' | 'authUsers' | 'authRoles';

/** Where the store lives: the backend's auth buckets; writes join the current apply batch. */
export interface AuthBackend {
  get(bucket: AuthBucket, key: Buffer): Buffer | undefined;
  put(bucket: AuthBucket, key: Buffer, value: Buffer): void;
  delete(bucket: AuthBucket, key: Buffer): void;
  forEach(bucket: AuthBucket, fn: (key: Buffer, value: Buffer) => void): void;
}

/** Who a request comes from: a user name and the auth revision its credentials were checked at. */
export interface AuthInfo {
  readonly username: string;
  readonly revision: number;
}

/** Told of changes the token provider must follow. */
export interface AuthStoreObserver {
  onEnabledChange(enabled: boolean): void;
  /** The user was deleted or changed password: its tokens are void. */
  onUserInvalidated(name: string): void;
}

export const rootUser = 'root';
export const rootRole = 'root';
const enabledKey = Buffer.from('authEnabled');
const revisionKey = Buffer.from('authRevision');

const noRangeEnd = Buffer.alloc(0);
const byName = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export class AuthStore {
  readonly #backend: () => AuthBackend;
  readonly #users = new Map<string, User>();
  readonly #roles = new Map<string, Role>();
  /** Merged permissions per user, rebuilt lazily after any change (etcd's range permission cache). */
  readonly #permCache = new Map<string, UnifiedPerms>();
  #enabled = false;
  #revision = 0;
  #observer: AuthStoreObserver | null = null;

  /** `backend` is a getter: the backend object is replaced when a leader's snapshot is installed. */
  constructor(backend: () => AuthBackend) {
    this.#backend = backend;
    this.reload();
  }

  observe(observer: AuthStoreObserver): void {
    this.#observer = observer;
  }

  /** Re-reads everything from the backend (at start, and after a snapshot replaced it). */
  reload(): void {
    const be = this.#backend();
    const wasEnabled = this.#enabled;
    this.#users.clear();
    this.#roles.clear();
    this.#permCache.clear();
    be.forEach('authUsers', (k, v) => void this.#users.set(k.toString('utf8'), User.decode(v)));
    be.forEach('authRoles', (k, v) => void this.#roles.set(k.toString('utf8'), Role.decode(v)));
    const flag = be.get('auth', enabledKey);
    this.#enabled = flag !== undefined && flag.length === 1 && flag[0] === 1;
    const rev = be.get('auth', revisionKey);
    this.#revision = rev && rev.length === 8 ? Number(rev.readBigUInt64BE()) : 0;
    if (wasEnabled !== this.#enabled) this.#observer?.onEnabledChange(this.#enabled);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  get revision(): number {
    return this.#revision;
  }

  // ------------------------------------------------------------------------------ mutations (apply)

  enable(): void {
    if (this.#enabled) return;
    const root = this.#users.get(rootUser);
    if (!root) throw new EtcdError('RootUserNotExist');
    if (!hasRootRole(root)) throw new EtcdError('RootRoleNotExist');
    this.#backend().put('auth', enabledKey, Buffer.from([1]));
    this.#enabled = true;
    this.#permCache.clear();
    this.#observer?.onEnabledChange(true);
  }

  disable(): void {
    if (!this.#enabled) return;
    this.#backend().put('auth', enabledKey, Buffer.from([0]));
    this.#commitRevision();
    this.#enabled = false;
    this.#observer?.onEnabledChange(false);
  }

  userAdd(o: { name: string; hashedPassword: Buffer; options: UserAddOptions | undefined }): void {
    if (o.name.length === 0) throw new EtcdError('UserEmpty');
    if (this.#users.has(o.name)) throw new EtcdError('UserAlreadyExist');
    const noPassword = o.options?.noPassword ?? false;
    this.#putUser({
      name: Buffer.from(o.name), password: noPassword ? Buffer.alloc(0) : o.hashedPassword, roles: [],
      options: { noPassword },
    });
    this.#changed();
  }

  userDelete(name: string): void {
    if (this.#enabled && name === rootUser) throw new EtcdError('InvalidAuthMgmt');
    if (!this.#users.has(name)) throw new EtcdError('UserNotFound');
    this.#users.delete(name);
    this.#backend().delete('authUsers', Buffer.from(name));
    this.#changed();
    this.#observer?.onUserInvalidated(name);
  }

  userChangePassword(name: string, hashedPassword: Buffer): void {
    const user = this.#users.get(name);
    if (!user) throw new EtcdError('UserNotFound');
    this.#putUser({ ...user, password: hashedPassword });
    this.#changed();
    this.#observer?.onUserInvalidated(name);
  }

  userGrantRole(name: string, role: string): void {
    const user = this.#users.get(name);
    if (!user) throw new EtcdError('UserNotFound');
    // etcd lets the root role be granted before anyone created it.
    if (role !== rootRole && !this.#roles.has(role)) throw new EtcdError('RoleNotFound');
    if (user.roles.includes(role)) return;
    this.#putUser({ ...user, roles: [...user.roles, role].sort() });
    this.#changed();
  }

  userRevokeRole(name: string, role: string): void {
    if (this.#enabled && name === rootUser && role === rootRole) throw new EtcdError('InvalidAuthMgmt');
    const user = this.#users.get(name);
    if (!user) throw new EtcdError('UserNotFound');
    if (!user.roles.includes(role)) throw new EtcdError('RoleNotGranted');
    this.#putUser({ ...user, roles: user.roles.filter((r) => r !== role) });
    this.#changed();
  }

  roleAdd(name: string): void {
    if (name.length === 0) throw new EtcdError('RoleEmpty');
    if (this.#roles.has(name)) throw new EtcdError('RoleAlreadyExist');
    this.#putRole({ name: Buffer.from(name), keyPermission: [] });
    this.#changed();
  }

  roleDelete(name: string): void {
    if (this.#enabled && name === rootRole) throw new EtcdError('InvalidAuthMgmt');
    if (!this.#roles.has(name)) throw new EtcdError('RoleNotFound');
    this.#roles.delete(name);
    this.#backend().delete('authRoles', Buffer.from(name));
    for (const user of [...this.#users.values()]) {
      if (user.roles.includes(name)) this.#putUser({ ...user, roles: user.roles.filter((r) => r !== name) });
    }
    this.#changed();
  }

  roleGrantPermission(name: string, perm: Permission): void {
    const role = this.#roles.get(name);
    if (!role) throw new EtcdError('RoleNotFound');
    const same = (p: Permission): boolean => p.key.equals(perm.key) && p.rangeEnd.equals(perm.rangeEnd);
    const fresh: Permission = { permType: perm.permType, key: Buffer.from(perm.key), rangeEnd: Buffer.from(perm.rangeEnd) };
    const perms = role.keyPermission.some(same)
      ? role.keyPermission.map((p) => (same(p) ? { ...p, permType: perm.permType } : p))
      : [...role.keyPermission, fresh].sort((a, b) => Buffer.compare(a.key, b.key));
    this.#putRole({ ...role, keyPermission: perms });
    this.#changed();
  }

  roleRevokePermission(name: string, range: KeyRange): void {
    const role = this.#roles.get(name);
    if (!role) throw new EtcdError('RoleNotFound');
    const kept = role.keyPermission.filter((p) => !(p.key.equals(range.key) && p.rangeEnd.equals(range.rangeEnd)));
    if (kept.length === role.keyPermission.length) throw new EtcdError('PermissionNotGranted');
    this.#putRole({ ...role, keyPermission: kept });
    this.#changed();
  }

  /** The apply half of Authenticate: the password was checked by the proposer. */
  authenticateApply(name: string): void {
    if (!this.#enabled) throw new EtcdError('AuthNotEnabled');
    const user = this.#users.get(name);
    if (!user || user.options?.noPassword) throw new EtcdError('AuthFailed');
  }

  #putUser(user: User): void {
    const name = user.name.toString('utf8');
    this.#users.set(name, user);
    this.#backend().put('authUsers', Buffer.from(name), Buffer.from(User.encode(user).finish()));
  }

  #putRole(role: Role): void {
    const name = role.name.toString('utf8');
    this.#roles.set(name, role);
    this.#backend().put('authRoles', Buffer.from(name), Buffer.from(Role.encode(role).finish()));
  }

  #changed(): void {
    this.#commitRevision();
    this.#permCache.clear();
  }

  #commitRevision(): void {
    this.#revision += 1;
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(this.#revision));
    this.#backend().put('auth', revisionKey, b);
  }

  // ------------------------------------------------------------------------------------------ reads

  userGet(name: string): string[] {
    const user = this.#users.get(name);
    if (!user) throw new EtcdError('UserNotFound');
    return [...user.roles];
  }

  userList(): string[] {
    return [...this.#users.keys()].sort(byName);
  }

  roleGet(name: string): Permission[] {
    const role = this.#roles.get(name);
    if (!role) throw new EtcdError('RoleNotFound');
    return role.keyPermission.map((p) => ({ ...p }));
  }

  roleList(): string[] {
    return [...this.#roles.keys()].sort(byName);
  }

  hasRole(user: string, role: string): boolean {
    return this.#users.get(user)?.roles.includes(role) ?? false;
  }

  userExists(name: string): boolean {
    return this.#users.has(name);
  }

  // ---------------------------------------------------------------------------------------- checks

  /**
   * etcd's isOpPermitted: nothing to check with auth off; a request without credentials is refused as
   * "user name is empty"; credentials checked before the last auth change are stale.
   */
  checkOp(info: AuthInfo | null, op: KeyRange & { readonly kind: PermKind }): void {
    if (!this.#enabled) return;
    if (!info || info.revision === 0) throw new EtcdError('UserEmpty');
    if (info.revision < this.#revision) throw new EtcdError('AuthOldRevision');
    const user = this.#users.get(info.username);
    if (!user) throw new EtcdError('PermissionDenied');
    if (hasRootRole(user)) return;
    if (!permits(this.#permsOf(info.username, user), op)) throw new EtcdError('PermissionDenied');
  }

  checkRange(info: AuthInfo | null, range: KeyRange): void {
    this.checkOp(info, { kind: 'read', key: range.key, rangeEnd: range.rangeEnd });
  }

  checkPut(info: AuthInfo | null, key: Buffer): void {
    this.checkOp(info, { kind: 'write', key, rangeEnd: noRangeEnd });
  }

  checkDeleteRange(info: AuthInfo | null, range: KeyRange): void {
    this.checkOp(info, { kind: 'write', key: range.key, rangeEnd: range.rangeEnd });
  }

  /** etcd's IsAdminPermitted: the root role is needed; no revision check. */
  checkAdmin(info: AuthInfo | null): void {
    if (!this.#enabled) return;
    if (!info || info.username === '') throw new EtcdError('UserEmpty');
    const user = this.#users.get(info.username);
    if (!user) throw new EtcdError('UserNotFound');
    if (!hasRootRole(user)) throw new EtcdError('PermissionDenied');
  }

  #permsOf(name: string, user: User): UnifiedPerms {
    let perms = this.#permCache.get(name);
    if (!perms) {
      const all = user.roles.flatMap((r) => this.#roles.get(r)?.keyPermission ?? []);
      perms = mergePerms(all);
      this.#permCache.set(name, perms);
    }
    return perms;
  }

  // ------------------------------------------------------------------------------ passwords (API side)

  /**
   * Checks a password against the stored bcrypt hash on the libuv threadpool, so concurrent checks use
   * every core and the event loop keeps serving. Resolves with the auth revision the check saw.
   */
  async checkPassword(name: string, password: string): Promise<number> {
    if (!this.#enabled) throw new EtcdError('AuthNotEnabled');
    const user = this.#users.get(name);
    if (!user) throw new EtcdError('AuthFailed');
    if (user.options?.noPassword) throw new EtcdError('NoPasswordUser');
    const revision = this.#revision;
    const ok = await bcryptCompare(password, user.password.toString('latin1'));
    if (!ok) throw new EtcdError('AuthFailed');
    return revision;
  }
}

function hasRootRole(user: User): boolean {
  return user.roles.includes(rootRole);
}

/** bcrypt with etcd's "$2a$" prefix, so a backend written here reads the same in etcd. */
export async function hashPassword(password: string, cost: number): Promise<Buffer> {
  return Buffer.from(await bcryptHash(password, cost), 'latin1');
}
