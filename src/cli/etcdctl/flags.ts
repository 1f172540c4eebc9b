/**
 * Command-line flags with the semantics of spf13/pflag, which etcdctl is built on: interspersed flags,
 * --name=value and --name value, bool flags that take no value, -x shorthands (also -xvalue), "--" ending
 * flags, and pflag's exact error texts, which etcdctl prints.
 */
import { goDuration, goQuote } from './go-format.js';
import { GoParseError, parseBool, parseDuration, parseInt64 } from './go-parse.js';

export type FlagKind = 'bool' | 'string' | 'int64' | 'duration' | 'stringSlice';

export interface FlagSpec {
  readonly name: string;
  readonly shorthand?: string;
  readonly kind: FlagKind;
  /** The default, written as the user would type it. */
  readonly defaultValue: string;
  readonly usage: string;
}

export type FlagValue = boolean | string | bigint | readonly string[];

export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlagError';
  }
}

/** Splits a string-slice value as pflag does (a CSV record). */
export function splitCsv(value: string): string[] {
  if (value === '') return [];
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] ?? '';
    if (quoted) {
      if (ch === '"' && value[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else field += ch;
  }
  fields.push(field);
  return fields;
}

function parseValue(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.kind) {
    case 'bool':
      return parseBool(raw);
    case 'string':
      return raw;
    case 'int64':
      return parseInt64(raw, 0);
    case 'duration':
      return parseDuration(raw);
    case 'stringSlice':
      return splitCsv(raw);
  }
}

/** How pflag shows a default in usage: durations in Go's format, slices in brackets. */
export function defaultText(spec: FlagSpec): string {
  if (spec.kind === 'duration') return goDuration(parseDuration(spec.defaultValue));
  if (spec.kind === 'stringSlice') return `[${splitCsv(spec.defaultValue).join(',')}]`;
  return spec.defaultValue;
}

export class FlagSet {
  readonly specs: readonly FlagSpec[];
  #values = new Map<string, FlagValue>();
  #changed = new Set<string>();

  constructor(specs: readonly FlagSpec[]) {
    this.specs = specs;
    for (const spec of specs) this.#values.set(spec.name, parseValue(spec, spec.defaultValue));
  }

  lookup(name: string): FlagSpec | undefined {
    return this.specs.find((s) => s.name === name);
  }

  lookupShorthand(shorthand: string): FlagSpec | undefined {
    return this.specs.find((s) => s.shorthand === shorthand);
  }

  changed(name: string): boolean {
    return this.#changed.has(name);
  }

  /** Sets a flag from text; errors read as pflag's "invalid argument ..." message. */
  set(spec: FlagSpec, raw: string): void {
    let value: FlagValue;
    try {
      value = parseValue(spec, raw);
    } catch (err) {
      if (!(err instanceof GoParseError)) throw err;
      const flagName = spec.shorthand !== undefined ? `-${spec.shorthand}, --${spec.name}` : `--${spec.name}`;
      throw new FlagError(`invalid argument ${goQuote(raw)} for ${goQuote(flagName)} flag: ${err.message}`);
    }
    // A string slice given twice accumulates, as pflag's does after its first Set.
    const previous = this.#values.get(spec.name);
    if (spec.kind === 'stringSlice' && this.#changed.has(spec.name) && Array.isArray(previous)) {
      value = [...(previous as readonly string[]), ...(value as readonly string[])];
    }
    this.#values.set(spec.name, value);
    this.#changed.add(spec.name);
  }

  bool(name: string): boolean {
    const v = this.#values.get(name);
    if (typeof v !== 'boolean') throw new Error(`flag --${name} is not a bool flag`);
    return v;
  }

  string(name: string): string {
    const v = this.#values.get(name);
    if (typeof v !== 'string') throw new Error(`flag --${name} is not a string flag`);
    return v;
  }

  int64(name: string): bigint {
    const v = this.#values.get(name);
    if (typeof v !== 'bigint') throw new Error(`flag --${name} is not an int64 or duration flag`);
    return v;
  }

  stringSlice(name: string): readonly string[] {
    const v = this.#values.get(name);
    if (!Array.isArray(v)) throw new Error(`flag --${name} is not a string slice flag`);
    return v as readonly string[];
  }

  /** Parses args as pflag does with interspersed flags; returns the positional arguments. */
  parse(args: readonly string[]): string[] {
    const positional: string[] = [];
    const rest = [...args];
    while (rest.length > 0) {
      const s = rest.shift() ?? '';
      if (s.length < 2 || !s.startsWith('-')) {
        positional.push(s);
      } else if (s === '--') {
        positional.push(...rest.splice(0));
      } else if (s.startsWith('--')) {
        this.#parseLong(s, rest);
      } else {
        this.#parseShort(s, rest);
      }
    }
    return positional;
  }

  #parseLong(s: string, rest: string[]): void {
    const body = s.slice(2);
    if (body.length === 0 || body.startsWith('-') || body.startsWith('=')) throw new FlagError(`bad flag syntax: ${s}`);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = this.lookup(name);
    if (spec === undefined) throw new FlagError(`unknown flag: --${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === 'bool') value = 'true';
    else if (rest.length > 0) value = rest.shift() ?? '';
    else throw new FlagError(`flag needs an argument: ${s}`);
    this.set(spec, value);
  }

  #parseShort(s: string, rest: string[]): void {
    let shorthands = s.slice(1);
    while (shorthands.length > 0) {
      const c = shorthands[0] ?? '';
      const spec = this.lookupShorthand(c);
      if (spec === undefined) throw new FlagError(`unknown shorthand flag: '${c}' in -${shorthands}`);
      let value: string;
      if (shorthands.length > 2 && shorthands[1] === '=') {
        value = shorthands.slice(2);
        shorthands = '';
      } else if (spec.kind === 'bool') {
        value = 'true';
        shorthands = shorthands.slice(1);
      } else if (shorthands.length > 1) {
        value = shorthands.slice(1);
        shorthands = '';
      } else if (rest.length > 0) {
        value = rest.shift() ?? '';
        shorthands = '';
      } else {
        throw new FlagError(`flag needs an argument: '${c}' in -${shorthands}`);
      }
      this.set(spec, value);
    }
  }
}
