/**
 * Parsers with the exact acceptance rules and error texts of Go's strconv and time packages, because etcdctl
 * reports their errors verbatim ("strconv.ParseInt: parsing \"x\": invalid syntax").
 */
import { goQuote } from './go-format.js';

export class GoParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GoParseError';
  }
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const uint64Max = 2n ** 64n - 1n;

function syntaxError(fn: string, s: string): GoParseError {
  return new GoParseError(`strconv.${fn}: parsing ${goQuote(s)}: invalid syntax`);
}

function rangeError(fn: string, s: string): GoParseError {
  return new GoParseError(`strconv.${fn}: parsing ${goQuote(s)}: value out of range`);
}

/** strconv.ParseUint: base 0 reads 0x, 0o, 0b and leading-0 octal prefixes and allows underscores after them. */
export function parseUint64(s: string, base: number, fn = 'ParseUint'): bigint {
  if (s.length === 0) throw syntaxError(fn, s);
  let digits = s;
  let radix = base;
  let prefixed = false;
  if (base === 0) {
    radix = 10;
    const lower = s.toLowerCase();
    if (lower.startsWith('0x')) [radix, digits, prefixed] = [16, s.slice(2), true];
    else if (lower.startsWith('0o')) [radix, digits, prefixed] = [8, s.slice(2), true];
    else if (lower.startsWith('0b')) [radix, digits, prefixed] = [2, s.slice(2), true];
    else if (s.startsWith('0') && s.length > 1) [radix, digits, prefixed] = [8, s.slice(1), true];
  }
  if (base === 0 && digits.includes('_')) {
    if (!underscoreOk(s)) throw syntaxError(fn, s);
    digits = digits.replaceAll('_', '');
  }
  if (digits.length === 0 && !(prefixed && radix === 8 && s === '0')) throw syntaxError(fn, s);
  let value = 0n;
  const bigRadix = BigInt(radix);
  for (const ch of digits.toLowerCase()) {
    const d = parseInt(ch, 36);
    if (Number.isNaN(d) || d >= radix) throw syntaxError(fn, s);
    value = value * bigRadix + BigInt(d);
    if (value > uint64Max) throw rangeError(fn, s);
  }
  return value;
}

/** Go's rule for underscores in base-prefixed literals: only between digits, or right after the prefix. */
function underscoreOk(s: string): boolean {
  let saw = '^';
  let i = 0;
  let text = s;
  if (text.startsWith('-') || text.startsWith('+')) text = text.slice(1);
  let hexPrefix = false;
  if (text.length >= 2 && text[0] === '0' && /[bBoOxX]/.test(text[1] ?? '')) {
    hexPrefix = true;
    i = 2;
    saw = '0';
  }
  for (; i < text.length; i++) {
    const ch = text[i] ?? '';
    if (/[0-9]/.test(ch) || (hexPrefix && /[a-fA-F]/.test(ch))) {
      saw = '0';
      continue;
    }
    if (ch === '_') {
      if (saw !== '0') return false;
      saw = '_';
      continue;
    }
    if (saw === '_') return false;
    saw = '!';
  }
  return saw !== '_';
}

/** strconv.ParseInt with bitSize 64. */
export function parseInt64(s: string, base: number): bigint {
  if (s.length === 0) throw syntaxError('ParseInt', s);
  const negative = s.startsWith('-');
  const body = s.startsWith('-') || s.startsWith('+') ? s.slice(1) : s;
  let magnitude: bigint;
  try {
    magnitude = parseUint64(body, base, 'ParseInt');
  } catch (err) {
    if (!(err instanceof GoParseError)) throw err;
    if (err.message.endsWith('value out of range')) throw rangeError('ParseInt', s);
    throw syntaxError('ParseInt', s);
  }
  const value = negative ? -magnitude : magnitude;
  if (value < int64Min || value > int64Max) throw rangeError('ParseInt', s);
  return value;
}

/** strconv.ParseBool. */
export function parseBool(s: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  throw syntaxError('ParseBool', s);
}

const unitNs: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1000n],
  ['µs', 1000n],
  ['μs', 1000n],
  ['ms', 1000_000n],
  ['s', 1000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3600_000_000_000n],
]);

/** time.ParseDuration, in nanoseconds: "5s", "1.5m", "300ms", "1h2m". */
export function parseDuration(input: string): bigint {
  const invalid = (): GoParseError => new GoParseError(`time: invalid duration ${goQuote(input)}`);
  let s = input;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s.length === 0) throw invalid();
  let total = 0n;
  while (s.length > 0) {
    const number = /^([0-9]*)(\.([0-9]*))?/.exec(s);
    const whole = number?.[1] ?? '';
    const frac = number?.[3] ?? '';
    if (whole.length === 0 && frac.length === 0) throw invalid();
    s = s.slice(number?.[0].length ?? 0);
    const unit = /^[^0-9.]*/.exec(s)?.[0] ?? '';
    if (unit.length === 0) throw new GoParseError(`time: missing unit in duration ${goQuote(input)}`);
    const scale = unitNs.get(unit);
    if (scale === undefined) throw new GoParseError(`time: unknown unit ${goQuote(unit)} in duration ${goQuote(input)}`);
    s = s.slice(unit.length);
    total += BigInt(whole.length > 0 ? whole : '0') * scale + fractionNs(frac, scale);
    if (total > int64Max) throw invalid();
  }
  return negative ? -total : total;
}

function fractionNs(frac: string, scale: bigint): bigint {
  if (frac.length === 0) return 0n;
  const denominator = 10n ** BigInt(frac.length);
  return (BigInt(frac) * scale) / denominator;
}
