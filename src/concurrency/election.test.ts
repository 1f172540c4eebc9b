import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { CampaignResponse, LeaderResponse } from '../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import { ElectionRecipes } from './election.js';
import { concurrencyLimits } from './limits.js';
import { RecipeKit, settled, until } from './test-support.js';

const b = (s: string): Buffer => Buffer.from(s);
const value = (r: LeaderResponse): string => r.kv?.value.toString() ?? '<none>';

describe('election recipe', () => {
  let kit: RecipeKit;
  let elections: ElectionRecipes;
  const never = new AbortController().signal;

  before(async () => {
    kit = await RecipeKit.open();
    elections = new ElectionRecipes(kit.deps);
    for (const ID of [0x11n, 0x12n, 0x13n, 0x21n, 0x22n, 0x31n, 0x41n, 0x42n]) await kit.leaseGrant({ ID, TTL: 60n });
  });
  after(() => kit.close());

  async function queued(name: string, lease: bigint, v: string, signal = never): Promise<{ done: Promise<CampaignResponse> }> {
    const watchers = kit.watches.watcherCount;
    const done = elections.campaign({ name: b(name), lease, value: b(v) }, signal);
    await until(async () => (await kit.keys(`${name}/`)).includes(`${name}/${lease.toString(16)}`), 'candidate queued');
    await until(() => kit.watches.watcherCount > watchers, 'candidate watching');
    return { done };
  }

  it('the oldest candidate leads; proclaim changes the value; resign hands over in order', async () => {
    const first = await elections.campaign({ name: b('e'), lease: 0x11n, value: b('a') }, never);
    assert.deepEqual(first.leader, { name: b('e'), key: b('e/11'), rev: first.header!.revision, lease: 0x11n });
    const second = (await queued('e', 0x12n, 'b')).done;
    const third = (await queued('e', 0x13n, 'c')).done;
    await elections.proclaim({ leader: first.leader, value: b('a2') });
    assert.equal(value(await elections.leader({ name: b('e') })), 'a2');
    assert.equal(await settled(second), false);
    await elections.resign({ leader: first.leader });
    const next = await second;
    assert.equal(next.leader?.key.toString(), 'e/12');
    assert.equal(value(await elections.leader({ name: b('e') })), 'b');
    assert.equal(await settled(third), false);
    await elections.resign({ leader: next.leader });
    assert.equal((await third).leader?.key.toString(), 'e/13');
  });

  it('a stale leader key cannot proclaim (not leader) and resigns nothing', async () => {
    const led = await elections.campaign({ name: b('stale'), lease: 0x21n, value: b('x') }, never);
    const stale = { ...led.leader!, rev: led.leader!.rev + 1n };
    await assert.rejects(elections.proclaim({ leader: stale, value: b('y') }), /^EtcdError: election: not leader$/);
    await elections.resign({ leader: stale });
    assert.equal(value(await elections.leader({ name: b('stale') })), 'x');
    await assert.rejects(elections.proclaim({ leader: undefined, value: b('y') }), /"leader" field must be provided/);
    await assert.rejects(elections.leader({ name: b('nobody') }), /election: no leader/);
  });

  it('campaigning again under the same lease keeps the place and proclaims the new value', async () => {
    const first = await elections.campaign({ name: b('again'), lease: 0x22n, value: b('v1') }, never);
    const again = await elections.campaign({ name: b('again'), lease: 0x22n, value: b('v2') }, never);
    assert.deepEqual(again.leader, first.leader);
    assert.equal(value(await elections.leader({ name: b('again') })), 'v2');
  });

  it("the leader's lease expiring elects the next candidate; a canceled candidate withdraws", async () => {
    await elections.campaign({ name: b('x'), lease: 0x41n, value: b('one') }, never);
    const controller = new AbortController();
    const canceled = (await queued('x', 0x42n, 'two', controller.signal)).done;
    controller.abort(new Error('client went away'));
    await assert.rejects(canceled, /client went away/);
    await until(async () => !(await kit.keys('x/')).includes('x/42'), 'canceled candidate withdrawn');
    const next = (await queued('x', 0x31n, 'three')).done;
    kit.expire(0x41n);
    assert.equal((await next).leader?.key.toString(), 'x/31');
    assert.equal(kit.watches.watcherCount, 0);
  });

  it('observe: the leader, each proclamation, each next leader; waits when there is none', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const observing = (async () => {
      for await (const r of elections.observe({ name: b('obs') }, controller.signal)) seen.push(`${r.kv?.key.toString()}=${value(r)}@${r.header?.revision}`);
    })();
    await until(() => kit.watches.watcherCount === 1, 'observer waiting for a first candidate');
    await kit.leaseGrant({ ID: 0x51n, TTL: 60n });
    await kit.leaseGrant({ ID: 0x52n, TTL: 60n });
    const a = await elections.campaign({ name: b('obs'), lease: 0x51n, value: b('a') }, never);
    const bWaits = (await queued('obs', 0x52n, 'b')).done;
    await elections.proclaim({ leader: a.leader, value: b('a2') });
    await elections.resign({ leader: a.leader });
    const bLeads = await bWaits;
    await until(() => seen.length === 3, 'three observations');
    const r0 = a.header!.revision;
    assert.deepEqual(seen, [`obs/51=a@${r0}`, `obs/51=a2@${r0 + 2n}`, `obs/52=b@${r0 + 3n}`]);
    assert.equal(bLeads.leader?.key.toString(), 'obs/52');
    controller.abort(new Error('done'));
    await assert.rejects(observing, /done/);
    await elections.resign({ leader: bLeads.leader });
    assert.equal(kit.watches.watcherCount, 0, 'the observer left no watcher');
  });

  it('observe: a consumer that falls behind loses nothing (its watcher parks and catches up)', async () => {
    await kit.leaseGrant({ ID: 0x61n, TTL: 60n });
    const led = await elections.campaign({ name: b('slow'), lease: 0x61n, value: b('0') }, never);
    const controller = new AbortController();
    const it = elections.observe({ name: b('slow') }, controller.signal)[Symbol.asyncIterator]();
    assert.equal(value((await it.next()).value as LeaderResponse), '0');
    const count = concurrencyLimits.watchQueuedBatchesMax * 3;
    for (let i = 1; i <= count; i++) await elections.proclaim({ leader: led.leader, value: b(String(i)) });
    for (let i = 1; i <= count; i++) assert.equal(value((await it.next()).value as LeaderResponse), String(i));
    await it.return?.(undefined);
    assert.equal(kit.watches.watcherCount, 0);
  });
});
