import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEtcdError, type ErrorKind } from '../../base/errors.js';
import { Permission_Type } from '../../gen/etcd/auth/authpb/auth.js';
import type { RaftRequest } from '../../gen/etcdts/internal.js';
import { AuthStore, type AuthBackend } from '../../auth/auth-store.js';
import { SimpleTokens } from '../../auth/tokens.js';
import { AuthApplier } from './auth-apply.js';

function memoryBackend(): AuthBackend {
  const data = new Map<string, Buffer>();
  return {
    get: (b, k) => data.get(`${b}/${k.toString('latin1')}`),
    put: (b, k, v) => void data.set(`${b}/${k.toString('latin1')}`, v),
    delete: (b, k) => void data.delete(`${b}/${k.toString('latin1')}`),
    forEach: (b, fn) => {
      for (const [key, v] of [...data].sort()) if (key.startsWith(`${b}/`)) fn(Buffer.from(key.slice(b.length + 1), 'latin1'), v);
    },
  };
}

const k = (s: string): Buffer => Buffer.from(s);

function setUp(): { store: AuthStore; applier: AuthApplier; leaseKeys: Map<bigint, string[]>; tokens: SimpleTokens } {
  const be = memoryBackend();
  const store = new AuthStore(() => be);
  const leaseKeys = new Map<bigint, string[]>();
  const tokens = new SimpleTokens({ ttlMs: 60_000, waitApplied: () => Promise.resolve() });
  const applier = new AuthApplier({ store, tokens, leases: { lookup: (id) => (leaseKeys.has(id) ? { keys: leaseKeys.get(id)! } : undefined) } });
  store.observe({ onEnabledChange: (e) => (e ? tokens.enable() : tokens.disable()), onUserInvalidated: (n) => tokens.invalidateUser(n) });
  return { store, applier, leaseKeys, tokens };
}

const req = (request: RaftRequest['request'], authUser = '', authRevision = 0n): RaftRequest =>
  ({ id: 1n, request, authUser, authRevision, deadlineUnixMs: 0n });

const refuses = (fn: () => void, kind: ErrorKind): void => assert.throws(fn, (e: unknown) => isEtcdError(e, kind), kind);

test('apply: the auth requests build the store; admin requests need root once enabled', () => {
  const { store, applier, tokens } = setUp();
  const apply = (r: RaftRequest, index = 1): unknown => {
    applier.gate(r);
    return applier.apply(r.request!, index)?.value;
  };
  apply(req({ $case: 'authUserAdd', value: { name: 'root', hashedPassword: k('h'), options: undefined } }));
  apply(req({ $case: 'authUserGrantRole', value: { user: 'root', role: 'root' } }));
  apply(req({ $case: 'authRoleAdd', value: { name: 'r' } }));
  apply(req({ $case: 'authRoleGrantPermission', value: { name: 'r', perm: { permType: Permission_Type.READWRITE, key: k('a'), rangeEnd: k('b') } } }));
  apply(req({ $case: 'authUserAdd', value: { name: 'alice', hashedPassword: k('h'), options: undefined } }));
  apply(req({ $case: 'authUserGrantRole', value: { user: 'alice', role: 'r' } }));
  apply(req({ $case: 'authEnable', value: {} }));
  assert.ok(store.enabled);
  const rev = BigInt(store.revision);
  refuses(() => applier.gate(req({ $case: 'authRoleAdd', value: { name: 'x' } }, 'alice', rev)), 'PermissionDenied');
  refuses(() => applier.gate(req({ $case: 'authRoleAdd', value: { name: 'x' } })), 'UserEmpty');
  applier.gate(req({ $case: 'authRoleAdd', value: { name: 'x' } }, 'root', rev));
  const applied = apply(req({ $case: 'authenticate', value: { name: 'alice', simpleToken: 'abcdefghijklmnop' } }), 77) as { token: string };
  assert.equal(applied.token, 'abcdefghijklmnop.77');
  assert.equal(tokens.size, 1);
  tokens.close();
});

test('apply: a permission revoked between proposal and apply refuses the write (stale auth revision)', () => {
  const { store, applier, tokens } = setUp();
  store.userAdd({ name: 'root', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('root', 'root');
  store.roleAdd('r');
  store.roleGrantPermission('r', { permType: Permission_Type.READWRITE, key: k('a'), rangeEnd: k('b') });
  store.userAdd({ name: 'alice', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('alice', 'r');
  store.enable();
  const proposedAt = BigInt(store.revision);
  const put = req({ $case: 'put', value: { key: k('a1'), value: k('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'alice', proposedAt);
  applier.gate(put);
  // The role loses its permission before the entry is applied.
  store.roleRevokePermission('r', { key: k('a'), rangeEnd: k('b') });
  refuses(() => applier.gate(put), 'AuthOldRevision');
  // Proposed after the change, with the new revision: denied on the permission itself.
  refuses(() => applier.gate({ ...put, authRevision: BigInt(store.revision) }), 'PermissionDenied');
  tokens.close();
});

test('apply: puts onto a lease holding keys the user may not write, and revoking it, are refused', () => {
  const { store, applier, leaseKeys, tokens } = setUp();
  store.userAdd({ name: 'root', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('root', 'root');
  store.roleAdd('r');
  store.roleGrantPermission('r', { permType: Permission_Type.READWRITE, key: k('a'), rangeEnd: k('b') });
  store.userAdd({ name: 'alice', hashedPassword: k('h'), options: undefined });
  store.userGrantRole('alice', 'r');
  store.enable();
  const rev = BigInt(store.revision);
  leaseKeys.set(5n, ['a1', 'zzz']);
  leaseKeys.set(6n, ['a2']);
  const put = (lease: bigint): RaftRequest => req({ $case: 'put', value: { key: k('a1'), value: k('v'), lease, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'alice', rev);
  refuses(() => applier.gate(put(5n)), 'PermissionDenied');
  applier.gate(put(6n));
  refuses(() => applier.gate(req({ $case: 'leaseRevoke', value: { ID: 5n } }, 'alice', rev)), 'PermissionDenied');
  applier.gate(req({ $case: 'leaseRevoke', value: { ID: 6n } }, 'alice', rev));
  applier.gate(req({ $case: 'leaseRevoke', value: { ID: 5n } }, 'root', rev));
  // Server-internal entries carry no user and are not auth requests: never refused.
  applier.gate(req({ $case: 'leaseCheckpoint', value: { checkpoints: [] } }));
  tokens.close();
});

test('as the applier chain\'s first step: auth requests are answered here, others go on, refusals stop the chain', () => {
  const { store, applier, tokens } = setUp();
  const stage = applier.asStage();
  let passed = 0;
  const next = (): { value: unknown } => {
    passed++;
    return { value: 'store' };
  };
  const put = req({ $case: 'put', value: { key: k('a'), value: k('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
  assert.deepEqual(stage.apply(put, next, 1), { value: 'store' });
  assert.equal(passed, 1, 'a put goes on to the stores');
  stage.apply(req({ $case: 'authUserAdd', value: { name: 'root', hashedPassword: k('h'), options: undefined } }), next, 2);
  stage.apply(req({ $case: 'authUserGrantRole', value: { user: 'root', role: 'root' } }), next, 3);
  stage.apply(req({ $case: 'authEnable', value: {} }), next, 4);
  assert.equal(passed, 1, 'auth requests are applied by the auth step alone');
  assert.ok(store.enabled);
  refuses(() => stage.apply(put, next, 5), 'UserEmpty');
  assert.equal(passed, 1, 'a refused request never reaches the stores');
  tokens.close();
});
