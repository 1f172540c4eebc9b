import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../base/logger.js';
import { EtcdError } from '../../base/errors.js';
import { AutoCompactor, type CompactorClock } from './auto-compactor.js';

/** A manual clock: advance() fires due timers in time order. */
class FakeClock implements CompactorClock {
  #now = 0;
  #timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #ids = 0;
  nowMs(): number {
    return this.#now;
  }
  after(ms: number, fn: () => void): () => void {
    const id = ++this.#ids;
    this.#timers.push({ at: this.#now + ms, fn, id });
    return () => void (this.#timers = this.#timers.filter((t) => t.id !== id));
  }
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const t = this.#timers[0];
      if (t === undefined || t.at > end) break;
      this.#timers.shift();
      this.#now = t.at;
      t.fn();
      for (let i = 0; i < 5; i++) await Promise.resolve();
    }
    this.#now = end;
  }
}

function harness(opts: { fail?: () => EtcdError | null } = {}) {
  const clock = new FakeClock();
  let rev = 1;
  const compacted: Array<{ at: number; rev: number }> = [];
  const o = {
    log: silentLogger, clock, rev: () => rev,
    compact: async (r: number) => {
      const err = opts.fail?.() ?? null;
      if (err) throw err;
      compacted.push({ at: clock.nowMs(), rev: r });
    },
  };
  return { clock, o, compacted, setRev: (r: number) => void (rev = r) };
}

test('periodic 10s: first compaction a retention after start, at the revision sampled then; then every retention', async () => {
  const h = harness();
  const c = new AutoCompactor({ mode: 'periodic', retentionMs: 10_000 }, h.o);
  c.setLeader(true);
  c.start();
  // one write per second: revision = 1 + seconds elapsed
  for (let s = 1; s <= 35; s++) {
    await h.clock.advance(1000);
    h.setRev(1 + s);
  }
  c.stop();
  assert.deepEqual(h.compacted.map((x) => x.at), [10_000, 20_000, 30_000]);
  // each compacts at the oldest of the last 11 samples (one per second, taken before that second's write)
  assert.deepEqual(h.compacted.map((x) => x.rev), [1, 9, 19]);
});

test('periodic: a follower never compacts; after becoming leader it catches up at once', async () => {
  const h = harness();
  const c = new AutoCompactor({ mode: 'periodic', retentionMs: 10_000 }, h.o);
  c.start();
  await h.clock.advance(60_000);
  assert.equal(h.compacted.length, 0);
  c.setLeader(true);
  await h.clock.advance(1000);
  assert.equal(h.compacted.length, 1);
  c.stop();
});

test('periodic: a failure retries after a tenth of the retention; Compacted counts as success', async () => {
  let failures = 2;
  const h = harness({ fail: () => (failures-- > 0 ? new EtcdError('Timeout') : null) });
  const c = new AutoCompactor({ mode: 'periodic', retentionMs: 10_000 }, h.o);
  c.setLeader(true);
  c.start();
  await h.clock.advance(12_500);
  assert.deepEqual(h.compacted.map((x) => x.at), [12_000]);
  c.stop();
  const h2 = harness({ fail: () => new EtcdError('Compacted') });
  const c2 = new AutoCompactor({ mode: 'periodic', retentionMs: 10_000 }, h2.o);
  let attempts = 0;
  const inner = h2.o.compact;
  h2.o.compact = async (r) => {
    attempts++;
    await inner(r);
  };
  c2.setLeader(true);
  c2.start();
  await h2.clock.advance(25_000);
  assert.equal(attempts, 2, 'Compacted is not retried every second');
  c2.stop();
});

test('revision mode keeps the last N revisions, checked every 5 minutes, skipping repeats', async () => {
  const h = harness();
  const c = new AutoCompactor({ mode: 'revision', retentionRevisions: 100 }, h.o);
  c.setLeader(true);
  c.start();
  h.setRev(50);
  await h.clock.advance(300_000);
  assert.equal(h.compacted.length, 0, 'nothing below zero to compact');
  h.setRev(1000);
  await h.clock.advance(299_999);
  assert.equal(h.compacted.length, 0);
  await h.clock.advance(1);
  assert.deepEqual(h.compacted, [{ at: 600_000, rev: 900 }]);
  await h.clock.advance(300_000);
  assert.equal(h.compacted.length, 1, 'same target revision: not compacted again');
  h.setRev(1500);
  await h.clock.advance(300_000);
  assert.deepEqual(h.compacted.at(-1), { at: 1_200_000, rev: 1400 });
  c.setLeader(false);
  h.setRev(5000);
  await h.clock.advance(600_000);
  assert.equal(h.compacted.length, 2, 'paused while not the leader');
  c.stop();
});
