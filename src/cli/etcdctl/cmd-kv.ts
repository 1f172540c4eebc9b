/** get, put, del and compaction: their flags, how arguments become requests, and what they print. */
import type { DeleteRangeInput, PutInput, RangeInput } from '../../client/index.js';
import { fromKeyRangeEnd, prefixRangeEnd } from '../../client/index.js';
import { RangeRequest_SortOrder, RangeRequest_SortTarget } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CommandSpec } from './command.js';
import type { FlagSet, FlagSpec } from './flags.js';
import { goQuote } from './go-format.js';
import { GoParseError, parseInt64 } from './go-parse.js';
import { exitCodeFor, goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';
import { SimplePrinter } from './printer-simple.js';

/** How argument text becomes key bytes: UTF-8 for the command line, raw bytes for txn input. */
export type ToBytes = (s: string) => Buffer;

export interface InputOptions {
  readonly flags: FlagSet;
  readonly toBytes: ToBytes;
}
export const utf8Bytes: ToBytes = (s) => Buffer.from(s, 'utf8');

export const getFlags: readonly FlagSpec[] = [
  { name: 'consistency', kind: 'string', defaultValue: 'l', usage: 'Linearizable(l) or Serializable(s)' },
  { name: 'order', kind: 'string', defaultValue: '', usage: 'Order of results; ASCEND or DESCEND (ASCEND by default)' },
  { name: 'sort-by', kind: 'string', defaultValue: '', usage: 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION' },
  { name: 'limit', kind: 'int64', defaultValue: '0', usage: 'Maximum number of results' },
  { name: 'prefix', kind: 'bool', defaultValue: 'false', usage: 'Get keys with matching prefix' },
  { name: 'from-key', kind: 'bool', defaultValue: 'false', usage: 'Get keys that are greater than or equal to the given key using byte compare' },
  { name: 'rev', kind: 'int64', defaultValue: '0', usage: 'Specify the kv revision' },
  { name: 'keys-only', kind: 'bool', defaultValue: 'false', usage: 'Get only the keys' },
  { name: 'print-value-only', kind: 'bool', defaultValue: 'false', usage: 'Only write values when using the "simple" output format' },
];

export const putFlags: readonly FlagSpec[] = [
  { name: 'lease', kind: 'string', defaultValue: '0', usage: 'lease ID (in hexadecimal) to attach to the key' },
  { name: 'prev-kv', kind: 'bool', defaultValue: 'false', usage: 'return the previous key-value pair before modification' },
  { name: 'ignore-value', kind: 'bool', defaultValue: 'false', usage: 'updates the key using its current value' },
  { name: 'ignore-lease', kind: 'bool', defaultValue: 'false', usage: 'updates the key using its current lease' },
];

export const delFlags: readonly FlagSpec[] = [
  { name: 'prefix', kind: 'bool', defaultValue: 'false', usage: 'delete keys with matching prefix' },
  { name: 'prev-kv', kind: 'bool', defaultValue: 'false', usage: 'return deleted key-value pairs' },
  { name: 'from-key', kind: 'bool', defaultValue: 'false', usage: 'delete keys that are greater than or equal to the given key using byte compare' },
];

const putLong = `
Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`;

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);
const unsupported = (message: string): ExitError => new ExitError(Exit.BadFeature, message);

const sortTargets: Readonly<Record<string, RangeRequest_SortTarget>> = {
  CREATE: RangeRequest_SortTarget.CREATE,
  KEY: RangeRequest_SortTarget.KEY,
  MODIFY: RangeRequest_SortTarget.MOD,
  VALUE: RangeRequest_SortTarget.VALUE,
  VERSION: RangeRequest_SortTarget.VERSION,
};

function sortOf(flags: FlagSet): { sortOrder: RangeRequest_SortOrder; sortTarget: RangeRequest_SortTarget } {
  const orderText = flags.string('order');
  let sortOrder = RangeRequest_SortOrder.NONE;
  const order = orderText.toUpperCase();
  if (order === 'ASCEND') sortOrder = RangeRequest_SortOrder.ASCEND;
  else if (order === 'DESCEND') sortOrder = RangeRequest_SortOrder.DESCEND;
  else if (order !== '') throw unsupported(`bad sort order ${orderText}`);
  const targetText = flags.string('sort-by');
  const target = targetText.toUpperCase();
  const sortTarget = target === '' ? RangeRequest_SortTarget.KEY : sortTargets[target];
  if (sortTarget === undefined) throw unsupported(`bad sort target ${targetText}`);
  // Keys already come in ascending order; asking for it explicitly would only make the server sort.
  if (sortTarget === RangeRequest_SortTarget.KEY && sortOrder === RangeRequest_SortOrder.ASCEND) {
    return { sortOrder: RangeRequest_SortOrder.NONE, sortTarget };
  }
  return { sortOrder, sortTarget };
}

/** The key range of get and del: [key, end), a prefix, or everything from the key on. */
function keyRange(args: readonly string[], { flags, toBytes }: InputOptions): { key: Buffer; rangeEnd: Buffer } {
  let key = toBytes(args[0] ?? '');
  let rangeEnd = args.length > 1 ? toBytes(args[1] ?? '') : Buffer.alloc(0);
  if (flags.bool('prefix')) {
    if (key.length === 0) [key, rangeEnd] = [fromKeyRangeEnd(), fromKeyRangeEnd()];
    else rangeEnd = prefixRangeEnd(key);
  }
  if (flags.bool('from-key')) {
    if (key.length === 0) key = fromKeyRangeEnd();
    rangeEnd = fromKeyRangeEnd();
  }
  return { key, rangeEnd };
}

function checkRangeFlags(args: readonly string[], flags: FlagSet): void {
  if (flags.bool('prefix') && flags.bool('from-key')) {
    throw bad('`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  if (args.length > 1 && (flags.bool('prefix') || flags.bool('from-key'))) {
    throw bad('too many arguments, only accept one argument when `--prefix` or `--from-key` is set');
  }
}

/** get's arguments as a range request, with etcdctl's checks in its order. */
export function rangeInput(args: readonly string[], options: InputOptions): RangeInput {
  const { flags } = options;
  if (args.length === 0) throw bad('get command needs one argument as key and an optional argument as range_end');
  if (flags.bool('prefix') && flags.bool('from-key')) {
    throw bad('`--prefix` and `--from-key` cannot be set at the same time, choose one');
  }
  const consistency = flags.string('consistency');
  if (consistency !== 's' && consistency !== 'l') throw unsupported(`unknown consistency flag ${goQuote(consistency)}`);
  checkRangeFlags(args, flags);
  const rev = flags.int64('rev');
  return {
    ...keyRange(args, options),
    limit: flags.int64('limit'),
    revision: rev > 0n ? rev : 0n,
    ...sortOf(flags),
    serializable: consistency === 's',
    keysOnly: flags.bool('keys-only'),
  };
}

export function deleteInput(args: readonly string[], options: InputOptions): DeleteRangeInput {
  const { flags } = options;
  if (args.length === 0 || args.length > 2) throw bad('del command needs one argument as key and an optional argument as range_end');
  checkRangeFlags(args, flags);
  return { ...keyRange(args, options), prevKv: flags.bool('prev-kv') };
}

/** put's arguments as a put request; `stdin` supplies the value when only the key is given. */
export function putInput(args: readonly string[], options: InputOptions & { stdin: () => Buffer }): PutInput {
  const { flags, toBytes, stdin } = options;
  const needs = 'put command needs 1 argument and input from stdin or 2 arguments';
  if (args.length === 0) throw bad(needs);
  const ignoreValue = flags.bool('ignore-value');
  if (ignoreValue && args.length > 1) throw bad("put command needs only 1 argument when 'ignore-value' is set");
  let value: Buffer = Buffer.alloc(0);
  if (!ignoreValue) {
    value = args.length > 1 ? toBytes(args[1] ?? '') : stdin();
    if (value.length === 0 && args.length < 2) throw bad(needs);
  }
  let lease: bigint;
  try {
    lease = parseInt64(flags.string('lease'), 16);
  } catch (err) {
    if (!(err instanceof GoParseError)) throw err;
    throw bad(`bad lease ID (${err.message}), expecting ID in Hex`);
  }
  return {
    key: toBytes(args[0] ?? ''),
    value,
    lease,
    prevKv: flags.bool('prev-kv'),
    ignoreValue,
    ignoreLease: flags.bool('ignore-lease'),
  };
}

/** Awaits a client call; a failure stops the command as etcdctl's ExitWithError(ExitError, err). */
export async function must<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new ExitError(exitCodeFor(err, Exit.Error), goErrorText(err));
  }
}

async function runGet(ctx: Context): Promise<void> {
  const req = rangeInput(ctx.args, { flags: ctx.flags, toBytes: utf8Bytes });
  ctx.configure();
  const resp = await must(ctx.client().kv.range(req, { timeoutMs: ctx.commandTimeoutMs() }));
  const printer = ctx.printer();
  if (ctx.flags.bool('print-value-only')) {
    if (!(printer instanceof SimplePrinter)) throw bad('print-value-only is only for `--write-out=simple`');
    printer.setValueOnly();
  }
  printer.get(resp);
}

async function runPut(ctx: Context): Promise<void> {
  const req = putInput(ctx.args, { flags: ctx.flags, toBytes: utf8Bytes, stdin: () => ctx.io.readAll() });
  ctx.configure();
  ctx.printer().put(await must(ctx.client().kv.put(req, { timeoutMs: ctx.commandTimeoutMs() })));
}

async function runDel(ctx: Context): Promise<void> {
  const req = deleteInput(ctx.args, { flags: ctx.flags, toBytes: utf8Bytes });
  ctx.configure();
  ctx.printer().del(await must(ctx.client().kv.deleteRange(req, { timeoutMs: ctx.commandTimeoutMs() })));
}

async function runCompaction(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('compaction command needs 1 argument');
  let revision: bigint;
  try {
    revision = parseInt64(ctx.args[0] ?? '', 10);
  } catch (err) {
    throw new ExitError(Exit.Error, err instanceof Error ? err.message : String(err));
  }
  ctx.configure();
  const client = ctx.client();
  await must(client.kv.compact({ revision, physical: ctx.flags.bool('physical') }, { timeoutMs: ctx.commandTimeoutMs() }));
  ctx.io.stdout(`compacted revision ${revision}\n`);
}

export const kvCommands: readonly CommandSpec<Context>[] = [
  { name: 'get', use: 'get [options] <key> [range_end]', short: 'Gets the key or a range of keys', flags: getFlags, run: runGet },
  {
    name: 'put',
    use: 'put [options] <key> <value> (<value> can also be given from stdin)',
    short: 'Puts the given key into the store',
    long: putLong,
    flags: putFlags,
    run: runPut,
  },
  { name: 'del', use: 'del [options] <key> [range_end]', short: 'Removes the specified key or range of keys [key, range_end)', flags: delFlags, run: runDel },
  {
    name: 'compaction',
    use: 'compaction [options] <revision>',
    short: 'Compacts the event history in etcd',
    flags: [{ name: 'physical', kind: 'bool', defaultValue: 'false', usage: "'true' to wait for compaction to physically remove all old revisions" }],
    run: runCompaction,
  },
];
