/**
 * watch, lease, alarm and defrag of etcdctl-ts against the real etcdctl 3.4, each against its own twin of the
 * same real etcd state. Commands that run until interrupted are stopped once both have printed what is
 * expected: the real etcdctl by SIGINT, ours through its interrupt signal.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { EtcdClient } from '../../client/index.js';
import { etcdctlBinary, haveRealEtcd } from '../../client/testing-real-etcd.js';
import { compareAll, mapVars, normalizeCommon, startTwins, type Step, type Twins } from './compat-harness.js';
import { BufferIo } from './io.js';
import { runEtcdctl } from './run.js';
import { interruptedExitCode } from './cmd-watch.js';

const skip = haveRealEtcd() ? false : 'the real etcd and etcdctl (/usr/bin/etcd, /usr/bin/etcdctl) are not installed';
const formats = ['simple', 'json', 'fields', 'protobuf', 'table'] as const;
const liveDeadlineMs = 10_000;

/**
 * ETCDCTL_COMPAT_SERVER=ours runs etcdctl-ts against etcd-ts (bin/etcd-ts) while the real etcdctl runs
 * against the real etcd: the same comparison then also holds the server to etcd's behaviour.
 */
const oursBinary = process.env['ETCDCTL_COMPAT_SERVER'] === 'ours' ? fileURLToPath(new URL('../../../../bin/etcd-ts', import.meta.url)) : undefined;

let twins: Twins;
let clients: { real: EtcdClient; ours: EtcdClient };

before(async () => {
  if (skip !== false) return;
  twins = await startTwins(oursBinary !== undefined ? { oursBinary } : {});
  clients = {
    real: new EtcdClient({ endpoints: [twins.real.endpoint] }),
    ours: new EtcdClient({ endpoints: [twins.ours.endpoint] }),
  };
});

after(async () => {
  if (skip !== false) return;
  clients.real.close();
  clients.ours.close();
  await Promise.all([twins.real.stop(), twins.ours.stop()]);
});

async function expectSame(steps: readonly Step[]): Promise<void> {
  const failures = await compareAll(twins, steps);
  assert.equal(failures.length, 0, `${failures.length} of ${steps.length} commands differ:\n${failures.join('\n')}`);
}

/** The same change on both twins, so they stay at the same revision. */
async function onBoth(change: (c: EtcdClient) => Promise<unknown>): Promise<void> {
  await change(clients.real);
  await change(clients.ours);
}

async function revision(): Promise<bigint> {
  const resp = await clients.real.kv.range({ key: 'x' });
  return resp.header?.revision ?? 0n;
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + liveDeadlineMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs a long-running command on both sides until both outputs satisfy `ready`, then interrupts them.
 * The real etcdctl dies of the signal; ours returns the exit code a shell reports for that.
 */
interface LiveOptions {
  readonly normalize?: (text: string) => string;
  /** The command catches SIGINT, releases what it holds and exits 0 (lock, elect). */
  readonly trapped?: boolean;
}

async function live(args: readonly string[], ready: (out: Buffer) => boolean, options: LiveOptions = {}): Promise<void> {
  const normalize = options.normalize ?? ((t: string): string => t);
  const subst = (vars: Record<string, string>) => (a: string): string => Object.entries(vars).reduce((t, [k, v]) => t.replaceAll(`{${k}}`, v), a);
  const real = spawn(etcdctlBinary, ['--endpoints', twins.real.endpoint, ...args.map(subst(twins.vars.real))], { env: { PATH: process.env['PATH'] ?? '/usr/bin', ETCDCTL_API: '3' } });
  const realOut: Buffer[] = [];
  const realErr: Buffer[] = [];
  real.stdout.on('data', (b: Buffer) => realOut.push(b));
  real.stderr.on('data', (b: Buffer) => realErr.push(b));
  const realExit = new Promise<string>((resolve) => real.on('close', (code, signal) => resolve(signal ?? String(code))));
  const io = new BufferIo();
  const interrupt = new AbortController();
  const oursExit = runEtcdctl(['--endpoints', twins.ours.endpoint, ...args.map(subst(twins.vars.ours))], { io, env: { ETCDCTL_API: '3' }, interrupt: interrupt.signal });
  try {
    await until(() => ready(Buffer.concat(realOut)) && ready(io.out), `${args.join(' ')} to print its output`);
  } finally {
    real.kill('SIGINT');
    interrupt.abort();
  }
  assert.equal(await realExit, options.trapped === true ? '0' : 'SIGINT', `how real etcdctl ${args.join(' ')} ended`);
  assert.equal(await oursExit, options.trapped === true ? 0 : interruptedExitCode);
  const text = (b: Buffer, ours: boolean): string => {
    const t = normalizeCommon(b.toString('latin1'));
    return normalize(ours ? mapVars(t.replaceAll(twins.ours.endpoint, twins.real.endpoint), twins.vars) : t);
  };
  assert.equal(text(io.out, true), text(Buffer.concat(realOut), false), `stdout of ${args.join(' ')}`);
  assert.equal(text(io.err, true), text(Buffer.concat(realErr), false), `stderr of ${args.join(' ')}`);
}

/** Whether a watch's output in this format shows the key (json has it in base64). */
const shows = (format: string, key: string) => (out: Buffer): boolean =>
  out.toString('latin1').includes(format === 'json' ? Buffer.from(key).toString('base64') : key);

const firstLine = (text: string): string => text.split('\n')[0] ?? '';

test('watch: history from a revision in every format, prev-kv, ranges, prefixes, events as they happen', { skip }, async () => {
  await expectSame([
    { args: ['put', 'w/a', '1'] },
    { args: ['put', 'w/b', '2'] },
    { args: ['put', 'w/a', '3'] },
    { args: ['del', 'w/b'] },
    { args: ['put', 'w/end', 'ctl\t"q"\u0001'] },
  ]);
  const from = (await revision()) - 4n;
  for (const f of formats.filter((x) => x !== 'table')) {
    await live(['watch', '--rev', String(from), '--prefix', 'w/', '--prev-kv', '-w', f], shows(f, 'w/end'));
  }
  // Its last event is the delete of w/b.
  await live(['watch', '--rev', String(from), 'w/a', 'w/c'], (o) => o.toString().includes('DELETE\nw/b\n\n'));
  await live(['watch', '--rev', String(from), 'w/end', '--hex'], (o) => o.toString().includes('\\x77\\x2f\\x65'));
  // Events that happen while the watch is open, from a revision not yet written.
  const next = (await revision()) + 1n;
  const watching = live(['watch', '--rev', String(next), 'w/live', '-w', 'json'], shows('json', 'w/live'));
  await onBoth((c) => c.kv.put({ key: 'w/live', value: 'now' }));
  await watching;
  // Two events of three lines each, and the command's line for each.
  await live(['watch', '--rev', String(from), 'w/a', '--', 'sh', '-c', 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_REVISION"'], (o) =>
    o.toString().endsWith('\n') && o.toString().split('\n').length === 9,
  );
});

test('watch: argument errors, unsupported format, failing exec command, compacted revision', { skip }, async () => {
  await expectSame([
    { args: ['watch'] },
    { args: ['watch', '--rev', '1'] },
    { args: ['watch', 'a', 'b', '--prefix'] },
    { args: ['watch', 'a', '--'] },
    { args: ['watch', 'a'], env: { ETCDCTL_WATCH_RANGE_END: 'z' } },
    { args: ['watch', 'a'], env: { ETCDCTL_WATCH_KEY: 'w/a' } },
    { args: ['watch', '--rev', '2', 'w/a', '-w', 'table'] },
    { args: ['watch', '--rev', '2', 'w/a', '--', 'false'] },
    { args: ['watch', '--rev', '2', 'w/a', '--', 'no-such-command-x'] },
    { args: ['watch', '--rev', '2', '--', 'false'], env: { ETCDCTL_WATCH_KEY: 'w/a' } },
    { args: ['watch', '--rev', '2', 'w/a', '-w', 'bogus'] },
    { args: ['watch', '--help'], endpoints: false },
  ]);
  const rev = await revision();
  await expectSame([{ args: ['compaction', String(rev)] }, ...formats.map((f) => ({ args: ['watch', '--rev', '2', 'w/a', '-w', f] }))]);
});

/** Remaining TTLs tick down on their own clock on each side. */
const normalizeRemaining = (t: string): string =>
  t.replace(/remaining\(\d+s\)/g, 'remaining(<ttl>s)').replace(/"ttl":\d+/g, '"ttl":<ttl>').replace(/"TTL" : \d+/g, '"TTL" : <ttl>');

/** New lease ids are each server's own. */
// Ids print as %x: a leading zero nibble makes one 15 digits (or fewer) long.
const normalizeIds = (t: string): string => t.replace(/\b[0-9a-f]{13,16}\b/g, '<id>').replace(/\b\d{17,20}\b/g, '<n>');

async function grantOnBoth(name: string, ttl: bigint): Promise<void> {
  for (const side of ['real', 'ours'] as const) {
    const resp = await clients[side].lease.grant({ TTL: ttl });
    twins.vars[side][name] = resp.ID.toString(16).padStart(16, '0');
  }
}

test('lease: grant, timetolive, list, keep-alive and revoke in every format, and their errors', { skip }, async () => {
  await grantOnBoth('LEASE', 600n);
  for (const f of formats) await grantOnBoth(`REVOKE_${f}`, 600n);
  for (const side of ['real', 'ours'] as const) {
    await clients[side].kv.put({ key: 'leased', value: 'v', lease: BigInt(`0x${twins.vars[side]['LEASE'] ?? '0'}`) });
  }
  await expectSame([
    ...formats.flatMap((f): Step[] => [
      { args: ['lease', 'timetolive', '{LEASE}', '--keys', '-w', f], normalize: normalizeRemaining },
      { args: ['lease', 'timetolive', '{LEASE}', '-w', f], normalize: normalizeRemaining },
      // The server lists leases in its map's order.
      { args: ['lease', 'list', '-w', f], normalize: normalizeIds },
      { args: ['lease', 'keep-alive', '--once', '{LEASE}', '-w', f] },
      { args: ['lease', 'revoke', `{REVOKE_${f}}`, '-w', f] },
      { args: ['lease', 'revoke', '{REVOKE_simple}', '-w', f] },
      { args: ['lease', 'timetolive', '{REVOKE_simple}', '-w', f] },
      { args: ['lease', 'keep-alive', '{REVOKE_simple}', '-w', f] },
      { args: ['lease', 'keep-alive', '--once', '{REVOKE_simple}', '-w', f] },
      { args: ['lease', 'grant', '30', '-w', f], normalize: normalizeIds },
    ]),
    { args: ['lease', 'grant', '0'], normalize: normalizeIds },
    ...[['grant'], ['grant', 'x'], ['grant', '1', '2'], ['grant', '-5'], ['grant', '99999999999'], ['revoke'], ['revoke', 'zz'], ['timetolive'], ['timetolive', 'zz']].map(
      (a) => ({ args: ['lease', ...a] }),
    ),
    ...[['keep-alive'], ['keep-alive', 'zz'], ['list', 'extra']].map((a) => ({ args: ['lease', ...a], normalize: normalizeIds })),
    ...[['lease'], ['lease', 'grant'], ['lease', 'timetolive'], ['lease', 'keep-alive']].map((p) => ({ args: [...p, '--help'], endpoints: false as const })),
  ]);
  await live(['lease', 'keep-alive', '{LEASE}'], (o) => o.toString().includes('keepalived'));
  await live(['lease', 'keep-alive', '{LEASE}', '-w', 'json'], (o) => o.toString().includes('"TTL"'));
});

test('alarm list/disarm and defrag', { skip }, async () => {
  await expectSame([
    ...formats.flatMap((f): Step[] => [
      { args: ['alarm', 'list', '-w', f], normalize: firstLine },
      { args: ['alarm', 'disarm', '-w', f], normalize: firstLine },
    ]),
    { args: ['alarm', 'list', 'x'] },
    { args: ['alarm', 'disarm', 'x'] },
    { args: ['defrag'] },
    { args: ['defrag', '--cluster'] },
    { args: ['defrag'], endpoints: '{DEAD}' },
    ...[['alarm'], ['alarm', 'list'], ['defrag']].map((p) => ({ args: [...p, '--help'], endpoints: false as const })),
  ]);
});

test('lock and elect: hold until interrupted, run a command while holding, observe a leader, errors', { skip }, async () => {
  await live(['lock', 'cli-lock'], (o) => o.toString().includes('cli-lock/'), { normalize: normalizeIds, trapped: true });
  // In json the key (which ends in the lease id) is base64.
  const maskKey = (t: string): string => normalizeIds(t).replace(/"key":"[^"]*"/g, '"key":<key>');
  await live(['lock', 'cli-lock', '-w', 'json'], (o) => o.toString().includes('"kvs"'), { normalize: maskKey, trapped: true });
  await live(['elect', 'cli-election', 'proposal-1'], (o) => o.toString().includes('proposal-1'), { normalize: normalizeIds, trapped: true });
  await expectSame([
    { args: ['lock', 'cli-lock', 'sh', '-c', 'echo "held $ETCD_LOCK_KEY"'], normalize: normalizeIds },
    { args: ['lock', 'cli-lock', 'false'] },
    { args: ['lock', 'cli-lock', 'no-such-command-x'] },
    { args: ['lock'] },
    { args: ['elect'] },
    { args: ['elect', 'e'] },
    { args: ['elect', '-l', 'e', 'p'] },
    { args: ['elect', 'a', 'b', 'c'] },
    ...[['lock'], ['elect']].map((p) => ({ args: [...p, '--help'], endpoints: false as const })),
  ]);
  // A leader elected by another client, seen by an observer.
  for (const side of ['real', 'ours'] as const) {
    const lease = await clients[side].lease.grant({ TTL: 600n });
    await clients[side].elections.campaign({ name: Buffer.from('cli-observed'), lease: lease.ID, value: Buffer.from('the-leader') });
  }
  await live(['elect', '-l', 'cli-observed'], (o) => o.toString().includes('the-leader'), { normalize: normalizeIds, trapped: true });
});
