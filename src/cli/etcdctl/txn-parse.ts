/**
 * The text syntax of `etcdctl txn`: compares like `mod("key") > "5"` and request lines like `put k v`.
 * Strings here are byte strings (one char per byte, latin1) so keys and values keep arbitrary bytes, as
 * Go's strings do.
 */
import { Compare, Compare_CompareResult, Compare_CompareTarget } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { goQuote } from './go-format.js';
import { GoParseError, parseInt64 } from './go-parse.js';

/** A Go runtime panic: etcdctl 3.4 panics on some inputs, and etcdctl-ts stops the same way (exit code 2). */
export class GoPanic extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoPanic';
  }
}

export class TxnSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TxnSyntaxError';
  }
}

const simpleEscapes: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };

/** strconv.Unquote of a double-quoted or back-quoted Go string, over byte strings. */
export function goUnquote(s: string): string {
  const invalid = (): GoParseError => new GoParseError('invalid syntax');
  if (s.length < 2) throw invalid();
  const quote = s[0];
  if (quote !== s[s.length - 1]) throw invalid();
  const body = s.slice(1, -1);
  if (quote === '`') {
    if (body.includes('`')) throw invalid();
    return body.replaceAll('\r', '');
  }
  if (quote !== '"') throw invalid();
  let out = '';
  for (let i = 0; i < body.length; ) {
    const ch = body[i] ?? '';
    if (ch === '"' || ch === '\n') throw invalid();
    if (ch !== '\\') {
      out += ch;
      i++;
      continue;
    }
    const { bytes, next } = unescape(body, i + 1);
    out += bytes;
    i = next;
  }
  return out;
}

function unescape(body: string, at: number): { bytes: string; next: number } {
  const invalid = (): GoParseError => new GoParseError('invalid syntax');
  const c = body[at] ?? '';
  const simple = simpleEscapes[c];
  if (simple !== undefined && c !== "'") return { bytes: String.fromCharCode(simple), next: at + 1 };
  const hexRun = (n: number): number => {
    const digits = body.slice(at + 1, at + 1 + n);
    if (digits.length !== n || !/^[0-9a-fA-F]+$/.test(digits)) throw invalid();
    return parseInt(digits, 16);
  };
  if (c === 'x') return { bytes: String.fromCharCode(hexRun(2)), next: at + 3 };
  if (c === 'u' || c === 'U') {
    const n = c === 'u' ? 4 : 8;
    const cp = hexRun(n);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) throw invalid();
    return { bytes: Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1'), next: at + 1 + n };
  }
  if (/[0-7]/.test(c)) {
    const digits = body.slice(at, at + 3);
    if (!/^[0-7]{3}$/.test(digits)) throw invalid();
    const v = parseInt(digits, 8);
    if (v > 255) throw invalid();
    return { bytes: String.fromCharCode(v), next: at + 3 };
  }
  throw invalid();
}

/** A cursor over the text, with the few rules of fmt.Sscanf that "%q) %s %q" needs. */
class Scanner {
  #s: string;
  #i = 0;

  constructor(s: string) {
    this.#s = s;
  }

  skipSpace(): void {
    while (this.#i < this.#s.length && /[ \t\r\n]/.test(this.#s[this.#i] ?? '')) this.#i++;
  }

  /** A quoted Go string ("..." or `...`), unquoted; undefined when the input has none here. */
  quoted(): string | undefined {
    this.skipSpace();
    const q = this.#s[this.#i];
    if (q !== '"' && q !== '`') return undefined;
    let j = this.#i + 1;
    while (j < this.#s.length && this.#s[j] !== q) j += q === '"' && this.#s[j] === '\\' ? 2 : 1;
    if (j >= this.#s.length) return undefined;
    const raw = this.#s.slice(this.#i, j + 1);
    this.#i = j + 1;
    try {
      return goUnquote(raw);
    } catch {
      return undefined;
    }
  }

  literal(ch: string): boolean {
    if (this.#s[this.#i] !== ch) return false;
    this.#i++;
    return true;
  }

  word(): string | undefined {
    this.skipSpace();
    const start = this.#i;
    while (this.#i < this.#s.length && !/[ \t\r\n]/.test(this.#s[this.#i] ?? '')) this.#i++;
    return this.#i > start ? this.#s.slice(start, this.#i) : undefined;
  }
}

const resultOps: Readonly<Record<string, Compare_CompareResult>> = {
  '=': Compare_CompareResult.EQUAL,
  '!=': Compare_CompareResult.NOT_EQUAL,
  '>': Compare_CompareResult.GREATER,
  '<': Compare_CompareResult.LESS,
};

const bytesOf = (s: string): Buffer => Buffer.from(s, 'latin1');
/** Shows a byte string in messages as the bytes it holds. */
export const textOf = (s: string): string => Buffer.from(s, 'latin1').toString('utf8');

/** Parses one compare line, e.g. `ver("k") = "1"`, `c("k") > "3"`, `val("k") != "v"`. */
export function parseCompare(line: string): Compare {
  const paren = line.indexOf('(');
  if (paren < 0) throw new TxnSyntaxError(`malformed comparison: ${textOf(line)}`);
  const target = line.slice(0, paren);
  const scan = new Scanner(line.slice(paren + 1));
  let key = '';
  let op = '';
  let val = '';
  let n = 0;
  const k = scan.quoted();
  if (k !== undefined) {
    key = k;
    n++;
    if (scan.literal(')')) {
      const o = scan.word();
      if (o !== undefined) {
        op = o;
        n++;
        const v = scan.quoted();
        if (v !== undefined) [val, n] = [v, n + 1];
      }
    }
  }
  if (n !== 3) {
    const got = `${target}(${goQuote(bytesOf(key))}) ${op} ${goQuote(bytesOf(val))}`;
    throw new TxnSyntaxError(`malformed comparison: ${textOf(line)}; got ${textOf(got)}`);
  }
  return buildCompare(line, target, { key, op, val });
}

function buildCompare(line: string, target: string, p: { key: string; op: string; val: string }): Compare {
  const intTarget = (t: Compare_CompareTarget, $case: 'version' | 'createRevision' | 'modRevision'): Compare => {
    let v: bigint;
    try {
      v = parseInt64(p.val, 10);
    } catch {
      throw new TxnSyntaxError(`invalid txn compare request: ${textOf(line)}`);
    }
    return { result: result(p.op), target: t, key: bytesOf(p.key), targetUnion: { $case, value: v }, rangeEnd: Buffer.alloc(0) };
  };
  switch (target) {
    case 'ver':
    case 'version':
      return intTarget(Compare_CompareTarget.VERSION, 'version');
    case 'c':
    case 'create':
      return intTarget(Compare_CompareTarget.CREATE, 'createRevision');
    case 'm':
    case 'mod':
      return intTarget(Compare_CompareTarget.MOD, 'modRevision');
    case 'val':
    case 'value':
      return {
        result: result(p.op),
        target: Compare_CompareTarget.VALUE,
        key: bytesOf(p.key),
        targetUnion: { $case: 'value', value: bytesOf(p.val) },
        rangeEnd: Buffer.alloc(0),
      };
    case 'lease':
      // etcdctl 3.4 hands the lease as a string to clientv3.Compare, which panics on it.
      result(p.op);
      throw new GoPanic('bad value');
    default:
      throw new TxnSyntaxError(`malformed comparison: ${textOf(line)} (unknown target ${textOf(target)})`);
  }
}

function result(op: string): Compare_CompareResult {
  const r = resultOps[op];
  if (r === undefined) throw new GoPanic('Unknown result op');
  return r;
}

const argPattern = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\t\n\f\r ][^\t\n\f\r ]*[^'"\t\n\f\r ]?/g;

/**
 * Splits a request line into arguments as etcdctl's argify: "double" quotes are Go-unquoted; 'single'
 * quotes are cut by the number of arguments rather than the argument's length, a bug of etcdctl 3.4 that is
 * kept so the same input gives the same request (and the same panic when the cut runs past the end).
 */
export function argify(line: string): string[] {
  const args = line.match(argPattern) ?? [];
  return args.map((arg) => {
    if (arg.startsWith("'")) {
      const end = args.length - 1;
      if (end > arg.length) throw new GoPanic(`runtime error: slice bounds out of range [:${end}] with length ${arg.length}`);
      if (end < 1) throw new GoPanic(`runtime error: slice bounds out of range [1:${end}]`);
      return arg.slice(1, end);
    }
    if (arg.startsWith('"')) {
      const scan = new Scanner(arg);
      const v = scan.quoted();
      if (v === undefined) throw new TxnSyntaxError('invalid syntax');
      return v;
    }
    return arg;
  });
}
