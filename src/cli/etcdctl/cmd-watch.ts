/**
 * watch: prints the events on a key, range or prefix as they happen, optionally running a command per event,
 * until the server cancels the watch (exit 5) or the process is interrupted (it dies of SIGINT, as etcdctl).
 */
import { spawnSync } from 'node:child_process';
import { fromKeyRangeEnd, prefixRangeEnd } from '../../client/index.js';
import { errorTable } from '../../base/errors.js';
import { Event_EventType } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import type { WatchCreateRequest, WatchResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CommandSpec } from './command.js';
import { goQuote } from './go-format.js';
import { goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';

/** What a process killed by SIGINT reports: an in-process run that is interrupted returns this code. */
export const interruptedExitCode = 130;

const errBadArgsNum = 'bad number of arguments';
const errBadArgsNumConflictEnv = 'bad number of arguments (found conflicting environment key)';
const errBadArgsNumSeparator = 'bad number of arguments (found separator --, but no commands)';

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);

interface WatchArgs {
  readonly keys: string[];
  readonly exec: string[];
}

/**
 * etcdctl's parseWatchArgs (non-interactive): the words after "watch" in the raw argument list decide
 * where the exec command starts; ETCDCTL_WATCH_KEY/RANGE_END stand in for the key arguments.
 */
export function parseWatchArgs(argv: readonly string[], commandArgs: readonly string[], env: { key: string; range: string }): WatchArgs {
  const at = argv.indexOf('watch');
  const raw = at >= 0 ? argv.slice(at + 1) : ['etcdctl', ...argv];
  let keys = [...commandArgs];
  const sep = raw.indexOf('--');
  if (sep >= 0 && sep === raw.length - 1) throw bad(errBadArgsNumSeparator);
  if (sep < 0 && raw.length < 1 && env.key === '') throw bad(errBadArgsNum);
  if (sep >= 0 && env.key !== '') {
    let r = raw.length - 1;
    for (let w = keys.length - 1; w >= 0 && r >= 0; w--) {
      if (keys[w] === raw[r]) {
        r--;
        continue;
      }
      if (r === sep) throw bad(errBadArgsNumConflictEnv);
    }
  }
  if (sep < 0 && keys.length > 0 && env.key !== '') throw bad(errBadArgsNumConflictEnv);
  const exec = sep >= 0 ? raw.slice(sep + 1) : [];
  if (env.key !== '') keys = [env.key, ...(env.range !== '' ? [env.range] : []), ...keys];
  if (sep < 0) return { keys, exec };
  // The exec words were appended to the positional arguments: cut them off at the first exec word.
  const end = keys.lastIndexOf(raw[sep + 1] ?? '');
  return { keys: keys.slice(0, Math.max(0, end)), exec };
}

function watchRequest(ctx: Context, keys: readonly string[]): Partial<WatchCreateRequest> {
  if (keys.length < 1) throw bad(errBadArgsNum);
  const prefix = ctx.flags.bool('prefix');
  let key: Buffer = Buffer.from(keys[0] ?? '', 'utf8');
  let rangeEnd: Buffer = Buffer.alloc(0);
  if (keys.length === 2) {
    if (prefix) throw bad('`range_end` and `--prefix` are mutually exclusive');
    rangeEnd = Buffer.from(keys[1] ?? '', 'utf8');
  }
  if (prefix) {
    if (key.length === 0) [key, rangeEnd] = [fromKeyRangeEnd(), fromKeyRangeEnd()];
    else rangeEnd = prefixRangeEnd(key);
  }
  return { key, rangeEnd, startRevision: ctx.flags.int64('rev'), prevKv: ctx.flags.bool('prev-kv') };
}

/** clientv3's WatchResponse.Err() text for a canceled watch. */
function cancelText(r: WatchResponse): string {
  if (r.compactRevision !== 0n) return errorTable.Compacted[1];
  if (r.cancelReason === '') return errorTable.FutureRev[1];
  const known = Object.values(errorTable).some((e: readonly [number, string]) => e[1] === r.cancelReason);
  return known ? r.cancelReason : `rpc error: code = FailedPrecondition desc = ${r.cancelReason}`;
}

function isProgressNotify(r: WatchResponse): boolean {
  return r.events.length === 0 && !r.canceled && !r.created && r.compactRevision === 0n && (r.header?.revision ?? 0n) !== 0n;
}

/** Runs the exec command once per event, with the event in its environment; a failure ends etcdctl (exit 1). */
function runForEvents(ctx: Context, r: WatchResponse, exec: readonly string[]): void {
  const [file, ...rest] = exec;
  if (file === undefined) return;
  for (const ev of r.events) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(ctx.env)) if (v !== undefined) env[k] = v;
    env['PATH'] ??= process.env['PATH'] ?? '/usr/bin:/bin';
    env['ETCD_WATCH_REVISION'] = String(r.header?.revision ?? 0n);
    env['ETCD_WATCH_EVENT_TYPE'] = `"${ev.type === Event_EventType.DELETE ? 'DELETE' : 'PUT'}"`;
    env['ETCD_WATCH_KEY'] = goQuote(ev.kv?.key ?? Buffer.alloc(0));
    env['ETCD_WATCH_VALUE'] = goQuote(ev.kv?.value ?? Buffer.alloc(0));
    const result = spawnSync(file, rest, { env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
    if (result.stdout !== null) ctx.io.stdout(result.stdout);
    if (result.stderr !== null) ctx.io.stderr(result.stderr);
    let failure: string | undefined;
    const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') failure = `exec: ${goQuote(file)}: executable file not found in $PATH`;
    else if (result.error !== undefined) failure = result.error.message;
    else if (result.signal !== null) failure = `signal: ${result.signal}`;
    else if (result.status !== 0) failure = `exit status ${result.status}`;
    if (failure !== undefined) throw new ExitError(Exit.Error, undefined, `command [${exec.map((a) => goQuote(a)).join(' ')}] error (${failure})\n`);
  }
}

async function runWatch(ctx: Context): Promise<void> {
  const env = { key: ctx.env['ETCDCTL_WATCH_KEY'] ?? '', range: ctx.env['ETCDCTL_WATCH_RANGE_END'] ?? '' };
  if (env.key === '' && env.range !== '') throw bad(`ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(env.range)}`);
  if (ctx.flags.bool('interactive')) throw new ExitError(Exit.BadFeature, 'interactive watch (-i) is not implemented by etcdctl-ts yet');
  const { keys, exec } = parseWatchArgs(ctx.argv, ctx.args, env);
  ctx.configure();
  const client = ctx.client();
  const request = watchRequest(ctx, keys);
  const printer = ctx.printer();
  try {
    for await (const resp of client.watcher.watch(request, { signal: ctx.interrupt, requireLeader: true })) {
      if (resp.canceled) ctx.io.stderr(`watch was canceled (${cancelText(resp)})\n`);
      if (isProgressNotify(resp)) ctx.io.stdout(`progress notify: ${resp.header?.revision ?? 0n}\n`);
      printer.watch(resp);
      runForEvents(ctx, resp, exec);
    }
  } catch (err) {
    if (err instanceof ExitError) throw err;
    // The stream broke: clientv3 reports it as a canceled response.
    ctx.io.stderr(`watch was canceled (${goErrorText(err)})\n`);
  }
  if (ctx.interrupt.aborted) throw new ExitError(interruptedExitCode);
  throw new ExitError(Exit.Interrupted, 'watch is canceled by the server');
}

export const watchCommand: CommandSpec<Context> = {
  name: 'watch',
  use: 'watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
  short: 'Watches events stream on keys or prefixes',
  flags: [
    { name: 'interactive', shorthand: 'i', kind: 'bool', defaultValue: 'false', usage: 'Interactive mode' },
    { name: 'prefix', kind: 'bool', defaultValue: 'false', usage: 'Watch on a prefix if prefix is set' },
    { name: 'rev', kind: 'int64', defaultValue: '0', usage: 'Revision to start watching' },
    { name: 'prev-kv', kind: 'bool', defaultValue: 'false', usage: 'get the previous key-value pair before the event happens' },
  ],
  run: runWatch,
};
