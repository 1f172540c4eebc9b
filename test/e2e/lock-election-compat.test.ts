/**
 * Issue 5, locks and elections: the v3lock and v3election gRPC services, etcdctl's `lock` and `elect`
 * (which run etcd's concurrency recipes client-side over KV, leases and watch), and the etcd3 npm client's
 * Lock and Election, against every target. Each scenario runs the same way on every target and records a
 * transcript; after normalising what legitimately differs, every transcript must equal the first
 * target's (real etcd by default). What is normalised, and why:
 *  - member and cluster ids, client and peer ports (normalise.ts rules 1-2);
 *  - lease ids the server chose (a session lease granted for lease 0, etcdctl's and etcd3's session
 *    leases): random per server. Each is replaced by <lease-N>, N numbered in order of first appearance,
 *    so two different leases never look alike. Client-chosen ids (1001, 1002, ...) stay as they are.
 * Revisions, raft terms, keys, values, versions, error codes and messages are compared as they are.
 * E2E_TRANSCRIPT=<file> appends every target's normalised transcript to <file>.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { after, before, describe, it as test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import { etcdctlPath, limits, Member, targetsFromEnv, waitFor, withLogsOnFailure, type CtlResult, type Target } from './harness.js';
import { isServiceError } from './grpc-client.js';
import { ConcurrencyRpc } from './concurrency-rpc.js';
import { replaceIdsAndPorts, type TargetFacts } from './normalise.js';
import {
  LockClient, LockRequest, LockResponse, UnlockRequest, UnlockResponse,
} from '../../src/gen/etcd/etcdserver/api/v3lock/v3lockpb/v3lock.js';
import {
  CampaignRequest, CampaignResponse, ElectionClient, LeaderRequest, LeaderResponse, ProclaimRequest, ProclaimResponse,
  ResignRequest, ResignResponse, type LeaderKey,
} from '../../src/gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import { LeaseClient, LeaseTimeToLiveRequest, type LeaseTimeToLiveResponse } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

/** The deadline of calls meant to time out while waiting: long enough to be sure they are waiting. */
const shortDeadlineMs = 600;
const b = (s: string): Buffer => Buffer.from(s);

// ------------------------------------------------------------------------------------------ transcripts

/** One target's record of a scenario, normalised as it is written (see the header comment). */
class Transcript {
  readonly lines: string[] = [];
  readonly #facts: TargetFacts;
  readonly #sessionLeases = new Map<string, string>();

  constructor(facts: TargetFacts) {
    this.#facts = facts;
  }

  /** Marks a lease id the server chose (hex), so it prints as <lease-N>. */
  sessionLease(hex: string): void {
    if (!this.#sessionLeases.has(hex)) this.#sessionLeases.set(hex, `<lease-${this.#sessionLeases.size + 1}>`);
  }

  add(step: string, value: unknown): void {
    this.lines.push(`${step}: ${this.normalise(typeof value === 'string' ? value : JSON.stringify(value))}`);
  }

  async call(step: string, body: () => Promise<unknown>): Promise<void> {
    try {
      this.add(step, await body());
    } catch (e) {
      if (!isServiceError(e)) throw e;
      // A deadline is the client's own verdict; grpc-js's text carries its timings.
      this.add(step, e.code === 4 ? 'error code=4 (deadline exceeded)' : `error code=${e.code} details=${e.details}`);
    }
  }

  normalise(text: string): string {
    let out = replaceIdsAndPorts(text, this.#facts);
    for (const [hex, label] of this.#sessionLeases) {
      const forms = [hex, BigInt(`0x${hex}`).toString(10)];
      out = out.replace(new RegExp(`(?<![0-9a-f])(${forms.join('|')})(?![0-9a-f])`, 'g'), label);
    }
    return out;
  }
}

/** A response as comparable JSON: keys and values as text (so lease ids in keys can be normalised). */
function show(message: unknown): unknown {
  return JSON.parse(JSON.stringify(message, function (this: Record<string, unknown>, key: string, value: unknown) {
    const raw = this[key];
    if (Buffer.isBuffer(raw)) return raw.toString();
    return typeof value === 'bigint' ? value.toString() : value;
  })) as unknown;
}

// ------------------------------------------------------------------------------------------ etcdctl

/** A long-running etcdctl (lock, elect), read while it runs. */
class LiveCtl {
  readonly child: ChildProcess;
  readonly exited: Promise<CtlResult>;
  #out = '';
  #err = '';

  constructor(args: readonly string[], endpoint: string) {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ETCDCTL_API: '3' };
    this.child = spawn(etcdctlPath(), [`--endpoints=${endpoint}`, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (chunk: Buffer) => { this.#out += chunk.toString(); });
    this.child.stderr?.on('data', (chunk: Buffer) => { this.#err += chunk.toString(); });
    this.exited = new Promise((ok) => this.child.once('close', (code, signal) => {
      ok({ code: code ?? (signal === null ? -1 : 128), stdout: this.#out, stdoutBytes: Buffer.from(this.#out), stderr: this.#err });
    }));
  }

  get stdout(): string {
    return this.#out;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitStdout(pattern: RegExp): Promise<string> {
    await waitFor(() => pattern.test(this.#out) || !this.running, { what: `etcdctl output ${pattern}`, timeoutMs: limits.etcdctlTimeoutMs });
    assert.match(this.#out, pattern, `etcdctl exited early: ${this.#err}`);
    return this.#out;
  }

  /** SIGINT, as a user's Ctrl-C: etcdctl releases what it holds and exits. */
  async interrupt(): Promise<CtlResult> {
    this.child.kill('SIGINT');
    return this.exited;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

function ctlLine(r: CtlResult): string {
  return `code=${r.code} stdout=${JSON.stringify(r.stdout)} stderr=${JSON.stringify(r.stderr)}`;
}

// ------------------------------------------------------------------------------------------ sides

interface Side {
  member: Member;
  facts: TargetFacts;
  rpc: ConcurrencyRpc;
}

const targets = targetsFromEnv();
const sides = new Map<string, Side>();
const live: LiveCtl[] = [];

before(async () => {
  await Promise.all(targets.map(async (target) => {
    const member = await Member.start({ target });
    const rpc = new ConcurrencyRpc(member.endpoint);
    const header = (await rpc.rpc.status()).header!;
    const facts = { clusterId: header.clusterId, memberId: header.memberId, clientPort: member.clientPort, peerPort: member.peerPort };
    sides.set(target.label, { member, facts, rpc });
  }));
});

after(async () => {
  for (const ctl of live) ctl.kill();
  for (const side of sides.values()) side.rpc.close();
  await Promise.all([...sides.values()].map((side) => side.member.destroy()));
});

function side(target: Target): Side {
  const found = sides.get(target.label);
  assert.ok(found !== undefined, `${target.label} started`);
  return found;
}

function ctl(s: Side, args: readonly string[]): LiveCtl {
  const c = new LiveCtl(args, s.member.endpoint);
  live.push(c);
  return c;
}

/** Runs `scenario` on every target at once and holds every transcript to the first (the reference). */
async function compareAcrossTargets(scenario: (s: Side, t: Transcript) => Promise<void>): Promise<void> {
  const all = [...sides.values()];
  const transcripts = await withLogsOnFailure(all.map((s) => s.member), () => Promise.all(all.map(async (s) => {
    const t = new Transcript(s.facts);
    await scenario(s, t);
    return t;
  })));
  const [reference, ...others] = transcripts;
  assert.ok(reference !== undefined);
  const file = process.env['E2E_TRANSCRIPT'];
  if (file !== undefined) appendFileSync(file, `${transcripts.map((t, i) => `== ${targets[i]?.label}\n${t.lines.join('\n')}\n`).join('')}`);
  for (const [i, other] of others.entries()) {
    assert.deepEqual(other.lines, reference.lines, `${targets[i + 1]?.label} differs from ${targets[0]?.label}`);
  }
}

/** Learns the session lease in a key `<prefix>/<hex>` the server (or etcdctl) chose. */
function learnKeyLease(t: Transcript, text: string, prefix: string): void {
  for (const m of text.matchAll(new RegExp(`${prefix}/([0-9a-f]+)`, 'g'))) t.sessionLease(m[1]!);
}

// ------------------------------------------------------------------------------------------ gRPC Lock

async function lockScenario(s: Side, t: Transcript): Promise<void> {
  const { rpc } = s;
  for (const ID of [0x1001n, 0x1002n, 0x1003n]) await rpc.rpc.leaseGrant({ ID, TTL: 60n });
  let held!: LockResponse;
  await t.call('lock l1 lease 1001', async () => show((held = await rpc.lock('l1', 0x1001n))));
  await t.call('lock l1 lease 1001 again (same key keeps its place)', async () => show(await rpc.lock('l1', 0x1001n)));
  await t.call('lock l1 with a missing lease', () => rpc.lock('l1', 0x9999n));
  await t.call('lock l1 lease 1002, deadline passes while waiting', () => rpc.lock('l1', 0x1002n, shortDeadlineMs));
  // The waiter's key is withdrawn when its wait fails (etcd 3.4's Mutex.Lock unlocks on a failed wait).
  await waitFor(async () => !(await rpc.keys('l1/')).includes('l1/1002'), { what: 'l1/1002 withdrawn', timeoutMs: 5000 }).catch(() => {});
  t.add('keys after the lock whose deadline passed', await rpc.keys('l1/'));
  const canceled = rpc.cancellableLock('l1', 0x1002n);
  await waitFor(async () => (await rpc.keys('l1/')).includes('l1/1002'), { what: 'l1/1002 queued' });
  canceled.cancel();
  await t.call('lock l1 lease 1002, canceled by the client while waiting', () => canceled.result);
  await waitFor(async () => !(await rpc.keys('l1/')).includes('l1/1002'), { what: 'l1/1002 withdrawn', timeoutMs: 5000 }).catch(() => {});
  t.add('keys after the canceled lock', await rpc.keys('l1/'));
  const waiting = rpc.lock('l1', 0x1003n);
  await waitFor(async () => (await rpc.keys('l1/')).includes('l1/1003'), { what: 'l1/1003 queued' });
  t.add('keys while 1003 waits', await rpc.keys('l1/'));
  await t.call('unlock the holder', async () => show(await rpc.unlock(held.key)));
  await t.call('the waiter gets the lock', async () => show(await waiting));
  await t.call('unlock a key that does not exist', async () => show(await rpc.unlock(b('l1/none'))));
  await t.call('unlock an empty key', async () => show(await rpc.unlock(b(''))));
  await t.call('lock l2 with no lease (a session lease is granted)', async () => {
    const res = await rpc.lock('l2', 0n);
    const hex = res.key.toString().slice('l2/'.length);
    t.sessionLease(hex);
    const ttl = await rpc.timeToLive(BigInt(`0x${hex}`));
    return { lock: show(res), grantedTTL: ttl.grantedTTL.toString() };
  });
  await t.call('lock l3 lease 1001', async () => show(await rpc.lock('l3', 0x1001n)));
  const behind = rpc.lock('l3', 0x1002n);
  await waitFor(async () => (await rpc.keys('l3/')).includes('l3/1002'), { what: 'l3/1002 queued' });
  await t.call('revoke the holder lease', async () => (await rpc.rpc.leaseRevoke({ ID: 0x1001n })).header?.revision.toString());
  await t.call('the waiter gets the lock once the lease is gone', async () => show(await behind));
}

// ------------------------------------------------------------------------------------------ gRPC Election

async function electionScenario(s: Side, t: Transcript): Promise<void> {
  const { rpc } = s;
  for (const ID of [0x2001n, 0x2002n, 0x2003n]) await rpc.rpc.leaseGrant({ ID, TTL: 60n });
  await t.call('leader with no candidate', () => rpc.leader('e1'));
  const observer = rpc.observe('e1');
  let first!: CampaignResponse;
  await t.call('campaign 2001 v1', async () => show((first = await rpc.campaign('e1', 0x2001n, 'v1'))));
  await observer.waitCount(1);
  await t.call('proclaim v2', async () => show(await rpc.proclaim(first.leader, 'v2')));
  await observer.waitCount(2);
  const stale = { ...first.leader!, rev: first.leader!.rev + 100n };
  await t.call('proclaim with a stale leader key', () => rpc.proclaim(stale, 'x'));
  await t.call('proclaim without a leader key', () => rpc.proclaim(undefined, 'x'));
  await t.call('resign with a stale leader key', async () => show(await rpc.resign(stale)));
  await t.call('resign without a leader key', () => rpc.resign(undefined));
  await t.call('leader', async () => show(await rpc.leader('e1')));
  const second = rpc.campaign('e1', 0x2002n, 'w1');
  await waitFor(async () => (await rpc.keys('e1/')).includes('e1/2002'), { what: 'e1/2002 queued' });
  await t.call('campaign 2003, deadline passes while waiting', () => rpc.campaign('e1', 0x2003n, 'z', shortDeadlineMs));
  await waitFor(async () => !(await rpc.keys('e1/')).includes('e1/2003'), { what: 'e1/2003 withdrawn', timeoutMs: 5000 }).catch(() => {});
  t.add('keys after the canceled campaign', await rpc.keys('e1/'));
  await t.call('resign the leader', async () => show(await rpc.resign(first.leader)));
  let next!: CampaignResponse;
  await t.call('the next candidate is elected', async () => show((next = await second)));
  await observer.waitCount(3);
  await t.call('campaign again under the same lease with a new value', async () => show(await rpc.campaign('e1', 0x2002n, 'w2')));
  await observer.waitCount(4);
  await t.call('revoke the leader lease', async () => (await rpc.rpc.leaseRevoke({ ID: next.leader!.lease })).header?.revision.toString());
  await t.call('leader after the revoke', () => rpc.leader('e1'));
  await t.call('campaign with no lease (a session lease is granted)', async () => {
    const res = await rpc.campaign('e1', 0n, 'n1');
    t.sessionLease(res.leader!.lease.toString(16));
    return show(res);
  });
  await observer.waitCount(5);
  observer.cancel();
  t.add('observed', observer.received.map((r) => show(r)));
}

// ------------------------------------------------------------------------------------------ etcdctl

async function etcdctlLockScenario(s: Side, t: Transcript): Promise<void> {
  const holder = ctl(s, ['lock', 'L1']);
  learnKeyLease(t, await holder.waitStdout(/^L1\/[0-9a-f]+\n\n$/), 'L1');
  t.add('lock L1 prints', holder.stdout);
  t.add('keys while held', (await s.member.etcdctl(['get', '--prefix', 'L1/', '--keys-only'])).stdout);
  t.add('lock L1 after SIGINT', ctlLine(await holder.interrupt()));
  t.add('keys after release', (await s.member.etcdctl(['get', '--prefix', 'L1/', '--keys-only'])).stdout);

  const exec = ctl(s, ['lock', 'L2', '--', 'sh', '-c', 'echo "key=$ETCD_LOCK_KEY rev=$ETCD_LOCK_REV"; echo to-stderr >&2']);
  const done = await exec.exited;
  learnKeyLease(t, done.stdout, 'L2');
  t.add('lock L2 command', ctlLine(done));
  t.add('keys after the command', (await s.member.etcdctl(['get', '--prefix', 'L2/', '--keys-only'])).stdout);
  t.add('lock L2 failing command', ctlLine(await ctl(s, ['lock', 'L2', '--', 'sh', '-c', 'exit 3']).exited));
  t.add('lock without a name', ctlLine(await ctl(s, ['lock']).exited));
}

async function etcdctlContentionScenario(s: Side, t: Transcript): Promise<void> {
  const first = ctl(s, ['lock', 'L3']);
  learnKeyLease(t, await first.waitStdout(/^L3\/[0-9a-f]+\n\n$/), 'L3');
  const second = ctl(s, ['lock', 'L3', '--', 'sh', '-c', 'echo "second holds $ETCD_LOCK_KEY"']);
  await waitFor(async () => (await s.member.etcdctl(['get', '--prefix', 'L3/', '--keys-only'])).stdout.split('\n').filter(Boolean).length === 2,
    { what: 'the second etcdctl queued', timeoutMs: limits.etcdctlTimeoutMs });
  const queued = (await s.member.etcdctl(['get', '--prefix', 'L3/', '--keys-only'])).stdout;
  learnKeyLease(t, queued, 'L3');
  t.add('both queued', queued);
  // Its key is in and it watches the holder's: it must still be waiting, having run nothing.
  t.add('second while the first holds', { running: second.running, stdout: second.stdout });
  t.add('first after SIGINT', ctlLine(await first.interrupt()));
  t.add('second after the first released', ctlLine(await second.exited));
  t.add('keys at the end', (await s.member.etcdctl(['get', '--prefix', 'L3/', '--keys-only'])).stdout);
}

async function etcdctlElectScenario(s: Side, t: Transcript): Promise<void> {
  const observer = ctl(s, ['elect', '-l', 'E1']);
  const p1 = ctl(s, ['elect', 'E1', 'p1']);
  learnKeyLease(t, await p1.waitStdout(/^E1\/[0-9a-f]+\np1\n$/), 'E1');
  t.add('elect E1 p1 prints', p1.stdout);
  await observer.waitStdout(/p1\n$/);
  const p2 = ctl(s, ['elect', 'E1', 'p2']);
  await waitFor(async () => (await s.member.etcdctl(['get', '--prefix', 'E1/', '--keys-only'])).stdout.split('\n').filter(Boolean).length === 2,
    { what: 'the second candidate queued', timeoutMs: limits.etcdctlTimeoutMs });
  learnKeyLease(t, (await s.member.etcdctl(['get', '--prefix', 'E1/', '--keys-only'])).stdout, 'E1');
  t.add('second candidate while the first leads', { running: p2.running, stdout: p2.stdout });
  t.add('p1 after SIGINT (resigns)', ctlLine(await p1.interrupt()));
  await p2.waitStdout(/p2\n$/);
  t.add('elect E1 p2 prints', p2.stdout);
  await observer.waitStdout(/p2\n$/);
  // The observer is stopped while it follows p2's key: stopping it while p2 resigns would race its re-read.
  t.add('observer after SIGINT', ctlLine(await observer.interrupt()));
  t.add('p2 after SIGINT', ctlLine(await p2.interrupt()));
  t.add('elect with a proposal and -l', ctlLine(await ctl(s, ['elect', '-l', 'E1', 'p']).exited));
}

// ------------------------------------------------------------------------------------------ tests

describe('v3lock and v3election over gRPC', () => {
  test('Lock and Unlock: responses, ordering, waits, cancel and errors equal the reference', () => compareAcrossTargets(lockScenario));
  test('Campaign, Proclaim, Leader, Observe, Resign: responses and errors equal the reference', () => compareAcrossTargets(electionScenario));
});

describe('etcdctl lock and elect', () => {
  test('lock NAME holds and prints the key; lock NAME cmd runs it with ETCD_LOCK_KEY/REV', () => compareAcrossTargets(etcdctlLockScenario));
  test('a second etcdctl lock waits until the first exits', () => compareAcrossTargets(etcdctlContentionScenario));
  test('elect NAME proposal and elect -l NAME observe the same leaders', () => compareAcrossTargets(etcdctlElectScenario));
});

for (const target of targets) {
  describe(`etcd3 client Lock and Election against ${target.label}`, () => {
    const it = (name: string, body: (client: Etcd3) => Promise<void>): void => {
      test(name, () => withLogsOnFailure([side(target).member], async () => {
        const client = new Etcd3({ hosts: side(target).member.clientUrl });
        try {
          await body(client);
        } finally {
          client.close();
        }
      }));
    };

    it('lock: acquire, a second acquire fails while held, release lets it through', async (client) => {
      const first = await client.lock('x').ttl(10).acquire();
      await assert.rejects(client.lock('x').acquire(), EtcdLockFailedError);
      await first.release();
      const second = await client.lock('x').acquire();
      assert.equal(await client.get('x').exists(), true);
      await second.release();
      assert.equal(await client.get('x').exists(), false);
      assert.equal(await client.lock('x').do(async () => 'inside'), 'inside');
    });

    it('election: campaign, leader, observe, proclaim, resign hands over', async (client) => {
      const election = client.election('e', 5);
      assert.equal(await election.leader(), undefined);
      const a = election.campaign('a');
      await a.wait();
      assert.equal(await election.leader(), 'a');
      const observer = await election.observe();
      assert.equal(observer.leader(), 'a');
      const changes: Array<string | undefined> = [];
      observer.on('change', (v) => changes.push(v));
      const bCampaign = election.campaign('b');
      let bElected = false;
      bCampaign.on('elected', () => { bElected = true; });
      await a.proclaim('a2');
      await waitFor(() => changes.includes('a2'), { what: 'observer sees a2' });
      assert.equal(bElected, false, 'b is not elected while a leads');
      await a.resign();
      await bCampaign.wait();
      await waitFor(() => changes.includes('b'), { what: 'observer sees b' });
      assert.equal(await election.leader(), 'b');
      await bCampaign.resign();
      await observer.cancel();
      assert.equal(await election.leader(), undefined);
    });
  });
}
