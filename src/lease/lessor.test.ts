import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdError, isEtcdError } from '../base/errors.js';
import { silentLogger } from '../base/logger.js';
import type { LeaseCheckpoint } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Lessor, NotPrimaryError, leaseLimits, type LeaseRecords } from './lessor.js';

/** The lease bucket as a map (key hex -> value). */
class MemoryRecords implements LeaseRecords {
  readonly map = new Map<string, Buffer>();
  forEach(fn: (key: Buffer, value: Buffer) => void): void {
    for (const [k, v] of [...this.map].sort()) fn(Buffer.from(k, 'hex'), v);
  }
  put(key: Buffer, value: Buffer): void {
    this.map.set(key.toString('hex'), value);
  }
  delete(key: Buffer): void {
    this.map.delete(key.toString('hex'));
  }
}

interface Harness {
  lessor: Lessor;
  records: MemoryRecords;
  clock: { now: number };
  revokes: bigint[];
  checkpoints: LeaseCheckpoint[][];
  deleted: string[];
  /** Proposals not applied yet (when `hold` is set). */
  held: Array<() => void>;
}

/**
 * A lessor whose proposals are "committed" by applying them back to it at once, as raft would on a
 * single member; with `hold`, they wait in `held` until the test applies them.
 */
function harness(options: { hold?: boolean; records?: MemoryRecords; minTtlSeconds?: number; clockMs?: number } = {}): Harness {
  const clock = { now: options.clockMs ?? 1_000_000 };
  const records = options.records ?? new MemoryRecords();
  const h: Harness = { lessor: undefined as unknown as Lessor, records, clock, revokes: [], checkpoints: [], deleted: [], held: [] };
  const commit = (apply: () => void): Promise<void> => {
    if (!options.hold) {
      apply();
      return Promise.resolve();
    }
    return new Promise((resolve) => h.held.push(() => {
      apply();
      resolve();
    }));
  };
  h.lessor = new Lessor({
    minTtlSeconds: options.minTtlSeconds ?? 2,
    clock: () => clock.now,
    log: silentLogger,
    proposer: {
      revoke: (id) => {
        h.revokes.push(id);
        return commit(() => h.lessor.revoke(id, (keys) => deleteKeys(h, id, keys)));
      },
      checkpoint: (cps) => {
        h.checkpoints.push(cps);
        return commit(() => cps.forEach((c) => h.lessor.checkpoint(c.ID, c.remainingTTL)));
      },
    },
  });
  h.lessor.recover(records);
  return h;
}

/** What the MVCC store does for a revoke: delete each key, detaching it. */
function deleteKeys(h: Harness, id: bigint, keys: readonly string[]): void {
  for (const k of keys) {
    h.deleted.push(k);
    h.lessor.detach(id, k);
  }
}

/** Lets promise callbacks (proposal completions) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

function expectEtcdError(kind: EtcdError['kind']): (e: unknown) => boolean {
  return (e) => isEtcdError(e, kind);
}

describe('grant', () => {
  test('raises a short TTL to the minimum, refuses id 0, an existing id and a TTL above 9e9 s', () => {
    const { lessor } = harness({ minTtlSeconds: 2 });
    assert.deepEqual(lessor.grant(1n, 1n), { id: 1n, ttlSeconds: 2 });
    assert.deepEqual(lessor.grant(2n, -5n), { id: 2n, ttlSeconds: 2 });
    assert.deepEqual(lessor.grant(3n, 9_000_000_000n), { id: 3n, ttlSeconds: 9_000_000_000 });
    assert.throws(() => lessor.grant(4n, 9_000_000_001n), expectEtcdError('LeaseTTLTooLarge'));
    assert.throws(() => lessor.grant(1n, 60n), expectEtcdError('LeaseExist'));
    assert.throws(() => lessor.grant(0n, 60n), expectEtcdError('LeaseNotFound'));
    // etcd checks the TTL before whether the id is taken
    assert.throws(() => lessor.grant(1n, 9_000_000_001n), expectEtcdError('LeaseTTLTooLarge'));
    assert.equal(lessor.size, 3);
  });

  test('negative client-chosen ids are leases like any other', () => {
    const { lessor, records } = harness();
    lessor.grant(-7n, 60n);
    assert.ok(lessor.exists(-7n));
    assert.equal(records.map.size, 1);
    assert.ok(records.map.has('fffffffffffffff9'));
  });
});

describe('expiry (primary only)', () => {
  test('a lease expires after its TTL: the primary proposes its revocation, which deletes its keys', async () => {
    const h = harness();
    h.lessor.promote(0);
    h.lessor.grant(10n, 10n);
    h.lessor.attach(10n, 'b');
    h.lessor.attach(10n, 'a');
    h.clock.now += 9_999;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, []);
    h.clock.now += 1;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, [10n]);
    assert.deepEqual(h.deleted, ['a', 'b'], 'keys deleted in sorted order');
    assert.equal(h.lessor.exists(10n), false);
    assert.equal(h.lessor.leaseOf('a'), 0n);
    assert.equal(h.records.map.size, 0);
  });

  test('a non-primary member never expires leases', async () => {
    const h = harness();
    h.lessor.grant(10n, 5n);
    h.clock.now += 3_600_000;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, []);
    assert.equal(h.lessor.lookup(10n)?.remainingMs, Infinity);
  });

  test('revocations are rate-limited to 1000/s and at most 16 in flight', async () => {
    const h = harness({ hold: true });
    h.lessor.promote(0);
    for (let i = 1; i <= 2000; i++) h.lessor.grant(BigInt(i), 5n);
    h.clock.now += 5_000;
    h.lessor.poll();
    await settle();
    assert.equal(h.revokes.length, leaseLimits.revokesInFlightMax, 'no more than 16 proposals wait for raft');
    let applied = 0;
    while (h.held.length > 0) {
      h.held.shift()!();
      applied++;
      await settle();
    }
    assert.equal(applied, 500, 'one poll (500 ms) offers at most 500 expired leases');
    assert.equal(h.lessor.size, 1500);
    for (let round = 0; round < 3; round++) {
      h.clock.now += leaseLimits.pollIntervalMs;
      h.lessor.poll();
      await settle();
      while (h.held.length > 0) {
        h.held.shift()!();
        await settle();
      }
    }
    assert.equal(h.lessor.size, 0);
    assert.equal(new Set(h.revokes).size, 2000, 'each lease revoked once');
  });

  test('an expired lease whose revocation failed is offered again after the retry interval', async () => {
    const h = harness({ hold: true });
    h.lessor.promote(0);
    h.lessor.grant(1n, 5n);
    h.clock.now += 5_000;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, [1n]);
    h.held.length = 0; // the proposal is lost
    h.clock.now += leaseLimits.pollIntervalMs;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, [1n], 'not offered again before the retry interval');
    h.clock.now += leaseLimits.expiredRetryMs;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, [1n, 1n]);
  });
});

describe('promote and demote', () => {
  test('a new primary extends every lease by the election timeout', () => {
    const h = harness();
    h.lessor.grant(1n, 60n);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, Infinity);
    h.lessor.promote(1_000);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 61_000);
  });

  test('demote stops expiry; a later promote starts the TTL again', async () => {
    const h = harness();
    h.lessor.promote(0);
    h.lessor.grant(1n, 5n);
    h.lessor.demote();
    h.clock.now += 60_000;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.revokes, []);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, Infinity);
    h.lessor.promote(1_000);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 6_000);
  });

  test('after a promotion, at most 3/4 of the revoke rate expires in any one second', () => {
    const h = harness();
    for (let i = 1; i <= 3000; i++) h.lessor.grant(BigInt(i), 10n);
    h.lessor.promote(1_000);
    const perSecond = new Map<number, number>();
    for (const l of h.lessor.leases()) {
      const second = Math.floor(l.remainingMs / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    assert.ok(Math.max(...perSecond.values()) <= 751, `expiries per second: ${JSON.stringify([...perSecond])}`);
    assert.equal(Math.min(...h.lessor.leases().map((l) => l.remainingMs)), 11_000, 'no lease expires sooner than TTL + extension');
  });

  test('leases are listed soonest expiry first', () => {
    const h = harness();
    h.lessor.promote(0);
    h.lessor.grant(1n, 30n);
    h.lessor.grant(2n, 10n);
    h.lessor.grant(3n, 20n);
    assert.deepEqual(h.lessor.leases().map((l) => l.id), [2n, 3n, 1n]);
  });
});

describe('renew', () => {
  test('renew restarts the TTL and returns it; only the primary renews', async () => {
    const h = harness();
    h.lessor.grant(1n, 10n);
    await assert.rejects(h.lessor.renew(1n), NotPrimaryError);
    h.lessor.promote(0);
    h.clock.now += 4_000;
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 6_000);
    assert.equal(await h.lessor.renew(1n), 10);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 10_000);
    await assert.rejects(h.lessor.renew(99n), expectEtcdError('LeaseNotFound'));
  });

  test('renewing an expired lease waits for its revocation and then finds no lease', async () => {
    const h = harness({ hold: true });
    h.lessor.promote(0);
    h.lessor.grant(1n, 5n);
    h.clock.now += 5_000;
    let outcome: unknown = 'pending';
    h.lessor.renew(1n).then((ttl) => (outcome = ttl), (err: unknown) => (outcome = err));
    await settle();
    assert.equal(outcome, 'pending');
    h.lessor.poll();
    await settle();
    h.held.shift()!();
    await settle();
    assert.ok(isEtcdError(outcome, 'LeaseNotFound'), String(outcome));
  });

  test('renewing an expired lease on a primary that is demoted meanwhile says: not primary', async () => {
    const h = harness();
    h.lessor.promote(0);
    h.lessor.grant(1n, 5n);
    h.clock.now += 6_000;
    const renewal = h.lessor.renew(1n);
    h.lessor.demote();
    await assert.rejects(renewal, NotPrimaryError);
  });

  test('waitPrimary resolves on promotion and times out otherwise', async () => {
    const h = harness();
    const waiting = h.lessor.waitPrimary(10_000);
    h.lessor.promote(0);
    await waiting;
    h.lessor.demote();
    await assert.rejects(h.lessor.waitPrimary(1), expectEtcdError('Timeout'));
  });
});

describe('checkpoints', () => {
  test('the primary checkpoints long leases; a new primary runs the checkpointed remainder, not the full TTL', async () => {
    const h = harness();
    h.lessor.promote(0);
    h.lessor.grant(1n, 600n);
    h.lessor.grant(2n, 60n); // shorter than the interval: never checkpointed
    h.clock.now += leaseLimits.checkpointIntervalMs;
    h.lessor.poll();
    await settle();
    assert.deepEqual(h.checkpoints, [[{ ID: 1n, remainingTTL: 300n }]]);
    // leader change: demoted, then promoted again (election timeout 1 s)
    h.lessor.demote();
    h.clock.now += 2_000;
    h.lessor.promote(1_000);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 301_000);
    // a keep-alive clears the checkpoint through raft and runs the full TTL again
    assert.equal(await h.lessor.renew(1n), 600);
    assert.deepEqual(h.checkpoints[1], [{ ID: 1n, remainingTTL: 0n }]);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 600_000);
    h.lessor.demote();
    h.lessor.promote(0);
    assert.equal(h.lessor.lookup(1n)?.remainingMs, 600_000);
  });

  test('checkpoints of unknown leases are ignored', () => {
    const h = harness();
    h.lessor.checkpoint(5n, 10n);
    assert.equal(h.lessor.size, 0);
  });
});

describe('attachments and restore', () => {
  test('attach, detach, leaseOf; attaching a key to another lease moves it', () => {
    const { lessor } = harness();
    lessor.grant(1n, 60n);
    lessor.grant(2n, 60n);
    lessor.attach(1n, 'k');
    assert.equal(lessor.leaseOf('k'), 1n);
    lessor.attach(2n, 'k');
    assert.deepEqual(lessor.lookup(1n)?.keys, []);
    assert.deepEqual(lessor.lookup(2n)?.keys, ['k']);
    lessor.detach(2n, 'k');
    assert.equal(lessor.leaseOf('k'), 0n);
    lessor.attach(3n, 'x'); // no such lease: ignored
    assert.equal(lessor.leaseOf('x'), 0n);
  });

  test('revoke of an unknown lease fails; revoke of a lease without keys deletes nothing', () => {
    const h = harness();
    assert.throws(() => h.lessor.revoke(9n, () => assert.fail('nothing to delete')), expectEtcdError('LeaseNotFound'));
    h.lessor.grant(9n, 60n);
    h.lessor.revoke(9n, () => assert.fail('nothing to delete'));
    assert.equal(h.lessor.exists(9n), false);
  });

  test('a restarted lessor recovers leases, TTLs and checkpoints from the records; keys come from the store', () => {
    const first = harness({ minTtlSeconds: 2 });
    first.lessor.grant(1n, 600n);
    first.lessor.grant(2n, 30n);
    first.lessor.checkpoint(1n, 200n);
    first.lessor.grant(3n, 30n);
    first.lessor.revoke(3n, () => {});
    const second = harness({ records: first.records, minTtlSeconds: 5, clockMs: 0 });
    assert.equal(second.lessor.size, 2);
    assert.equal(second.lessor.exists(3n), false);
    second.lessor.attach(1n, 'key'); // what the MVCC restore does
    assert.equal(second.lessor.lookup(1n)?.remainingMs, Infinity, 'not expiring until promoted');
    second.lessor.promote(1_000);
    assert.equal(second.lessor.lookup(1n)?.remainingMs, 201_000, 'the checkpointed remainder survives a restart');
    assert.equal(second.lessor.lookup(2n)?.remainingMs, 31_000);
    assert.deepEqual(second.lessor.lookup(1n)?.keys, ['key']);
  });

  test('a stored TTL below the current minimum is raised on restore', () => {
    const first = harness({ minTtlSeconds: 1 });
    first.lessor.grant(1n, 1n);
    const second = harness({ records: first.records, minTtlSeconds: 5 });
    assert.equal(second.lessor.lookup(1n)?.ttlSeconds, 5);
  });
});

describe('replicated lessors across a leader change', () => {
  /** Three members' lessors fed the same committed log; proposals from any of them append to it. */
  function cluster(): {
    members: Lessor[];
    clock: { now: number };
    log: Array<(l: Lessor, member: number) => void>;
    deletes: string[][];
    applyAll: () => Promise<void>;
  } {
    const clock = { now: 0 };
    const log: Array<(l: Lessor, member: number) => void> = [];
    const deletes: string[][] = [[], [], []];
    const pending: Array<() => void> = [];
    const propose = (op: (l: Lessor, member: number) => void): Promise<void> => {
      log.push(op);
      return new Promise((resolve) => pending.push(resolve));
    };
    const members = [0, 1, 2].map(() => {
      const lessor = new Lessor({
        minTtlSeconds: 2, clock: () => clock.now, log: silentLogger,
        proposer: {
          revoke: (id) => propose((l, m) => {
            try {
              l.revoke(id, (keys) => keys.forEach((k) => { deletes[m]!.push(k); l.detach(id, k); }));
            } catch (err) {
              // the second revocation of a lease fails on every member alike, deleting nothing
              assert.ok(isEtcdError(err, 'LeaseNotFound'));
            }
          }),
          checkpoint: (cps) => propose((l) => cps.forEach((c) => l.checkpoint(c.ID, c.remainingTTL))),
        },
      });
      lessor.recover(new MemoryRecords());
      return lessor;
    });
    const applyAll = async (): Promise<void> => {
      while (log.length > 0) {
        const op = log.shift()!;
        members.forEach((l, m) => op(l, m));
      }
      pending.splice(0).forEach((resolve) => resolve());
      await settle();
    };
    return { members, clock, log, deletes, applyAll };
  }

  test('a new leader honours the checkpointed remaining TTL, and the keys are deleted exactly once', async () => {
    const { members: [a, b, c], clock, log, deletes, applyAll } = cluster();
    a!.promote(1_000);
    for (const l of [a!, b!, c!]) {
      l.grant(1n, 600n);
      l.attach(1n, 'k');
    }
    clock.now += leaseLimits.checkpointIntervalMs;
    a!.poll();
    await applyAll();
    assert.ok(log.length === 0 && b!.lookup(1n)?.remainingMs === Infinity, 'followers keep no expiry');
    // the leader fails; after an election, b leads
    a!.demote();
    clock.now += 2_000;
    b!.promote(1_000);
    const remaining = b!.lookup(1n)!.remainingMs;
    assert.ok(remaining <= 302_000 && remaining >= 300_000, `neither renewed nor cut short: ${remaining} ms left`);
    clock.now += remaining - 1;
    b!.poll();
    a!.poll();
    await settle();
    assert.equal(log.length, 0, 'not expired yet');
    clock.now += 1;
    b!.poll();
    a!.poll(); // the old leader proposes nothing
    await settle();
    assert.equal(log.length, 1);
    // an old leader's revocation of the same lease, committed late, changes nothing
    log.push(log[0]!);
    await applyAll();
    assert.deepEqual(deletes, [['k'], ['k'], ['k']]);
    assert.ok([a!, b!, c!].every((l) => !l.exists(1n) && l.leaseOf('k') === 0n));
  });
});
