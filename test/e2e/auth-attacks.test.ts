/**
 * Attacks on authentication and RBAC, each its own test, run against every target (real etcd first)
 * unless noted: each must be refused with etcd's error, change nothing, and leave the server serving.
 *
 * Members run with --bcrypt-cost=4 and --auth-token-ttl=1 (simple tokens), and a second member per
 * target with JWT tokens (RS256, keys generated for the run).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { SignJWT } from 'jose';
import { Member, targetsFromEnv, waitFor, withLogsOnFailure, type Target } from './harness.js';
import { b, Conn, failure } from './auth-tools.js';
import { WatchRequest, type WatchResponse } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Permission_Type as PermType } from '../../src/gen/etcd/auth/authpb/auth.js';
const PERMISSION_DENIED = '7 etcdserver: permission denied';
const INVALID_TOKEN = '16 etcdserver: invalid auth token';
const AUTH_FAILED = '3 etcdserver: authentication failed, invalid user ID or password';

interface Side {
  readonly target: Target;
  readonly member: Member;
  readonly conn: Conn;
  rootToken: string;
}

const targets = targetsFromEnv();
const keyDir = mkdtempSync(join(tmpdir(), 'auth-attacks-keys-'));
const simple: Side[] = [];
const jwt: Side[] = [];

function jwtFlag(): string {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(keyDir, 'pub.pem'), keys.publicKey.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(keyDir, 'priv.pem'), keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return `--auth-token=jwt,pub-key=${join(keyDir, 'pub.pem')},priv-key=${join(keyDir, 'priv.pem')},sign-method=RS256,ttl=10m`;
}

async function login(conn: Conn, name: string, password: string): Promise<string> {
  return (await conn.call<{ token: string }>(conn.auth, 'authenticate', { name, password })).token;
}

/** root (root role), role `pub` with readwrite on prefix pub/, user alice holding `pub`; auth enabled. */
async function setUp(target: Target, flags: string[]): Promise<Side> {
  const member = await Member.start({ target, flags: ['--bcrypt-cost=4', ...flags] });
  const conn = new Conn(member.endpoint);
  const a = conn.auth;
  await conn.call(a, 'userAdd', { name: 'root', password: 'rootpw' });
  await conn.call(a, 'userGrantRole', { user: 'root', role: 'root' });
  await conn.call(a, 'roleAdd', { name: 'pub' });
  await conn.call(a, 'roleGrantPermission', { name: 'pub', perm: { permType: PermType.READWRITE, key: b('pub/'), rangeEnd: b('pub0') } });
  for (const u of ['alice', 'bob']) {
    await conn.call(a, 'userAdd', { name: u, password: `${u}pw` });
    await conn.call(a, 'userGrantRole', { user: u, role: 'pub' });
  }
  await conn.call(a, 'authEnable', {});
  member.readyUser = 'root:rootpw';
  const side: Side = { target, member, conn, rootToken: await login(conn, 'root', 'rootpw') };
  await conn.call(conn.kv, 'put', { key: b('secret/x'), value: b('s0') }, side.rootToken);
  return side;
}

before(async () => {
  for (const target of targets) {
    simple.push(await setUp(target, ['--auth-token-ttl=1']));
    jwt.push(await setUp(target, [jwtFlag()]));
  }
});

after(async () => {
  for (const s of [...simple, ...jwt]) s.conn.close();
  await Promise.all([...simple, ...jwt].map((s) => s.member.destroy()));
  rmSync(keyDir, { recursive: true, force: true });
});

/** Root can still write and read: the server keeps serving after the attack. */
async function assertServing(side: Side): Promise<void> {
  const token = await login(side.conn, 'root', 'rootpw');
  await side.conn.call(side.conn.kv, 'put', { key: b('alive'), value: b('yes') }, token);
  const res = await side.conn.call<{ kvs: Array<{ value: Buffer }> }>(side.conn.kv, 'range', { key: b('alive') }, token);
  assert.equal(res.kvs[0]?.value.toString(), 'yes');
}

async function secretValue(side: Side): Promise<string> {
  const token = await login(side.conn, 'root', 'rootpw');
  const res = await side.conn.call<{ kvs: Array<{ value: Buffer }> }>(side.conn.kv, 'range', { key: b('secret/x') }, token);
  return res.kvs[0]?.value.toString() ?? '<none>';
}

function eachSide(name: string, sides: () => Side[], body: (side: Side) => Promise<void>): void {
  test(name, async () => {
    for (const side of sides()) {
      await withLogsOnFailure([side.member], async () => {
        await body(side);
        await assertServing(side);
      }).catch((e: unknown) => {
        throw new Error(`[${side.target.label}] ${(e as Error).message}`, { cause: e });
      });
    }
  });
}

eachSide('wrong password, unknown user: refused with etcd\'s error, no token', () => simple, async (side) => {
  assert.equal(await failure(login(side.conn, 'alice', 'wrong')), AUTH_FAILED);
  assert.equal(await failure(login(side.conn, 'nobody', 'x')), AUTH_FAILED);
  assert.equal(await failure(login(side.conn, 'alice', '')), AUTH_FAILED);
});

eachSide('expired simple token (--auth-token-ttl=1) is refused', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  await side.conn.call(side.conn.kv, 'range', { key: b('pub/a') }, token);
  const usedAt = Date.now();
  // The token must not be used while it ages (a use renews it): wait out TTL + etcd's 1 s sweep + margin.
  await waitFor(() => Date.now() - usedAt > 3000, { timeoutMs: 10_000, what: 'the token TTL to pass' });
  assert.equal(await failure(side.conn.call(side.conn.kv, 'range', { key: b('pub/a') }, token)), INVALID_TOKEN);
});

eachSide('forged simple tokens are refused', () => simple, async (side) => {
  // (A token naming a future index makes etcd wait for it until the client's deadline: not included.)
  for (const forged of ['abcdefghijklmnop.5', 'root', 'abcdefghijklmnop.x', '', '..']) {
    assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('pwned') }, forged)), INVALID_TOKEN, forged);
  }
  assert.equal(await secretValue(side), 's0');
});

eachSide('JWT signed with another key, with "alg: none", or HS256 with the public key: refused', () => jwt, async (side) => {
  const good = await login(side.conn, 'alice', 'alicepw');
  await side.conn.call(side.conn.kv, 'range', { key: b('pub/a') }, good);
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const exp = Math.floor(Date.now() / 1000) + 600;
  const wrongKey = await new SignJWT({ username: 'root', revision: 1e6 }).setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setExpirationTime(exp).sign(other.privateKey);
  const payload = Buffer.from(JSON.stringify({ username: 'root', revision: 1e6, exp })).toString('base64url');
  const algNone = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`;
  const [header, , signature] = good.split('.');
  const tampered = `${header}.${payload}.${signature}`;
  for (const forged of [wrongKey, algNone, tampered]) {
    assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('pwned') }, forged)), INVALID_TOKEN);
  }
  assert.equal(await secretValue(side), 's0');
});

eachSide('the token of a deleted user no longer works', () => simple, async (side) => {
  const token = await login(side.conn, 'bob', 'bobpw');
  await side.conn.call(side.conn.kv, 'put', { key: b('pub/bob'), value: b('1') }, token);
  await side.conn.call(side.conn.auth, 'userDelete', { name: 'bob' }, side.rootToken = await login(side.conn, 'root', 'rootpw'));
  assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('pub/bob'), value: b('2') }, token)), INVALID_TOKEN);
});

eachSide('a non-root user cannot grant itself roles, add users or change permissions', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  const a = side.conn.auth;
  assert.equal(await failure(side.conn.call(a, 'userGrantRole', { user: 'alice', role: 'root' }, token)), PERMISSION_DENIED);
  assert.equal(await failure(side.conn.call(a, 'roleGrantPermission', { name: 'pub', perm: { permType: PermType.READWRITE, key: b('\0'), rangeEnd: b('\0') } }, token)), PERMISSION_DENIED);
  assert.equal(await failure(side.conn.call(a, 'userAdd', { name: 'mallory', password: 'm' }, token)), PERMISSION_DENIED);
  assert.equal(await failure(side.conn.call(a, 'authDisable', {}, token)), PERMISSION_DENIED);
  assert.equal(await failure(side.conn.call(a, 'userChangePassword', { name: 'root', password: 'mine' }, token)), PERMISSION_DENIED);
  const root = await login(side.conn, 'root', 'rootpw');
  const roles = await side.conn.call<{ roles: string[] }>(a, 'userGet', { name: 'alice' }, root);
  assert.deepEqual(roles.roles, ['pub']);
  const perms = await side.conn.call<{ perm: unknown[] }>(a, 'roleGet', { role: 'pub' }, root);
  assert.equal(perms.perm.length, 1);
});

eachSide('txn touching a forbidden key in any branch or compare is refused and changes nothing', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  const put = (key: string): unknown => ({ request: { $case: 'requestPut', value: { key: b(key), value: b('pwned') } } });
  const cmp = (key: string): unknown => ({ key: b(key), target: 3, result: 0, targetUnion: { $case: 'value', value: b('x') } });
  const cases = [
    { compare: [cmp('pub/a')], success: [put('pub/a')], failure: [put('secret/x')] },
    { compare: [cmp('secret/x')], success: [put('pub/a')], failure: [] },
    { compare: [], success: [put('pub/a'), put('secret/x')], failure: [] },
    { compare: [], success: [{ request: { $case: 'requestDeleteRange', value: { key: b('pub/'), rangeEnd: b('\0') } } }], failure: [] },
    { compare: [], success: [{ request: { $case: 'requestRange', value: { key: b('secret/x') } } }], failure: [] },
  ];
  for (const txn of cases) assert.equal(await failure(side.conn.call(side.conn.kv, 'txn', txn, token)), PERMISSION_DENIED);
  const res = await side.conn.call<{ kvs: unknown[] }>(side.conn.kv, 'range', { key: b('pub/a') }, token);
  assert.equal(res.kvs.length, 0, 'the allowed branch did not run either');
  assert.equal(await secretValue(side), 's0');
});

test('nested txn with a forbidden put is refused (ours; etcd 3.4 does not check nested txns)', async () => {
  for (const side of simple.filter((s) => s.target.name === 'ours')) {
    const token = await login(side.conn, 'alice', 'alicepw');
    const inner = { compare: [], success: [{ request: { $case: 'requestPut', value: { key: b('secret/x'), value: b('pwned') } } }], failure: [] };
    const txn = { compare: [], success: [{ request: { $case: 'requestTxn', value: inner } }], failure: [] };
    assert.equal(await failure(side.conn.call(side.conn.kv, 'txn', txn, token)), PERMISSION_DENIED);
    assert.equal(await secretValue(side), 's0');
    await assertServing(side);
  }
});

eachSide('range_end tricks cannot widen a prefix permission', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  const kv = side.conn.kv;
  await side.conn.call(kv, 'put', { key: b('pub/ok'), value: b('1') }, token);
  const ranges: Array<[string, string]> = [['pub/', '\0'], ['pub/', 'zzz'], ['pub/', 'pub0\0'], ['pua', 'pub0'], ['\0', '\0'], ['pub/z', 'secret0'], ['pub', 'pub0']];
  for (const [key, rangeEnd] of ranges) {
    assert.equal(await failure(side.conn.call(kv, 'range', { key: b(key), rangeEnd: b(rangeEnd) }, token)), PERMISSION_DENIED, `range ${JSON.stringify([key, rangeEnd])}`);
    assert.equal(await failure(side.conn.call(kv, 'deleteRange', { key: b(key), rangeEnd: b(rangeEnd) }, token)), PERMISSION_DENIED, `delete ${JSON.stringify([key, rangeEnd])}`);
  }
  assert.equal(await failure(side.conn.call(kv, 'put', { key: b('pub0'), value: b('x') }, token)), PERMISSION_DENIED);
  const inside = await side.conn.call<{ kvs: unknown[] }>(kv, 'range', { key: b('pub/'), rangeEnd: b('pub0') }, token);
  assert.ok(inside.kvs.length >= 1);
  assert.equal(await secretValue(side), 's0');
});

eachSide('a watch on a forbidden prefix is canceled at creation and sees nothing', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  const md = new Metadata();
  md.set('token', token);
  const stream: ClientDuplexStream<WatchRequest, WatchResponse> = side.conn.watch.watch(md);
  const responses: WatchResponse[] = [];
  stream.on('data', (r: WatchResponse) => responses.push(r));
  stream.on('error', () => {});
  try {
    stream.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('secret/'), rangeEnd: b('secret0') } } }));
    await waitFor(() => responses.length >= 1, { timeoutMs: 5000, what: 'the create answer' });
    const first = responses[0]!;
    assert.equal(first.created, true);
    assert.equal(first.canceled, true);
    assert.equal(first.cancelReason, 'rpc error: code = PermissionDenied desc = etcdserver: permission denied');
    // An allowed watch on the same stream still works, and only its events arrive.
    stream.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: b('pub/'), rangeEnd: b('pub0') } } }));
    await waitFor(() => responses.length >= 2, { timeoutMs: 5000, what: 'the second create answer' });
    const root = await login(side.conn, 'root', 'rootpw');
    await side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('s0') }, root);
    await side.conn.call(side.conn.kv, 'put', { key: b('pub/w'), value: b('1') }, root);
    await waitFor(() => responses.some((r) => r.events.length > 0), { timeoutMs: 5000, what: 'an event' });
    const keys = responses.flatMap((r) => r.events.map((e) => e.kv?.key.toString()));
    assert.deepEqual(keys, ['pub/w']);
  } finally {
    stream.end();
    stream.cancel();
  }
});

eachSide('requests without a token are refused once auth is on ("user name is empty")', () => simple, async (side) => {
  assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('pwned') })), '3 etcdserver: user name is empty');
  assert.equal(await failure(side.conn.call(side.conn.kv, 'range', { key: b('secret/x') })), '3 etcdserver: user name is empty');
  assert.equal(await failure(side.conn.call(side.conn.auth, 'userAdd', { name: 'm', password: 'm' })), '3 etcdserver: user name is empty');
  assert.equal(await secretValue(side), 's0');
});

eachSide('auth survives a restart: still enabled, users, roles and permissions kept', () => jwt, async (side) => {
  await side.member.stop();
  await side.member.restart();
  assert.equal(await failure(side.conn.call(side.conn.kv, 'range', { key: b('pub/a') })), '3 etcdserver: user name is empty');
  const token = await login(side.conn, 'alice', 'alicepw');
  await side.conn.call(side.conn.kv, 'put', { key: b('pub/after'), value: b('1') }, token);
  assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('pwned') }, token)), PERMISSION_DENIED);
  assert.equal(await secretValue(side), 's0');
});


eachSide('a lease expiring under auth still deletes its keys (the server revokes it with root\'s rights)', () => simple, async (side) => {
  const token = await login(side.conn, 'alice', 'alicepw');
  const lease = await side.conn.call<{ ID: bigint }>(side.conn.lease, 'leaseGrant', { TTL: 2n }, token);
  await side.conn.call(side.conn.kv, 'put', { key: b('pub/leased'), value: b('v'), lease: lease.ID }, token);
  const root = await login(side.conn, 'root', 'rootpw');
  await waitFor(async () => {
    const res = await side.conn.call<{ kvs: unknown[] }>(side.conn.kv, 'range', { key: b('pub/leased') }, root);
    return res.kvs.length === 0;
  }, { timeoutMs: 20_000, what: 'the leased key to go with its lease' });
});

test('AuthStatus (etcd 3.5\'s RPC; ours only: etcd 3.4 does not have it) reports auth on and the revision', async () => {
  for (const side of simple.filter((s) => s.target.name === 'ours')) {
    const st = await side.conn.call<{ enabled: boolean; authRevision: bigint }>(side.conn.auth, 'authStatus', {});
    assert.equal(st.enabled, true);
    assert.ok(st.authRevision >= 6n, `revision ${st.authRevision}`);
    assert.equal(await failure(side.conn.call(side.conn.auth, 'authStatus', {}, 'forged.1')), INVALID_TOKEN);
  }
});

test('a forged token naming a future index is refused once the wait for that index times out (ours)', async () => {
  for (const side of simple.filter((s) => s.target.name === 'ours')) {
    assert.equal(await failure(side.conn.call(side.conn.kv, 'put', { key: b('secret/x'), value: b('pwned') }, 'abcdefghijklmnop.999999')), INVALID_TOKEN);
    assert.equal(await secretValue(side), 's0');
    await assertServing(side);
  }
});
