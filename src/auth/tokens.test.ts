import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JwtTokens, parseAuthTokenFlag, parseGoDurationMs, SimpleTokens } from './tokens.js';

test('simple tokens: etcd\'s format, TTL from last use, invalidation, disable voids all', async () => {
  let now = 0;
  const t = new SimpleTokens({ ttlMs: 1000, now: () => now, waitApplied: () => Promise.resolve() });
  t.enable();
  const prefix = t.genTokenPrefix();
  assert.match(prefix, /^[a-zA-Z]{16}$/);
  const token = t.assignSimple('alice', { prefix: prefix, index: 42 });
  assert.equal(token, `${prefix}.42`);
  assert.deepEqual(await t.info(token, 7), { username: 'alice', revision: 7 });
  now = 900;
  assert.ok(await t.info(token, 7), 'used within the TTL');
  now = 1800;
  assert.ok(await t.info(token, 7), 'the TTL counts from the last use');
  now = 2801;
  assert.equal(await t.info(token, 7), null, 'expired');
  const other = t.assignSimple('bob', { prefix: t.genTokenPrefix(), index: 43 });
  assert.equal(await t.info('garbage', 7), null);
  assert.equal(await t.info(`${prefix}.x`, 7), null);
  t.invalidateUser('bob');
  assert.equal(await t.info(other, 7), null);
  const third = t.assignSimple('carol', { prefix: t.genTokenPrefix(), index: 44 });
  t.disable();
  assert.equal(await t.info(third, 7), null);
  t.close();
});

test('simple tokens: a token from a later index waits for this member to apply it, else is invalid', async () => {
  const t = new SimpleTokens({ ttlMs: 1000, waitApplied: () => Promise.reject(new Error('timeout')) });
  t.enable();
  assert.equal(await t.info('abcdefghijklmnop.99', 1), null);
  t.close();
});

test('JWT: signed claims verified; wrong key, other algorithm and alg none refused', async () => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const t = new JwtTokens({ algorithm: 'RS256', verifyKey: keys.publicKey, signKey: keys.privateKey, ttlMs: 60_000 });
  const token = await t.sign('alice', 5);
  assert.deepEqual(await t.info(token), { username: 'alice', revision: 5 });
  const forged = await new JwtTokens({ algorithm: 'RS256', verifyKey: other.publicKey, signKey: other.privateKey, ttlMs: 60_000 }).sign('root', 5);
  assert.equal(await t.info(forged), null);
  const [, payload] = token.split('.');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
  assert.equal(await t.info(none), null);
  const expired = await new JwtTokens({ algorithm: 'RS256', verifyKey: keys.publicKey, signKey: keys.privateKey, ttlMs: -10_000 }).sign('alice', 5);
  assert.equal(await t.info(expired), null);
});

test('--auth-token parsing: simple, jwt with key files, errors; Go durations', () => {
  assert.deepEqual(parseAuthTokenFlag('simple'), { kind: 'simple' });
  const dir = mkdtempSync(join(tmpdir(), 'jwt-'));
  try {
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'pub.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'priv.pem'), keys.privateKey.export({ type: 'sec1', format: 'pem' }));
    const c = parseAuthTokenFlag(`jwt,pub-key=${join(dir, 'pub.pem')},priv-key=${join(dir, 'priv.pem')},sign-method=ES256,ttl=10m`);
    assert.equal(c.kind, 'jwt');
    if (c.kind === 'jwt') {
      assert.equal(c.options.algorithm, 'ES256');
      assert.equal(c.options.ttlMs, 600_000);
      assert.ok(c.options.signKey);
    }
    assert.throws(() => parseAuthTokenFlag(`jwt,pub-key=${join(dir, 'pub.pem')},sign-method=none`), /invalid auth signature method/);
    assert.throws(() => parseAuthTokenFlag('jwt,sign-method=RS256'), /missing key data/);
    assert.throws(() => parseAuthTokenFlag('opaque'), /unknown token type/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(parseGoDurationMs('1h30m'), 5_400_000);
  assert.equal(parseGoDurationMs('300s'), 300_000);
  assert.throws(() => parseGoDurationMs('5 minutes'));
});
