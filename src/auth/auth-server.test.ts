import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isEtcdError } from '../base/errors.js';
import { silentLogger } from '../base/logger.js';
import { requestContext, type RequestContext } from '../base/request-context.js';
import { AuthServer } from './auth-server.js';
import { AuthStore, type AuthBackend } from './auth-store.js';
import { SimpleTokens } from './tokens.js';

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

function setUp(clientCertAuth: boolean): { server: AuthServer; store: AuthStore; tokens: SimpleTokens } {
  const be = memoryBackend();
  const store = new AuthStore(() => be);
  const tokens = new SimpleTokens({ ttlMs: 60_000, waitApplied: () => Promise.resolve() });
  store.observe({ onEnabledChange: (e) => (e ? tokens.enable() : tokens.disable()), onUserInvalidated: (n) => tokens.invalidateUser(n) });
  store.userAdd({ name: 'root', hashedPassword: Buffer.from('h'), options: undefined });
  store.userGrantRole('root', 'root');
  store.userAdd({ name: 'alice', hashedPassword: Buffer.from('h'), options: undefined });
  store.enable();
  const server = new AuthServer({
    store, tokens, bcryptCost: 4, clientCertAuth,
    propose: () => Promise.reject(new Error('no raft here')), waitLinearizable: () => Promise.resolve(),
    header: () => ({ clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n }), log: silentLogger,
  });
  return { server, store, tokens };
}

test('credentials: a valid token names its user, a bad one is refused, none is no user', async () => {
  const { server, tokens } = setUp(false);
  const token = tokens.assignSimple('alice', { prefix: tokens.genTokenPrefix(), index: 9 });
  assert.deepEqual(await server.resolve({ token }), { username: 'alice', revision: 3 });
  await assert.rejects(server.resolve({ token: 'nope.1' }), (e: unknown) => isEtcdError(e, 'InvalidAuthToken'));
  assert.equal(await server.resolve({}), null);
  // The CN counts only with --client-cert-auth.
  assert.equal(await server.resolve({ commonName: 'alice' }), null);
  tokens.close();
});

test('credentials: with --client-cert-auth the certificate CN is the user when no token is given', async () => {
  const { server, tokens } = setUp(true);
  assert.deepEqual(await server.resolve({ commonName: 'alice' }), { username: 'alice', revision: 3 });
  const token = tokens.assignSimple('root', { prefix: tokens.genTokenPrefix(), index: 9 });
  assert.equal((await server.resolve({ token, commonName: 'alice' }))?.username, 'root', 'a token wins over the CN');
  tokens.close();
});

test('the server acting on its own (lease expiry) acts as root; a request context memoizes its user', async () => {
  const { server, tokens } = setUp(false);
  await requestContext.run({ deadlineMs: Infinity, internal: true }, async () => {
    assert.deepEqual(await server.stamp(), { authUser: 'root', authRevision: 3n });
  });
  const token = tokens.assignSimple('alice', { prefix: tokens.genTokenPrefix(), index: 9 });
  const ctx: RequestContext = { deadlineMs: Infinity, credentials: { token } };
  await requestContext.run(ctx, async () => {
    assert.deepEqual(await server.stamp(), { authUser: 'alice', authRevision: 3n });
  });
  assert.ok(ctx.resolvedAuth !== undefined, 'resolved once, kept in the request context');
  tokens.close();
});

test('a read whose auth store changed while it ran is refused as stale (etcd\'s doSerialize)', async () => {
  const { server, store, tokens } = setUp(false);
  const token = tokens.assignSimple('root', { prefix: tokens.genTokenPrefix(), index: 9 });
  await requestContext.run({ deadlineMs: Infinity, credentials: { token } }, async () => {
    const read = (): string => {
      store.roleAdd('meanwhile');
      return 'value';
    };
    await assert.rejects(server.guardRead(() => {}, read), (e: unknown) => isEtcdError(e, 'AuthOldRevision'));
  });
  tokens.close();
});
