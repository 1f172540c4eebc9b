/** Runs one etcdctl-ts invocation: selects the command, parses flags, runs it, and returns the exit code. */
import { EtcdClient } from '../../client/index.js';
import { etcdApiVersion } from '../../base/version.js';
import { Command, findCommand, nonFlagWords, unknownCommandMessage, usageText, type CommandSpec } from './command.js';
import { clusterCommands, apiVersion } from './cmd-cluster.js';
import { kvCommands } from './cmd-kv.js';
import { txnCommand } from './cmd-txn.js';
import { snapshotCommand } from './cmd-snapshot.js';
import { watchCommand } from './cmd-watch.js';
import { leaseCommand } from './cmd-lease.js';
import { alarmCommand, defragCommand } from './cmd-maintenance.js';
import { electCommand, lockCommand } from './cmd-concurrency.js';
import { authCommands } from './cmd-auth.js';
import { FlagError, type FlagSet, type FlagSpec } from './flags.js';
import {
  applyEnv,
  attemptLogger,
  authFromFlags,
  checkSupportedFlags,
  durationMs,
  endpointsFromFlags,
  globalFlags,
  makePrinter,
  printDebugFlags,
  type Context,
} from './global.js';
import { Exit, ExitError, type Io } from './io.js';
import type { Printer } from './printer.js';

const versions = { version: etcdApiVersion, apiVersion };

const helpCommand: CommandSpec<Context> = {
  name: 'help',
  use: 'help [command]',
  short: 'Help about any command',
  long: 'Help provides help for any command in the application.\nSimply type etcdctl help [path to command] for full details.',
  run: async (ctx) => {
    const root = ctx.command.root;
    const { command, args } = findCommand(root, ctx.args);
    if (command === root && nonFlagWords(args, root.flagSet()).length > 0) {
      ctx.io.stdout(`Unknown help topic [\`${ctx.args.join(' ')}\`]\n`);
    }
    ctx.io.stdout(usageText(command, versions));
  },
};

/** etcdctl's commands in its registration order; the ones etcdctl-ts lacks still resolve, and say so. */
const etcdctlCommandNames = [
  'get', 'put', 'del', 'txn', 'compaction', 'alarm', 'defrag', 'endpoint', 'move-leader', 'watch', 'version', 'lease',
  'member', 'snapshot', 'make-mirror', 'migrate', 'lock', 'elect', 'auth', 'user', 'role', 'check', 'help', 'completion',
];

function notImplemented(name: string): CommandSpec<Context> {
  return {
    name,
    use: name,
    short: 'Not implemented by etcdctl-ts yet',
    hidden: true,
    run: async () => {
      throw new ExitError(Exit.BadFeature, `${JSON.stringify(name)} is not implemented by etcdctl-ts yet`);
    },
  };
}

export function rootCommand(): Command<Context> {
  const implemented = new Map([...kvCommands, txnCommand, ...clusterCommands, snapshotCommand, watchCommand, leaseCommand, alarmCommand, defragCommand, lockCommand, electCommand, ...authCommands, helpCommand].map((c) => [c.name, c]));
  return new Command<Context>({
    name: 'etcdctl',
    use: 'etcdctl',
    short: 'A simple command line client for etcd3.',
    persistentFlags: globalFlags,
    children: etcdctlCommandNames.map((name) => implemented.get(name) ?? notImplemented(name)),
  });
}

class RunContext implements Context {
  readonly command: Command<Context>;
  readonly flags: FlagSet;
  readonly args: readonly string[];
  readonly io: Io;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly argv: readonly string[];
  readonly interrupt: AbortSignal;
  readonly #given: boolean;
  #printer: Printer | undefined;
  #clients: EtcdClient[] = [];

  constructor(parts: Pick<Context, 'command' | 'flags' | 'args' | 'io' | 'env' | 'argv'> & { interrupt: AbortSignal | undefined }) {
    this.command = parts.command;
    this.argv = parts.argv;
    this.interrupt = parts.interrupt ?? new AbortController().signal;
    this.#given = parts.interrupt !== undefined;
    this.flags = parts.flags;
    this.args = parts.args;
    this.io = parts.io;
    this.env = parts.env;
  }

  trapInterrupts(): AbortSignal {
    if (this.#given) return this.interrupt;
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    process.once('SIGINT', abort);
    process.once('SIGTERM', abort);
    return controller.signal;
  }

  configure(): void {
    if (this.#printer !== undefined) return;
    const inherited = this.command.inheritedFlags();
    // etcdctl gives watch two flags of no effect so ETCDCTL_WATCH_KEY/RANGE_END count as recognised.
    const watchEnv: FlagSpec[] = this.command.spec.use.startsWith('watch')
      ? ['watch-key', 'watch-range-end'].map((name) => ({ name, kind: 'string', defaultValue: '', usage: '' }))
      : [];
    applyEnv(this, [...inherited, ...watchEnv]);
    if (this.flags.bool('debug')) printDebugFlags(this, inherited);
    checkSupportedFlags(this.flags);
    this.#printer = makePrinter(this.flags, this.io);
  }

  printer(): Printer {
    this.configure();
    if (this.#printer === undefined) throw new Error('printer is built by configure()');
    return this.#printer;
  }

  client(endpoints?: readonly string[], options: { auth?: boolean } = {}): EtcdClient {
    this.configure();
    const eps = endpoints ?? endpointsFromFlags(this.flags);
    const auth = options.auth === false ? undefined : authFromFlags(this.flags);
    const log = attemptLogger(this.io, eps);
    const client = new EtcdClient({
      endpoints: eps,
      dialTimeoutMs: Math.max(1, durationMs(this.flags, 'dial-timeout')),
      requestTimeoutMs: this.commandTimeoutMs(),
      ...(auth ?? {}),
      onAttemptFailed: (failure) => log(failure, failure.pinned ? failure.endpoint : undefined),
    });
    this.#clients.push(client);
    return client;
  }

  commandTimeoutMs(): number {
    // A zero timeout expires at once in etcdctl; the client needs a positive number for the same effect.
    return Math.max(1, durationMs(this.flags, 'command-timeout'));
  }

  closeClients(): void {
    for (const c of this.#clients) c.close();
    this.#clients = [];
  }
}

function flagFailure(io: Io, command: Command<Context>, message: string): number {
  // cobra reports the error, prints usage to stdout and a blank line to stderr; etcdctl then reports it again.
  io.stderr(`Error: ${message}\n`);
  io.stdout(usageText(command, versions));
  io.stderr('\n');
  io.stderr(`Error: ${message}\n`);
  return Exit.Error;
}

export interface RunOptions {
  readonly io: Io;
  /** The environment, for ETCDCTL_* variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Interrupts long-running commands (SIGINT for a process); without it they run until the server ends them. */
  readonly interrupt?: AbortSignal;
}

export async function runEtcdctl(argv: readonly string[], { io, env, interrupt }: RunOptions): Promise<number> {
  const root = rootCommand();
  const { command, args } = findCommand(root, argv);
  const flags = command.flagSet();
  if (command === root) {
    const word = nonFlagWords(args, flags)[0];
    if (word !== undefined) {
      const message = unknownCommandMessage(root, word);
      io.stderr(`Error: ${message}\nRun '${root.path} --help' for usage.\n`);
      io.stderr(`Error: ${message}\n`);
      return Exit.Error;
    }
  }
  let positional: string[];
  try {
    positional = flags.parse(args);
  } catch (err) {
    if (err instanceof FlagError) return flagFailure(io, command, err.message);
    throw err;
  }
  const run = command.spec.run;
  if (flags.bool('help') || run === undefined) {
    io.stdout(usageText(command, versions));
    return Exit.Success;
  }
  const ctx = new RunContext({ command, flags, args: positional, io, env, argv, interrupt });
  try {
    await run(ctx);
    return Exit.Success;
  } catch (err) {
    if (!(err instanceof ExitError)) throw err;
    io.stderr(err.stderrText);
    return err.code;
  } finally {
    ctx.closeClients();
  }
}
