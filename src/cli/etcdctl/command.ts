/**
 * The command tree and how an argument list selects a command, after spf13/cobra as etcdctl configures it:
 * unique-prefix matching of command names, flags allowed anywhere, persistent flags inherited by
 * subcommands, suggestions for mistyped commands, and etcdctl's own help template.
 */
import { tabwrite } from './tabwriter.js';
import { FlagSet, defaultText, type FlagSpec } from './flags.js';
import { goQuote } from './go-format.js';

export interface CommandSpec<Ctx> {
  readonly name: string;
  readonly use: string;
  readonly short: string;
  readonly long?: string;
  readonly flags?: readonly FlagSpec[];
  readonly persistentFlags?: readonly FlagSpec[];
  readonly children?: readonly CommandSpec<Ctx>[];
  readonly run?: (ctx: Ctx) => Promise<void>;
  /** Left out of help listings (etcdctl commands etcdctl-ts does not implement yet). */
  readonly hidden?: boolean;
}

export class Command<Ctx> {
  readonly spec: CommandSpec<Ctx>;
  readonly parent: Command<Ctx> | undefined;
  readonly children: readonly Command<Ctx>[];

  constructor(spec: CommandSpec<Ctx>, parent?: Command<Ctx>) {
    this.spec = spec;
    this.parent = parent;
    // Kept in etcdctl's registration order: cobra suggests commands in that order.
    this.children = (spec.children ?? []).map((c) => new Command(c, this));
  }

  get name(): string {
    return this.spec.name;
  }

  get runnable(): boolean {
    return this.spec.run !== undefined;
  }

  get root(): Command<Ctx> {
    return this.parent === undefined ? this : this.parent.root;
  }

  get path(): string {
    return this.parent === undefined ? this.name : `${this.parent.path} ${this.name}`;
  }

  /** Flags defined here: local, persistent, and the help flag cobra adds to every command. */
  localFlags(): FlagSpec[] {
    const help: FlagSpec = { name: 'help', shorthand: 'h', kind: 'bool', defaultValue: 'false', usage: `help for ${this.name}` };
    return sortFlags([...(this.spec.flags ?? []), ...(this.spec.persistentFlags ?? []), help]);
  }

  /** Persistent flags of the ancestors. */
  inheritedFlags(): FlagSpec[] {
    const out: FlagSpec[] = [];
    for (let c = this.parent; c !== undefined; c = c.parent) out.push(...(c.spec.persistentFlags ?? []));
    return sortFlags(out);
  }

  flagSet(): FlagSet {
    return new FlagSet([...this.localFlags(), ...this.inheritedFlags()]);
  }

  /** The child named `word`, or the only child whose name starts with it. */
  findChild(word: string): Command<Ctx> | undefined {
    const exact = this.children.find((c) => c.name === word);
    if (exact !== undefined) return exact;
    const matches = this.children.filter((c) => c.name.startsWith(word));
    return matches.length === 1 ? matches[0] : undefined;
  }

  useLine(): string {
    const use = this.parent === undefined ? this.spec.use : `${this.parent.path} ${this.spec.use}`;
    return use.includes('[flags]') ? use : `${use} [flags]`;
  }
}

function sortFlags(flags: FlagSpec[]): FlagSpec[] {
  return flags.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** cobra's stripFlags: the words of args that are not flags or flag values. */
export function nonFlagWords(args: readonly string[], flags: FlagSet): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const s = args[i] ?? '';
    if (s === '--') break;
    const takesValue = (spec: FlagSpec | undefined): boolean => spec?.kind !== 'bool';
    if (s.startsWith('--') && !s.includes('=') && takesValue(flags.lookup(s.slice(2)))) {
      if (i + 1 >= args.length - 1) break;
      i++;
    } else if (s.startsWith('-') && !s.startsWith('--') && !s.includes('=') && s.length === 2 && takesValue(flags.lookupShorthand(s.slice(1)))) {
      if (i + 1 >= args.length - 1) break;
      i++;
    } else if (s !== '' && !s.startsWith('-')) {
      words.push(s);
    }
  }
  return words;
}

/** cobra's Find: walks down the tree by the first non-flag word; returns the command and its arguments. */
export function findCommand<Ctx>(root: Command<Ctx>, args: readonly string[]): { command: Command<Ctx>; args: string[] } {
  let command = root;
  let rest = [...args];
  for (;;) {
    const words = nonFlagWords(rest, command.flagSet());
    const word = words[0];
    if (word === undefined) break;
    const next = command.findChild(word);
    if (next === undefined) break;
    const at = rest.indexOf(word);
    rest = [...rest.slice(0, at), ...rest.slice(at + 1)];
    command = next;
  }
  return { command, args: rest };
}

/** The "unknown command" error text for the root, with cobra's suggestions. */
export function unknownCommandMessage<Ctx>(root: Command<Ctx>, word: string): string {
  const suggestions = root.children
    .filter((c) => c.name !== 'help')
    .filter((c) => levenshtein(word.toLowerCase(), c.name.toLowerCase()) <= 2 || c.name.startsWith(word.toLowerCase()))
    .map((c) => c.name);
  let message = `unknown command ${goQuote(word)} for ${goQuote(root.path)}`;
  if (suggestions.length > 0) message += `\n\nDid you mean this?\n${suggestions.map((s) => `\t${s}\n`).join('')}`;
  return message;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** One line per flag as etcdctl's help prints it: "  -w, --write-out=\"simple\"\tusage". */
function flagUsages(flags: readonly FlagSpec[]): string {
  return flags
    .map((f) => {
      let line = f.shorthand !== undefined ? `  -${f.shorthand}, --${f.name}` : `      --${f.name}`;
      const shown = f.kind === 'string' ? goQuote(defaultText(f)) : defaultText(f);
      line += f.kind === 'bool' ? `[=${shown}]` : `=${shown}`;
      return `${line}\t${f.usage}\n`;
    })
    .join('');
}

function allSubcommands<Ctx>(command: Command<Ctx>): Command<Ctx>[] {
  const sorted = [...command.children].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sorted.filter((c) => c.spec.hidden !== true).flatMap((c) => [c, ...allSubcommands(c)]);
}

/** Names a subcommand relative to `from`: "endpoint status" under the root, "status" under "endpoint". */
function relativeName<Ctx>(command: Command<Ctx>, from: Command<Ctx>): string {
  const parts = [command.name];
  for (let c = command; c.parent !== undefined && c.parent.name !== from.name; c = c.parent) parts.unshift(c.parent.name);
  return parts.join(' ');
}

export interface UsageVersions {
  readonly version: string;
  readonly apiVersion: string;
}

/** etcdctl's help text for a command (its usage template, aligned by a tabwriter). */
export function usageText<Ctx>(command: Command<Ctx>, versions: UsageVersions): string {
  const isRoot = command.parent === undefined;
  const hasChildren = command.children.length > 0;
  let t = 'NAME:\n';
  t += `\t${isRoot ? command.name : relativeName(command, command.root)} - ${command.spec.short}\n`;
  t += `\nUSAGE:\n\t${command.useLine()}\n`;
  if (isRoot) t += `\nVERSION:\n\t${versions.version}\n`;
  if (hasChildren) {
    t += `\nAPI VERSION:\n\t${versions.apiVersion}\n`;
    t += '\n\nCOMMANDS:\n';
    for (const sub of allSubcommands(command)) {
      if (sub.runnable) t += `\t${relativeName(sub, command)}\t${sub.spec.short}\n`;
    }
  }
  const long = command.spec.long;
  if (long !== undefined && long !== '') {
    t += '\nDESCRIPTION:\n';
    for (const line of long.replace(/^[\n\t ]+|[\n\t ]+$/g, '').split('\n')) t += `\t${line}\n`;
  }
  t += `\nOPTIONS:\n${flagUsages(command.localFlags())}`;
  const inherited = command.inheritedFlags();
  if (inherited.length > 0) t += `\nGLOBAL OPTIONS:\n${flagUsages(inherited)}`;
  return tabwrite(t + '\n');
}

/** pflag's name for a flag's value in usage ("string", "int", "strings"; none for bools). */
function valueTypeName(f: FlagSpec): string {
  switch (f.kind) {
    case 'bool':
      return '';
    case 'int64':
      return 'int';
    case 'stringSlice':
      return 'strings';
    default:
      return f.kind;
  }
}

/** pflag's FlagUsages: names and value types in one column, usage aligned after it, non-zero defaults shown. */
function pflagUsages(flags: readonly FlagSpec[]): string {
  const lines = flags.map((f) => {
    let line = f.shorthand !== undefined ? `  -${f.shorthand}, --${f.name}` : `      --${f.name}`;
    const type = valueTypeName(f);
    if (type !== '') line += ` ${type}`;
    let usage = f.usage;
    const zero = f.kind === 'bool' ? 'false' : f.kind === 'string' ? '' : f.kind === 'int64' ? '0' : f.kind === 'duration' ? '0s' : '';
    const shown = defaultText(f);
    if (shown !== zero && !(f.kind === 'stringSlice' && shown === '[]')) usage += f.kind === 'string' ? ` (default ${goQuote(shown)})` : ` (default ${shown})`;
    return { head: line, usage };
  });
  const width = Math.max(0, ...lines.map((l) => l.head.length + 1));
  return lines.map((l) => `${l.head} ${' '.repeat(width - l.head.length)} ${l.usage}\n`).join('');
}

/**
 * cobra's default usage text, which etcdctl shows (on stderr) when a request line of a txn has a bad flag:
 * those lines are parsed by a bare cobra command without etcdctl's help template.
 */
export function cobraDefaultUsage<Ctx>(command: Command<Ctx>): string {
  return `Usage:\n  ${command.useLine()}\n\nFlags:\n${pflagUsages(command.localFlags()).trimEnd()}\n`;
}
