import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEtcdError, type ErrorKind } from '../base/errors.js';
import { Permission_Type, Role, User } from '../gen/etcd/auth/authpb/auth.js';
import { AuthStore, hashPassword, type AuthBackend, type AuthBucket } from './auth-store.js';

/** The auth buckets in memory, iterated in key order as the backend does. */
function memoryBackend(): AuthBackend & { data: Map<string, Map<string, Buffer>> } {
  const data = new Map<string, Map<string, Buffer>>();
  const bucket = (b: AuthBucket): Map<string, Buffer> => {
    let m = data.get(b);
    if (!m) data.set(b, (m = new Map()));
    return m;
  };
  return {
    data,
    get: (b, k) => bucket(b).get(k.toString('latin1')),
    put: (b, k, v) => void bucket(b).set(k.toString('latin1'), Buffer.from(v)),
    delete: (b, k) => void bucket(b).delete(k.toString('latin1')),
    forEach: (b, fn) => {
      for (const k of [...bucket(b).keys()].sort()) fn(Buffer.from(k, 'latin1'), bucket(b).get(k)!);
    },
  };
}

const throwsKind = (fn: () => unknown, kind: ErrorKind): void => {
  assert.throws(fn, (e: unknown) => isEtcdError(e, kind), `expected ${kind}`);
};
const k = (s: string): Buffer => Buffer.from(s);
const none = Buffer.alloc(0);

function withRootAndAlice(): { store: AuthStore; be: ReturnType<typeof memoryBackend> } {
  const be = memoryBackend();
  const store = new AuthStore(() => be);
  store.userAdd({ name: 'root', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('root', 'root');
  store.roleAdd('r');
  store.roleGrantPermission('r', { permType: Permission_Type.READWRITE, key: k('foo'), rangeEnd: k('fop') });
  store.userAdd({ name: 'alice', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('alice', 'r');
  store.enable();
  return { store, be };
}

test('enable needs a root user holding the root role; the revision counts every change', () => {
  const store = new AuthStore(() => memoryBackend());
  throwsKind(() => store.enable(), 'RootUserNotExist');
  store.userAdd({ name: 'root', hashedPassword: k('h'), options: undefined });
  throwsKind(() => store.enable(), 'RootRoleNotExist');
  store.userGrantRole('root', 'root');
  assert.equal(store.revision, 2);
  store.enable();
  assert.ok(store.enabled);
  assert.equal(store.revision, 2, 'enabling does not move the revision (etcd)');
  store.disable();
  assert.equal(store.revision, 3);
});

test('user and role management errors are etcd\'s', () => {
  const { store } = withRootAndAlice();
  throwsKind(() => store.userAdd({ name: '', hashedPassword: k('h'), options: undefined }), 'UserEmpty');
  throwsKind(() => store.userAdd({ name: 'alice', hashedPassword: k('h'), options: undefined }), 'UserAlreadyExist');
  throwsKind(() => store.userDelete('nobody'), 'UserNotFound');
  throwsKind(() => store.userDelete('root'), 'InvalidAuthMgmt');
  throwsKind(() => store.userRevokeRole('root', 'root'), 'InvalidAuthMgmt');
  throwsKind(() => store.roleDelete('root'), 'InvalidAuthMgmt');
  throwsKind(() => store.userGrantRole('alice', 'nosuch'), 'RoleNotFound');
  throwsKind(() => store.userRevokeRole('alice', 'nosuch'), 'RoleNotGranted');
  throwsKind(() => store.roleAdd(''), 'RoleEmpty');
  throwsKind(() => store.roleAdd('r'), 'RoleAlreadyExist');
  throwsKind(() => store.roleRevokePermission('r', { key: k('foo'), rangeEnd: none }), 'PermissionNotGranted');
  throwsKind(() => store.roleGet('nosuch'), 'RoleNotFound');
  throwsKind(() => store.authenticateApply('nobody'), 'AuthFailed');
});

test('permission checks: empty user, stale revision, unknown user, root, range cache follows changes', () => {
  const { store } = withRootAndAlice();
  const rev = store.revision;
  const alice = { username: 'alice', revision: rev };
  throwsKind(() => store.checkRange(null, { key: k('foo'), rangeEnd: none }), 'UserEmpty');
  throwsKind(() => store.checkRange({ username: 'alice', revision: rev - 1 }, { key: k('foo'), rangeEnd: none }), 'AuthOldRevision');
  throwsKind(() => store.checkRange({ username: 'ghost', revision: rev }, { key: k('foo'), rangeEnd: none }), 'PermissionDenied');
  store.checkRange({ username: 'root', revision: rev }, { key: k('anything'), rangeEnd: k('\0') });
  store.checkRange(alice, { key: k('foo'), rangeEnd: k('fop') });
  store.checkPut(alice, k('foo/x'));
  throwsKind(() => store.checkPut(alice, k('fop')), 'PermissionDenied');
  throwsKind(() => store.checkAdmin(alice), 'PermissionDenied');
  throwsKind(() => store.checkAdmin(null), 'UserEmpty');
  throwsKind(() => store.checkAdmin({ username: 'ghost', revision: 0 }), 'UserNotFound');
  // Downgrade to read-only: the cached permissions must not survive the change.
  store.roleGrantPermission('r', { permType: Permission_Type.READ, key: k('foo'), rangeEnd: k('fop') });
  const now = { username: 'alice', revision: store.revision };
  store.checkRange(now, { key: k('foo'), rangeEnd: none });
  throwsKind(() => store.checkPut(now, k('foo')), 'PermissionDenied');
  store.roleDelete('r');
  assert.deepEqual(store.userGet('alice'), []);
  throwsKind(() => store.checkRange({ username: 'alice', revision: store.revision }, { key: k('foo'), rangeEnd: none }), 'PermissionDenied');
});

test('kept in the auth buckets with etcd\'s encodings; a new store over the same buckets sees the same', () => {
  const { store, be } = withRootAndAlice();
  const users = be.data.get('authUsers')!;
  const alice = User.decode(users.get('alice')!);
  assert.deepEqual(alice.roles, ['r']);
  assert.equal(alice.name.toString(), 'alice');
  const role = Role.decode(be.data.get('authRoles')!.get('r')!);
  assert.equal(role.keyPermission[0]?.key.toString(), 'foo');
  assert.deepEqual([...be.data.get('auth')!.get('authEnabled')!], [1]);
  assert.equal(be.data.get('auth')!.get('authRevision')!.readBigUInt64BE(), BigInt(store.revision));
  const again = new AuthStore(() => be);
  assert.ok(again.enabled);
  assert.equal(again.revision, store.revision);
  assert.deepEqual(again.userList(), ['alice', 'root']);
  assert.deepEqual(again.roleList(), ['r']);
});

test('permissions of a role are kept sorted by key; granting the same range again only changes its type', () => {
  const { store } = withRootAndAlice();
  store.roleGrantPermission('r', { permType: Permission_Type.READ, key: k('a'), rangeEnd: none });
  store.roleGrantPermission('r', { permType: Permission_Type.WRITE, key: k('foo'), rangeEnd: k('fop') });
  assert.deepEqual(store.roleGet('r').map((p) => [p.key.toString(), p.permType]), [['a', Permission_Type.READ], ['foo', Permission_Type.WRITE]]);
});

test('passwords: bcrypt with etcd\'s $2a$ prefix; checked on the threadpool; no-password users cannot log in', async () => {
  const be = memoryBackend();
  const store = new AuthStore(() => be);
  const hash = await hashPassword('secret', 4);
  assert.match(hash.toString(), /^\$2a\$04\$/);
  store.userAdd({ name: 'root', hashedPassword: hash, options: undefined });
  store.userGrantRole('root', 'root');
  store.userAdd({ name: 'cn', hashedPassword: none, options: { noPassword: true } });
  await assert.rejects(store.checkPassword('root', 'secret'), (e: unknown) => isEtcdError(e, 'AuthNotEnabled'));
  store.enable();
  assert.equal(await store.checkPassword('root', 'secret'), store.revision);
  await assert.rejects(store.checkPassword('root', 'wrong'), (e: unknown) => isEtcdError(e, 'AuthFailed'));
  await assert.rejects(store.checkPassword('ghost', 'x'), (e: unknown) => isEtcdError(e, 'AuthFailed'));
  await assert.rejects(store.checkPassword('cn', ''), (e: unknown) => isEtcdError(e, 'NoPasswordUser'));
  throwsKind(() => store.authenticateApply('cn'), 'AuthFailed');
});
