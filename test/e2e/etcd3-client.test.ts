/**
 * Acceptance 2: the npm `etcd3` client (a third-party gRPC client with its own error mapping and retry
 * policy) performs everyday operations against every target with the results a user expects.
 */
import { after, before, describe, it as test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLeaseInvalidError, GRPCInvalidArgumentError } from 'etcd3';
import { Member, targetsFromEnv, withLogsOnFailure, type Target } from './harness.js';

interface Side {
  member: Member;
  client: Etcd3;
}

const targets = targetsFromEnv();
const sides = new Map<string, Side>();

before(async () => {
  await Promise.all(targets.map(async (target) => {
    const member = await Member.start({ target });
    // Default options, as a user would write it (its retries only cover "unavailable"-style errors).
    const client = new Etcd3({ hosts: member.clientUrl });
    sides.set(target.label, { member, client });
  }));
});

after(async () => {
  for (const side of sides.values()) side.client.close();
  await Promise.all([...sides.values()].map((side) => side.member.destroy()));
});

function side(target: Target): Side {
  const found = sides.get(target.label);
  assert.ok(found !== undefined, `${target.label} started`);
  return found;
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** etcd3 prefixes unmapped gRPC errors with the code ("3 INVALID_ARGUMENT: ..."): match the end. */
async function rejectsWith(promise: Promise<unknown>, type: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

for (const target of targets) {
  describe(`etcd3 client against ${target.label}`, () => {
    /** it(), printing the server's log when the case fails. */
    const it = (name: string, body: () => Promise<void>): void => {
      test(name, () => withLogsOnFailure([side(target).member], body));
    };
    it('put then get a string, a buffer and a number', async () => {
      const { client } = side(target);
      await client.put('c/str').value('hello');
      await client.put('c/buf').value(Buffer.from([0, 1, 2, 255]));
      await client.put('c/num').value(42);
      assert.equal(await client.get('c/str').string(), 'hello');
      assert.deepEqual(await client.get('c/buf').buffer(), Buffer.from([0, 1, 2, 255]));
      assert.equal(await client.get('c/num').number(), 42);
      assert.equal(await client.get('c/missing').string(), null);
      assert.equal(await client.get('c/str').exists(), true);
    });

    it('put returns increasing revisions; getPrevious returns the replaced value', async () => {
      const { client } = side(target);
      const first = await client.put('c/rev').value('1');
      const second = await client.put('c/rev').value('2');
      assert.ok(BigInt(second.header.revision) === BigInt(first.header.revision) + 1n);
      const prev = await client.put('c/rev').value('3').getPrevious();
      assert.equal(prev.value.toString(), '2');
      assert.equal(prev.version, '2');
      const kv = (await client.get('c/rev').exec()).kvs[0];
      assert.equal(kv?.version, '3');
      assert.equal(kv?.create_revision, first.header.revision);
    });

    it('getAll with a prefix, sort, limit, count and keys', async () => {
      const { client } = side(target);
      for (const [k, v] of [['p/b', '2'], ['p/a', '3'], ['p/c', '1'], ['q/x', 'other']] as const) await client.put(k).value(v);
      assert.deepEqual(await client.getAll().prefix('p/').strings(), { 'p/a': '3', 'p/b': '2', 'p/c': '1' });
      assert.deepEqual(await client.getAll().prefix('p/').keys(), ['p/a', 'p/b', 'p/c']);
      assert.equal(await client.getAll().prefix('p/').count(), 3);
      assert.deepEqual(await client.getAll().prefix('p/').sort('Value', 'Ascend').keys(), ['p/c', 'p/b', 'p/a']);
      const limited = await client.getAll().prefix('p/').sort('Key', 'Descend').limit(2).exec();
      assert.deepEqual(limited.kvs.map((kv) => kv.key.toString()), ['p/c', 'p/b']);
      assert.equal(limited.more, true);
      assert.equal(limited.count, '3');
    });

    it('delete a key, a prefix, with previous values', async () => {
      const { client } = side(target);
      for (const k of ['d/1', 'd/2', 'd/3', 'e']) await client.put(k).value(`v-${k}`);
      assert.equal((await client.delete().key('d/1').exec()).deleted, '1');
      assert.equal((await client.delete().key('d/1').exec()).deleted, '0');
      const prev = await client.delete().prefix('d/').getPrevious();
      assert.deepEqual(prev.map((kv) => `${kv.key.toString()}=${kv.value.toString()}`), ['d/2=v-d/2', 'd/3=v-d/3']);
      assert.deepEqual(await client.getAll().prefix('d/').keys(), []);
      assert.equal(await client.get('e').string(), 'v-e');
    });

    it('txn: if / then / else on value, version, create and mod revision', async () => {
      const { client } = side(target);
      const put = await client.put('t/k').value('v1');
      const rev = Number(put.header.revision);
      const yes = await client.if('t/k', 'Value', '==', 'v1').and('t/k', 'Version', '>', 0)
        .and('t/k', 'Create', '==', rev).and('t/k', 'Mod', '<', rev + 1)
        .then(client.put('t/then').value('yes'), client.get('t/k'))
        .else(client.put('t/else').value('no'))
        .commit();
      assert.equal(yes.succeeded, true);
      assert.equal(yes.responses[1]?.response_range?.kvs[0]?.value.toString(), 'v1');
      const no = await client.if('t/k', 'Value', '!=', 'v1')
        .then(client.put('t/then2').value('yes'))
        .else(client.put('t/else').value('no'), client.delete().key('t/then'))
        .commit();
      assert.equal(no.succeeded, false);
      assert.equal(await client.get('t/then2').string(), null);
      assert.equal(await client.get('t/else').string(), 'no');
      assert.equal(await client.get('t/then').string(), null);
      // every op of one txn shares one revision
      assert.equal(no.responses[0]?.response_put?.header.revision, no.header.revision);
    });

    it('txn errors: duplicate key; too many operations (default limit 128)', async () => {
      const { client } = side(target);
      await rejectsWith(client.if('t/k', 'Version', '>', 0)
        .then(client.put('t/dup').value('1'), client.put('t/dup').value('2')).commit(),
      GRPCInvalidArgumentError, /(^|: )etcdserver: duplicate key given in txn request$/);
      const many = Array.from({ length: 129 }, (_, i) => client.put(`t/many/${i}`).value('x'));
      await rejectsWith(client.if('t/k', 'Version', '>', 0).then(...many).commit(),
        GRPCInvalidArgumentError, /(^|: )etcdserver: too many operations in txn request$/);
      const limit = Array.from({ length: 128 }, (_, i) => client.put(`t/many/${i}`).value('x'));
      assert.equal((await client.if('t/k', 'Version', '>', 0).then(...limit).commit()).succeeded, true);
      assert.equal(await client.getAll().prefix('t/many/').count(), 128);
    });

    it('lease: grant, put with the lease, compare on lease, revoke deletes the key', async () => {
      const { client } = side(target);
      const lease = client.lease(600, { autoKeepAlive: false });
      const id = await lease.grant();
      await lease.put('l/key').value('leased');
      const kv = (await client.get('l/key').exec()).kvs[0];
      assert.equal(kv?.lease, id);
      const cmp = await client.if('l/key', 'Lease', '==', id).then(client.put('l/ok').value('1')).commit();
      assert.equal(cmp.succeeded, true);
      await client.put('l/key').value('kept-lease').ignoreLease();
      assert.equal((await client.get('l/key').exec()).kvs[0]?.lease, id);
      const ttl = await lease.keepaliveOnce();
      assert.equal(ttl.ID, id);
      await lease.revoke();
      assert.equal(await client.get('l/key').string(), null);
      await rejectsWith(client.put('l/again').value('x').lease(id).exec(), EtcdLeaseInvalidError, /lease/);
    });

    it('lease: automatic keep-alive holds a short lease past its TTL; an unkept lease expires and takes its key', async () => {
      const { client } = side(target);
      // TTL 1 is raised to the minimum (2 s with the default election timeout) by both servers
      const kept = client.lease(1);
      let keptAlive = 0;
      kept.on('keepaliveSucceeded', () => keptAlive++);
      await kept.put('la/kept').value('1');
      const keptId = await kept.grant();
      const unkept = client.lease(1, { autoKeepAlive: false });
      await unkept.put('la/unkept').value('1');
      const unkeptId = await unkept.grant();
      const granted = await client.leaseClient.leaseTimeToLive({ ID: unkeptId, keys: true });
      assert.equal(granted.grantedTTL, '2');
      assert.deepEqual(granted.keys.map((k) => k.toString()), ['la/unkept']);
      await waitFor(async () => (await client.get('la/unkept').string()) === null, 20_000, 'the unkept lease expires');
      assert.equal((await client.leaseClient.leaseTimeToLive({ ID: unkeptId })).TTL, '-1');
      assert.equal(await client.get('la/kept').string(), '1', 'the kept-alive key outlives its TTL');
      assert.ok(keptAlive >= 1, 'keep-alives answered');
      const listed = (await client.leaseClient.leaseLeases()).leases.map((l) => l.ID);
      assert.ok(listed.includes(keptId) && !listed.includes(unkeptId), `leases listed: ${listed.join(',')}`);
      await kept.revoke();
      assert.equal(await client.get('la/kept').string(), null);
    });

    it('compaction: reads below it fail, reads at it still work', async () => {
      const { client } = side(target);
      const first = await client.put('k/c').value('old');
      const second = await client.put('k/c').value('new');
      await client.kv.compact({ revision: second.header.revision, physical: true });
      await rejectsWith(client.get('k/c').revision(first.header.revision).string(), Error,
        /^11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted$/);
      assert.equal(await client.get('k/c').revision(second.header.revision).string(), 'new');
      const future = BigInt(second.header.revision) + 1000n;
      await rejectsWith(client.get('k/c').revision(String(future)).string(), Error,
        /^11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision$/);
    });

    it('software transaction (STM) and namespaces', async () => {
      const { client } = side(target);
      await client.put('stm/counter').value(0);
      await Promise.all(Array.from({ length: 5 }, () => client.stm({ retries: 20 }).transact(async (tx) => {
        const value = Number(await tx.get('stm/counter').string());
        await tx.put('stm/counter').value(value + 1);
      })));
      assert.equal(await client.get('stm/counter').number(), 5);
      const ns = client.namespace('ns/');
      await ns.put('inner').value('x');
      assert.equal(await client.get('ns/inner').string(), 'x');
      assert.deepEqual(await ns.getAll().keys(), ['inner']);
    });

    it('empty key is refused', async () => {
      const { client } = side(target);
      await rejectsWith(client.put('').value('x').exec(), GRPCInvalidArgumentError, /^3 INVALID_ARGUMENT: etcdserver: key is not provided$/);
    });
  });
}
