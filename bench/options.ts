// Command-line flags in etcd's style (--name value, --name=value, bare --bool), checked against a table of
// specs so a typo is an error instead of a silently ignored setting.

export type FlagSpec =
  | { kind: 'int'; default: number; min: number; max: number; help: string }
  | { kind: 'bool'; default: boolean; help: string }
  | { kind: 'string'; default: string; help: string }
  | { kind: 'enum'; default: string; values: readonly string[]; help: string }
  | { kind: 'list'; default: readonly string[]; values?: readonly string[]; help: string };

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<S extends FlagSpec> = S extends { kind: 'int' }
  ? number
  : S extends { kind: 'bool' }
    ? boolean
    : S extends { kind: 'list' }
      ? string[]
      : string;

export type FlagValues<T extends FlagSpecs> = { [K in keyof T]: ValueOf<T[K]> };

export interface Parsed<T extends FlagSpecs> {
  flags: FlagValues<T>;
  /** Arguments that are not flags (a subcommand, for instance), in order. */
  positional: string[];
  help: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function parseInt10(name: string, raw: string, spec: { min: number; max: number }): number {
  const text = raw.replace(/_/g, '');
  // Accept the suffixes people type for counts: 10k, 1M.
  const match = /^(\d+)([kKmM]?)$/.exec(text);
  if (match === null) throw new UsageError(`--${name}: expected a non-negative integer, got "${raw}"`);
  const unit = match[2] === '' ? 1 : match[2]?.toLowerCase() === 'k' ? 1_000 : 1_000_000;
  const value = Number(match[1]) * unit;
  if (!Number.isSafeInteger(value) || value < spec.min || value > spec.max) {
    throw new UsageError(`--${name}: ${raw} is outside [${spec.min}, ${spec.max}]`);
  }
  return value;
}

function parseBool(name: string, raw: string): boolean {
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new UsageError(`--${name}: expected true or false, got "${raw}"`);
}

function parseValue(name: string, spec: FlagSpec, raw: string): number | boolean | string | string[] {
  switch (spec.kind) {
    case 'int':
      return parseInt10(name, raw, spec);
    case 'bool':
      return parseBool(name, raw);
    case 'string':
      return raw;
    case 'enum':
      if (!spec.values.includes(raw)) {
        throw new UsageError(`--${name}: expected one of ${spec.values.join(', ')}, got "${raw}"`);
      }
      return raw;
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
      const bad = spec.values === undefined ? [] : items.filter((item) => !spec.values?.includes(item));
      if (bad.length > 0) {
        throw new UsageError(`--${name}: unknown ${bad.join(', ')}; expected some of ${spec.values?.join(', ')}`);
      }
      return items;
    }
  }
}

function defaults<T extends FlagSpecs>(specs: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    out[name] = spec.kind === 'list' ? [...spec.default] : spec.default;
  }
  return out;
}

export function parseFlags<T extends FlagSpecs>(argv: readonly string[], specs: T): Parsed<T> {
  const values = defaults(specs);
  const positional: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown flag --${name} (see --help)`);
    let raw: string;
    if (eq !== -1) {
      raw = arg.slice(eq + 1);
    } else if (spec.kind === 'bool') {
      raw = 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      raw = next;
      i += 1;
    }
    values[name] = parseValue(name, spec, raw);
  }
  return { flags: values as FlagValues<T>, positional, help };
}

export function usage(specs: FlagSpecs): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    const shown = spec.kind === 'list' ? spec.default.join(',') : String(spec.default);
    const choices = spec.kind === 'enum' || (spec.kind === 'list' && spec.values) ? ` (${spec.values?.join('|')})` : '';
    lines.push(`  --${name.padEnd(20)} ${spec.help}${choices} [default: ${shown === '' ? '""' : shown}]`);
  }
  return lines.join('\n');
}
