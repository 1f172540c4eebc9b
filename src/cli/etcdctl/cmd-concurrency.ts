/**
 * lock and elect, over the server's Lock and Election services with a session lease kept alive here (the
 * same keys and lease binding as etcdctl's client-side recipes). Both hold until SIGINT/SIGTERM, then
 * release (unlock, resign) and exit 0, as etcdctl does.
 */
import { spawnSync } from 'node:child_process';
import type { EtcdClient } from '../../client/index.js';
import type { LeaderKey } from '../../gen/etcd/etcdserver/api/v3election/v3electionpb/v3election.js';
import type { KeyValue } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import type { ResponseHeader } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CommandSpec } from './command.js';
import { goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';
import { goQuote } from './go-format.js';

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);
const failed = (message: string): ExitError => new ExitError(Exit.Error, message);

/** clientv3/concurrency's default session TTL, in seconds. */
const sessionTtlDefault = 60n;

interface Session {
  readonly lease: bigint;
  /** Resolves when the lease could no longer be kept alive (not when the session is stopped). */
  readonly expired: Promise<void>;
  stop(): void;
}

async function openSession(client: EtcdClient, ttl: bigint): Promise<Session> {
  const grant = await client.lease.grant({ TTL: ttl });
  const stopper = new AbortController();
  const expired = (async () => {
    try {
      for await (const _ of client.keepAlives.keepAlive(grant.ID, { signal: stopper.signal })) {
        // Each renewal just keeps the session; nothing to do with it.
      }
    } catch {
      // A broken stream ends the session like an expiry.
    }
    if (stopper.signal.aborted) await new Promise<never>(() => undefined);
  })();
  return { lease: grant.ID, expired, stop: () => stopper.abort() };
}

/** Resolves with 'interrupted' on SIGINT/SIGTERM (or the test's signal), else with what `other` resolves to. */
function interruptedOr<T>(signal: AbortSignal, other: Promise<T>): Promise<T | 'interrupted'> {
  if (signal.aborted) return Promise.resolve('interrupted');
  return Promise.race([other, new Promise<'interrupted'>((resolve) => signal.addEventListener('abort', () => resolve('interrupted'), { once: true }))]);
}

function printKey(ctx: Context, header: ResponseHeader | undefined, kvs: KeyValue[]): void {
  ctx.printer().get({ header, kvs, more: false, count: BigInt(kvs.length) });
}

/** Runs the command with the lock's key and revision in its environment; its output is passed through. */
function runHolding(ctx: Context, argv: readonly string[], lock: { key: Buffer; revision: bigint }): string | undefined {
  const [file, ...rest] = argv;
  if (file === undefined) return undefined;
  const env: Record<string, string> = { ETCD_LOCK_KEY: lock.key.toString('latin1'), ETCD_LOCK_REV: String(lock.revision) };
  for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
  env['PATH'] ??= process.env['PATH'] ?? '/usr/bin:/bin';
  const result = spawnSync(file, rest, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  if (result.stdout !== null) ctx.io.stdout(result.stdout);
  if (result.stderr !== null) ctx.io.stderr(result.stderr);
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return `exec: ${goQuote(file)}: executable file not found in $PATH`;
  if (result.error !== undefined) return result.error.message;
  if (result.signal !== null) return `signal: ${result.signal}`;
  return result.status === 0 ? undefined : `exit status ${result.status}`;
}

async function runLock(ctx: Context): Promise<void> {
  const [name, ...command] = ctx.args;
  if (name === undefined) throw bad('lock takes a lock name argument and an optional command to execute');
  ctx.configure();
  const client = ctx.client();
  const interrupt = ctx.trapInterrupts();
  const session = await openSession(client, ctx.flags.int64('ttl')).catch((err: unknown) => {
    throw failed(goErrorText(err));
  });
  try {
    const locked = await client.locks.lock({ name: Buffer.from(name, 'utf8'), lease: session.lease }, { signal: interrupt }).catch((err: unknown) => {
      throw failed(interrupt.aborted ? 'context canceled' : goErrorText(err));
    });
    if (command.length > 0) {
      const failure = runHolding(ctx, command, { key: locked.key, revision: locked.header?.revision ?? 0n });
      await client.locks.unlock(locked.key).catch((err: unknown) => {
        if (failure === undefined) throw failed(goErrorText(err));
      });
      if (failure !== undefined) throw failed(failure);
      return;
    }
    const got = await client.kv.range({ key: locked.key }).catch((err: unknown) => {
      throw failed(goErrorText(err));
    });
    if (got.kvs.length === 0) throw failed('lock lost on init');
    ctx.printer().get(got);
    const outcome = await interruptedOr(interrupt, session.expired);
    if (outcome !== 'interrupted') throw failed('session expired');
    await client.locks.unlock(locked.key).catch((err: unknown) => {
      throw failed(goErrorText(err));
    });
  } finally {
    session.stop();
  }
}

async function observe(ctx: Context, client: EtcdClient, name: string, interrupt: AbortSignal): Promise<void> {
  try {
    for await (const resp of client.elections.observe(Buffer.from(name, 'utf8'), { signal: interrupt })) {
      printKey(ctx, resp.header, resp.kv === undefined ? [] : [resp.kv]);
    }
  } catch {
    // The stream broke: reported below as a lost observer.
  }
  if (!interrupt.aborted) throw failed('elect: observer lost');
}

async function campaign(ctx: Context, client: EtcdClient, election: { name: string; proposal: string }, interrupt: AbortSignal): Promise<void> {
  const session = await openSession(client, sessionTtlDefault).catch((err: unknown) => {
    throw failed(goErrorText(err));
  });
  try {
    const req = { name: Buffer.from(election.name, 'utf8'), lease: session.lease, value: Buffer.from(election.proposal, 'utf8') };
    const won = await client.elections.campaign(req, { signal: interrupt }).catch((err: unknown) => {
      throw failed(interrupt.aborted ? 'context canceled' : goErrorText(err));
    });
    const leader: LeaderKey | undefined = won.leader;
    if (leader === undefined) throw failed('elect: campaign returned no leader key');
    const got = await client.kv.range({ key: leader.key }).catch((err: unknown) => {
      throw failed(goErrorText(err));
    });
    ctx.printer().get(got);
    const outcome = await interruptedOr(interrupt, session.expired);
    if (outcome !== 'interrupted') throw failed('elect: session expired');
    await client.elections.resign(leader).catch((err: unknown) => {
      throw failed(goErrorText(err));
    });
  } finally {
    session.stop();
  }
}

async function runElect(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1 && ctx.args.length !== 2) {
    throw bad('elect takes one election name argument and an optional proposal argument');
  }
  ctx.configure();
  const client = ctx.client();
  const listen = ctx.flags.bool('listen');
  const [name = '', proposal] = ctx.args;
  if (proposal === undefined) {
    if (!listen) throw bad('no proposal argument but -l not set');
    await observe(ctx, client, name, ctx.trapInterrupts());
    return;
  }
  if (listen) throw bad('proposal given but -l is set');
  await campaign(ctx, client, { name, proposal }, ctx.trapInterrupts());
}

export const lockCommand: CommandSpec<Context> = {
  name: 'lock',
  use: 'lock <lockname> [exec-command arg1 arg2 ...]',
  short: 'Acquires a named lock',
  flags: [{ name: 'ttl', kind: 'int64', defaultValue: '10', usage: 'timeout for session' }],
  run: runLock,
};

export const electCommand: CommandSpec<Context> = {
  name: 'elect',
  use: 'elect <election-name> [proposal]',
  short: 'Observes and participates in leader election',
  flags: [{ name: 'listen', shorthand: 'l', kind: 'bool', defaultValue: 'false', usage: 'observation mode' }],
  run: runElect,
};
