import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Event_EventType } from '../gen/etcd/mvcc/mvccpb/kv.js';
import { KeyWatch, prefixEnd } from './key-watch.js';
import { RecipeKit } from './test-support.js';

describe('server-held watch', () => {
  let kit: RecipeKit;
  const never = new AbortController().signal;

  before(async () => {
    kit = await RecipeKit.open();
  });
  after(() => kit.close());

  it('starting in the past, catches up from history, then follows new writes', async () => {
    kit.put('k/a', '1');
    const from = kit.revision;
    kit.put('k/b', '2');
    kit.put('other', 'x');
    const watch = new KeyWatch(kit.watches, { key: Buffer.from('k/'), prefix: true, startRev: from });
    try {
      const caughtUp = await watch.next(never);
      assert.deepEqual(caughtUp.events.map((e) => e.kv?.key.toString()), ['k/a', 'k/b']);
      await kit.deleteRange({ key: Buffer.from('k/a'), rangeEnd: Buffer.alloc(0), prevKv: false });
      const live = await watch.next(never);
      assert.equal(live.events[0]?.type, Event_EventType.DELETE);
      assert.equal(live.headerRev, kit.revision);
    } finally {
      watch.close();
    }
    assert.equal(kit.watches.watcherCount, 0);
  });

  it('a start revision compacted away rejects with Compacted', async () => {
    const from = kit.revision;
    kit.put('c', '1');
    kit.put('c', '2');
    kit.compact(kit.revision);
    const watch = new KeyWatch(kit.watches, { key: Buffer.from('c'), startRev: from });
    try {
      await assert.rejects(watch.next(never), /required revision has been compacted/);
    } finally {
      watch.close();
    }
  });

  it('an abort ends the wait with its reason', async () => {
    const watch = new KeyWatch(kit.watches, { key: Buffer.from('quiet'), startRev: 0 });
    const controller = new AbortController();
    const waiting = watch.next(controller.signal);
    controller.abort(new Error('bye'));
    await assert.rejects(waiting, /bye/);
    watch.close();
    assert.equal(kit.watches.watcherCount, 0);
  });

  it('prefix ends follow etcd: the last byte below 0xff is raised', () => {
    assert.equal(prefixEnd('ab'), 'ac');
    assert.equal(prefixEnd('a\xff'), 'b');
  });
});
