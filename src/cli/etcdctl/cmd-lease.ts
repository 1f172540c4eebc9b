/** lease grant, revoke, timetolive, list and keep-alive. */
import type { CommandSpec } from './command.js';
import { GoParseError, parseInt64 } from './go-parse.js';
import { exitCodeFor, goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';
import { SimplePrinter } from './printer-simple.js';
import { leaseHex } from './printer.js';
import { interruptedExitCode } from './cmd-watch.js';

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);

/** A lease id argument: hexadecimal, as etcdctl prints them. */
export function leaseFromArg(arg: string): bigint {
  try {
    return parseInt64(arg, 16);
  } catch (err) {
    if (!(err instanceof GoParseError)) throw err;
    throw bad(`bad lease ID arg (${err.message}), expecting ID in Hex`);
  }
}

/** etcdctl's ExitWithError(code, err) for a failed client call. */
async function mustWith<T>(code: number, call: Promise<T>, wrap: (text: string) => string = (t) => t): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new ExitError(exitCodeFor(err, code), wrap(goErrorText(err)));
  }
}

async function runGrant(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('lease grant command needs TTL argument');
  let ttl: bigint;
  try {
    ttl = parseInt64(ctx.args[0] ?? '', 10);
  } catch (err) {
    if (!(err instanceof GoParseError)) throw err;
    throw bad(`bad TTL (${err.message})`);
  }
  ctx.configure();
  const call = ctx.client().lease.grant({ TTL: ttl }, { timeoutMs: ctx.commandTimeoutMs() });
  ctx.printer().grant(await mustWith(Exit.Error, call, (t) => `failed to grant lease (${t})`));
}

async function runRevoke(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('lease revoke command needs 1 argument');
  const id = leaseFromArg(ctx.args[0] ?? '');
  ctx.configure();
  const call = ctx.client().lease.revoke({ ID: id }, { timeoutMs: ctx.commandTimeoutMs() });
  ctx.printer().revoke(id, await mustWith(Exit.Error, call, (t) => `failed to revoke lease (${t})`));
}

async function runTimeToLive(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('lease timetolive command needs lease ID as argument');
  ctx.configure();
  const keys = ctx.flags.bool('keys');
  const client = ctx.client();
  const id = leaseFromArg(ctx.args[0] ?? '');
  // etcdctl gives this call no deadline (context.TODO); the client needs one, so a long one.
  const resp = await mustWith(Exit.BadConnection, client.lease.timeToLive({ ID: id, keys }, { timeoutMs: noDeadlineMs }));
  ctx.printer().timeToLive(resp, keys);
}

const noDeadlineMs = 24 * 60 * 60 * 1000;

async function runList(ctx: Context): Promise<void> {
  ctx.configure();
  const resp = await mustWith(Exit.BadConnection, ctx.client().lease.leases({ timeoutMs: noDeadlineMs }));
  ctx.printer().leases(resp);
}

async function runKeepAlive(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('lease keep-alive command needs lease ID as argument');
  const id = leaseFromArg(ctx.args[0] ?? '');
  ctx.configure();
  const client = ctx.client();
  const printer = ctx.printer();
  if (ctx.flags.bool('once')) {
    printer.keepAlive(await mustWith(Exit.BadConnection, client.keepAlives.once(id)));
    return;
  }
  try {
    for await (const resp of client.keepAlives.keepAlive(id, { signal: ctx.interrupt })) printer.keepAlive(resp);
  } catch (err) {
    if (err instanceof ExitError) throw err;
    // clientv3 closes the keep-alive channel on a stream failure; the command then ends as for an expiry.
  }
  if (ctx.interrupt.aborted) throw new ExitError(interruptedExitCode);
  if (printer instanceof SimplePrinter) ctx.io.stdout(`lease ${leaseHex(id)} expired or revoked.\n`);
}

export const leaseCommand: CommandSpec<Context> = {
  name: 'lease',
  use: 'lease <subcommand>',
  short: 'Lease related commands',
  children: [
    { name: 'grant', use: 'grant <ttl>', short: 'Creates leases', run: runGrant },
    { name: 'revoke', use: 'revoke <leaseID>', short: 'Revokes leases', run: runRevoke },
    {
      name: 'timetolive',
      use: 'timetolive <leaseID> [options]',
      short: 'Get lease information',
      flags: [{ name: 'keys', kind: 'bool', defaultValue: 'false', usage: 'Get keys attached to this lease' }],
      run: runTimeToLive,
    },
    { name: 'list', use: 'list', short: 'List all active leases', run: runList },
    {
      name: 'keep-alive',
      use: 'keep-alive [options] <leaseID>',
      short: 'Keeps leases alive (renew)',
      flags: [{ name: 'once', kind: 'bool', defaultValue: 'false', usage: 'Resets the keep-alive time to its original value and exits immediately' }],
      run: runKeepAlive,
    },
  ],
};

