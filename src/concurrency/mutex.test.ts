import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LockResponse } from '../gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import { LockRecipes } from './mutex.js';
import { RecipeKit, settled, until } from './test-support.js';

const b = (s: string): Buffer => Buffer.from(s);

describe('lock recipe', () => {
  let kit: RecipeKit;
  let locks: LockRecipes;
  const never = new AbortController().signal;

  before(async () => {
    kit = await RecipeKit.open();
    locks = new LockRecipes(kit.deps);
  });
  after(() => kit.close());

  /** Grants leases with these ids. */
  async function leases(...ids: bigint[]): Promise<void> {
    for (const ID of ids) await kit.leaseGrant({ ID, TTL: 60n });
  }

  /** Starts a lock and returns once it is queued: its key is in and its watcher registered. */
  async function queued(name: string, lease: bigint, signal = never): Promise<{ done: Promise<LockResponse> }> {
    const watchers = kit.watches.watcherCount;
    const p = locks.lock({ name: b(name), lease }, signal);
    await until(async () => (await kit.keys(`${name}/`)).includes(`${name}/${lease.toString(16)}`), 'key queued');
    await until(() => kit.watches.watcherCount > watchers, 'waiter watching');
    return { done: p };
  }

  it('the first contender holds at once; the others get the lock in the order they came', async () => {
    await leases(0xa1n, 0xa2n, 0xa3n);
    const first = await locks.lock({ name: b('order'), lease: 0xa1n }, never);
    assert.equal(first.key.toString(), 'order/a1');
    const second = (await queued('order', 0xa2n)).done;
    const third = (await queued('order', 0xa3n)).done;
    assert.equal(await settled(second), false);
    const released = await locks.unlock({ key: first.key });
    const got = await second;
    assert.equal(got.key.toString(), 'order/a2');
    // The header is that of the read that found no older contender: the release's revision.
    assert.equal(got.header?.revision, released.header?.revision);
    assert.equal(await settled(third), false, 'the third still waits for the second');
    await locks.unlock({ key: got.key });
    assert.equal((await third).key.toString(), 'order/a3');
    await locks.unlock({ key: b('order/a3') });
    assert.equal(kit.watches.watcherCount, 0, 'no waiter left watching');
  });

  it('a waiter whose predecessor leaves keeps waiting for the older holder', async () => {
    await leases(0xb1n, 0xb2n, 0xb3n);
    const holder = await locks.lock({ name: b('pred'), lease: 0xb1n }, never);
    const middle = (await queued('pred', 0xb2n)).done;
    const last = (await queued('pred', 0xb3n)).done;
    // b3 watches b2 only; b2's key going must not hand b3 the lock while b1 holds it.
    await kit.deleteRange({ key: b('pred/b2'), rangeEnd: Buffer.alloc(0), prevKv: false });
    await until(async () => !(await settled(last)) && kit.watches.watcherCount === 2, 'b2 and b3 both watching b1');
    assert.equal(await settled(last), false);
    await locks.unlock({ key: holder.key });
    await middle;
    assert.equal((await last).key.toString(), 'pred/b3');
  });

  it('the same lease asking again keeps its place (and holds at once if it held)', async () => {
    await leases(0xc1n);
    const a = await locks.lock({ name: b('again'), lease: 0xc1n }, never);
    const again = await locks.lock({ name: b('again'), lease: 0xc1n }, never);
    assert.deepEqual(again, a);
  });

  it("a lease that expires releases its holder's lock", async () => {
    await leases(0xd1n, 0xd2n);
    await locks.lock({ name: b('expiry'), lease: 0xd1n }, never);
    const waiting = (await queued('expiry', 0xd2n)).done;
    kit.expire(0xd1n);
    assert.equal((await waiting).key.toString(), 'expiry/d2');
  });

  it('a canceled waiter stops waiting, withdraws its key and leaves no watcher', async () => {
    await leases(0xe1n, 0xe2n);
    await locks.lock({ name: b('cancel'), lease: 0xe1n }, never);
    const controller = new AbortController();
    const waiting = (await queued('cancel', 0xe2n, controller.signal)).done;
    controller.abort(new Error('client went away'));
    await assert.rejects(waiting, /client went away/);
    assert.deepEqual(await kit.keys('cancel/'), ['cancel/e1']);
    assert.equal(kit.watches.watcherCount, 0);
  });

  it('an already canceled request writes nothing', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await assert.rejects(locks.lock({ name: b('never'), lease: 0xe1n }, controller.signal), /gone/);
    assert.deepEqual(await kit.keys('never/'), []);
  });

  it('no lease: a session lease is granted and names the key', async () => {
    const res = await locks.lock({ name: b('session'), lease: 0n }, never);
    assert.match(res.key.toString(), /^session\/[0-9a-f]+$/);
    assert.notEqual(res.key.toString(), 'session/0');
  });

  it('a missing lease is refused when the key is put', async () => {
    await assert.rejects(locks.lock({ name: b('missing'), lease: 0x999n }, never), /requested lease not found/);
    assert.deepEqual(await kit.keys('missing/'), []);
  });
});
