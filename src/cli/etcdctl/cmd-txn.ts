/**
 * `etcdctl txn`: reads compares, then success requests, then failure requests from stdin, each section
 * ended by an empty line, and commits them as one transaction.
 */
import { toBuffer } from '../../client/index.js';
import {
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  type Compare,
  type RequestOp,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Command, cobraDefaultUsage, findCommand, type CommandSpec } from './command.js';
import { FlagError, type FlagSet } from './flags.js';
import { delFlags, deleteInput, getFlags, must, putFlags, putInput, rangeInput, type ToBytes } from './cmd-kv.js';
import type { Context } from './global.js';
import { Exit, ExitError, goPanicExitCode } from './io.js';
import { GoPanic, TxnSyntaxError, argify, parseCompare, textOf } from './txn-parse.js';

/** etcdctl commits a txn without a deadline; this stands in for "none". */
const txnTimeoutMs = 2 ** 31 - 1;
/** A transaction read from stdin is bounded like the server bounds it (etcd's default --max-txn-ops is 128). */
export const txnLinesMax = 10_000;

const latin1: ToBytes = (s) => Buffer.from(s, 'latin1');

type OpBuilder = (args: readonly string[], ctx: OpContext) => RequestOp;
interface OpContext {
  readonly flags: FlagSet;
}

const opCommands: CommandSpec<OpContext>[] = [
  { name: 'put', use: 'put [options] <key> <value> (<value> can also be given from stdin)', short: '', flags: putFlags },
  { name: 'get', use: 'get [options] <key> [range_end]', short: '', flags: getFlags },
  { name: 'del', use: 'del [options] <key> [range_end]', short: '', flags: delFlags },
];
const opRoot = new Command<OpContext>({ name: '', use: '', short: '', children: opCommands });

const builders: Readonly<Record<string, OpBuilder>> = {
  get: (args, { flags }) => {
    const input = rangeInput(args, { flags, toBytes: latin1 });
    const value: RangeRequest = { ...RangeRequest.create(), ...input, key: toBuffer(input.key), rangeEnd: toBuffer(input.rangeEnd) };
    return { request: { $case: 'requestRange', value } };
  },
  put: (args, { flags }) => {
    // Inside a txn, stdin is already the txn's own input, so a missing value is simply missing.
    const input = putInput(args, { flags, toBytes: latin1, stdin: () => Buffer.alloc(0) });
    const value: PutRequest = { ...PutRequest.create(), ...input, key: toBuffer(input.key), value: toBuffer(input.value) };
    return { request: { $case: 'requestPut', value } };
  },
  del: (args, { flags }) => {
    const input = deleteInput(args, { flags, toBytes: latin1 });
    const value: DeleteRangeRequest = { ...DeleteRangeRequest.create(), ...input, key: toBuffer(input.key), rangeEnd: toBuffer(input.rangeEnd) };
    return { request: { $case: 'requestDeleteRange', value } };
  },
};

/**
 * One request line, e.g. `put k v --prev-kv`, parsed with the flags of the top-level command.
 * `usage` receives the help etcdctl prints when the line has a bad flag.
 */
export function parseRequestOp(line: string, usage: (text: string) => void = () => undefined): RequestOp {
  const args = argify(line);
  if (args.length < 2) throw new TxnSyntaxError(`invalid txn compare request: ${textOf(line)}`);
  const invalid = (): TxnSyntaxError => new TxnSyntaxError(`invalid txn request: ${textOf(line)}`);
  const { command, args: rest } = findCommand(opRoot, args);
  const builder = builders[command.name];
  if (builder === undefined) throw invalid();
  const flags = command.flagSet();
  let positional: string[];
  try {
    positional = flags.parse(rest);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    usage(`${cobraDefaultUsage(command)}\n`);
    throw invalid();
  }
  return builder(positional, { flags });
}

/** Reads one section: lines until an empty one. Input ending first is an error (Go's io.EOF). */
function readSection<T>(ctx: Context, parse: (line: string) => T): T[] {
  const out: T[] = [];
  for (;;) {
    const { line, eof } = ctx.io.readLine();
    if (eof) throw new ExitError(Exit.InvalidInput, 'EOF');
    const trimmed = line.toString('latin1').replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
    if (trimmed.length === 0) return out;
    if (out.length >= txnLinesMax) throw new ExitError(Exit.InvalidInput, `too many lines in a txn section (limit ${txnLinesMax})`);
    try {
      out.push(parse(trimmed));
    } catch (err) {
      if (err instanceof TxnSyntaxError) throw new ExitError(Exit.InvalidInput, err.message);
      throw err;
    }
  }
}

async function runTxn(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw new ExitError(Exit.BadArgs, 'txn command does not accept argument');
  ctx.configure();
  const client = ctx.client();
  const interactive = ctx.flags.bool('interactive');
  const prompt = (text: string): void => {
    if (interactive) ctx.io.stdout(`${text}\n`);
  };
  try {
    prompt('compares:');
    const compare: Compare[] = readSection(ctx, parseCompare);
    prompt('success requests (get, put, del):');
    const parseOp = (line: string): RequestOp => parseRequestOp(line, (text) => ctx.io.stderr(text));
    const success = readSection(ctx, parseOp);
    prompt('failure requests (get, put, del):');
    const failure = readSection(ctx, parseOp);
    const resp = await must(client.kv.txn({ compare, success, failure }, { timeoutMs: txnTimeoutMs }));
    ctx.printer().txn(resp);
  } catch (err) {
    if (err instanceof GoPanic) throw new ExitError(goPanicExitCode, undefined, `panic: ${err.message}\n`);
    throw err;
  }
}

export const txnCommand: CommandSpec<Context> = {
  name: 'txn',
  use: 'txn [options]',
  short: 'Txn processes all the requests in one transaction',
  flags: [{ name: 'interactive', shorthand: 'i', kind: 'bool', defaultValue: 'false', usage: 'Input transaction in interactive mode' }],
  run: runTxn,
};
