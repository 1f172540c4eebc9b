/**
 * Auth in a three-member cluster, on every target: the auth store is replicated through raft, so a user
 * created through one member logs in through another, a simple token issued by one member is honoured
 * by the others, and a permission revoked through one member is enforced by all.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { targetsFromEnv } from './harness.js';
import { timingFlags, withCluster } from './cluster/cluster.js';
import { b, Conn, failure } from './auth-tools.js';
import { Permission_Type as PermType } from '../../src/gen/etcd/auth/authpb/auth.js';

const DENIED = ['7 etcdserver: permission denied', '3 etcdserver: revision of auth store is old'];

for (const target of targetsFromEnv()) {
  test(`[${target.label}] auth across members: users, tokens and revocations are cluster-wide`, async () => {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], flags: [...timingFlags, '--bcrypt-cost=4'] }, async (cluster) => {
      const [m1, m2, m3] = cluster.members;
      assert.ok(m1 && m2 && m3);
      const conns = [m1, m2, m3].map((m) => new Conn(m.endpoint));
      const [c1, c2, c3] = conns;
      assert.ok(c1 && c2 && c3);
      try {
        await c1.call(c1.auth, 'userAdd', { name: 'root', password: 'rootpw' });
        await c1.call(c1.auth, 'userGrantRole', { user: 'root', role: 'root' });
        await c1.call(c1.auth, 'roleAdd', { name: 'pub' });
        await c1.call(c1.auth, 'roleGrantPermission', { name: 'pub', perm: { permType: PermType.READWRITE, key: b('pub/'), rangeEnd: b('pub0') } });
        await c1.call(c1.auth, 'userAdd', { name: 'alice', password: 'alicepw' });
        await c1.call(c1.auth, 'userGrantRole', { user: 'alice', role: 'pub' });
        await c1.call(c1.auth, 'authEnable', {});
        // Logged in through m2, used on every member: the token was assigned by every member's apply.
        const token = (await c2.call<{ token: string }>(c2.auth, 'authenticate', { name: 'alice', password: 'alicepw' })).token;
        for (const [i, c] of conns.entries()) {
          await c.call(c.kv, 'put', { key: b(`pub/${i}`), value: b('v') }, token);
          const res = await c.call<{ kvs: unknown[] }>(c.kv, 'range', { key: b('pub/'), rangeEnd: b('pub0') }, token);
          assert.equal(res.kvs.length, i + 1);
          assert.equal(await failure(c.call(c.kv, 'put', { key: b('secret'), value: b('x') }, token)), '7 etcdserver: permission denied');
        }
        const rootToken = (await c1.call<{ token: string }>(c1.auth, 'authenticate', { name: 'root', password: 'rootpw' })).token;
        await c1.call(c1.auth, 'userRevokeRole', { name: 'alice', role: 'pub' }, rootToken);
        for (const c of conns) {
          const fresh = (await c.call<{ token: string }>(c.auth, 'authenticate', { name: 'alice', password: 'alicepw' })).token;
          assert.ok(DENIED.includes(await failure(c.call(c.kv, 'put', { key: b('pub/late'), value: b('v') }, fresh))));
        }
        const rootOn3 = (await c3.call<{ token: string }>(c3.auth, 'authenticate', { name: 'root', password: 'rootpw' })).token;
        const res = await c3.call<{ kvs: unknown[] }>(c3.kv, 'range', { key: b('pub/late') }, rootOn3);
        assert.equal(res.kvs.length, 0);
      } finally {
        for (const c of conns) c.close();
      }
    });
  });
}
