/**
 * Text formats etcdctl inherits from Go's standard library and the packages it prints with, rebuilt so our
 * output is byte-identical: strconv.Quote (%q), encoding/json strings, time.Duration.String,
 * go-humanize's Bytes, and zap's JSON string escaping.
 */

const hexDigits = '0123456789abcdef';
const printable = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isGoPrint(codePoint: number): boolean {
  if (codePoint === 0x20) return true;
  return printable.test(String.fromCodePoint(codePoint));
}

/** Decodes one UTF-8 sequence at `i`: the code point and its length, or undefined for an invalid byte. */
export function decodeRune(bytes: Uint8Array, i: number): { codePoint: number; size: number } | undefined {
  const b0 = bytes[i] ?? 0;
  if (b0 < 0x80) return { codePoint: b0, size: 1 };
  const size = b0 >= 0xf0 && b0 <= 0xf4 ? 4 : b0 >= 0xe0 ? (b0 >= 0xf0 ? 0 : 3) : b0 >= 0xc2 ? 2 : 0;
  if (size === 0 || i + size > bytes.length) return undefined;
  let codePoint = b0 & (0xff >> (size + 1));
  for (let k = 1; k < size; k++) {
    const b = bytes[i + k] ?? 0;
    if ((b & 0xc0) !== 0x80) return undefined;
    codePoint = (codePoint << 6) | (b & 0x3f);
  }
  const min = size === 2 ? 0x80 : size === 3 ? 0x800 : 0x10000;
  if (codePoint < min || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return undefined;
  return { codePoint, size };
}

const shortEscapes: ReadonlyMap<number, string> = new Map([
  [0x07, '\\a'],
  [0x08, '\\b'],
  [0x0c, '\\f'],
  [0x0a, '\\n'],
  [0x0d, '\\r'],
  [0x09, '\\t'],
  [0x0b, '\\v'],
]);

/** Go's strconv.Quote (fmt's %q) over raw bytes, as etcdctl applies it to keys and values. */
export function goQuote(input: Uint8Array | string): string {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const rune = decodeRune(bytes, i);
    if (rune === undefined) {
      out += `\\x${hex(bytes[i] ?? 0, 2)}`;
      i++;
      continue;
    }
    i += rune.size;
    out += quoteRune(rune.codePoint);
  }
  return out + '"';
}

function quoteRune(r: number): string {
  if (r === 0x22 || r === 0x5c) return `\\${String.fromCharCode(r)}`;
  if (isGoPrint(r)) return String.fromCodePoint(r);
  const short = shortEscapes.get(r);
  if (short !== undefined) return short;
  if (r < 0x20 || r === 0x7f) return `\\x${hex(r, 2)}`;
  if (r < 0x10000) return `\\u${hex(r, 4)}`;
  return `\\U${hex(r, 8)}`;
}

/** A JSON string as Go's encoding/json writes it: HTML-safe, with \u2028 and \u2029 escaped. */
export function goJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20 || c === 0x3c || c === 0x3e || c === 0x26) out += `\\u00${hexDigits[c >> 4]}${hexDigits[c & 0xf]}`;
    else if (c === 0x2028 || c === 0x2029) out += `\\u${hex(c, 4)}`;
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return out + '"';
}

/** A JSON string as zap's JSON encoder writes it (no HTML escaping). */
export function zapJsonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c < 0x20) out += `\\u00${hex(c, 2)}`;
    else out += ch;
  }
  return out + '"';
}

const nsPerUs = 1000n;
const nsPerMs = 1000_000n;
const nsPerS = 1000_000_000n;

/** Go's time.Duration.String for a duration in nanoseconds: "1.5s", "2.345ms", "1m0.5s", "0s". */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const negative = ns < 0n;
  const u = negative ? -ns : ns;
  let text: string;
  if (u < nsPerS) {
    if (u < nsPerUs) text = `${u}ns`;
    else if (u < nsPerMs) text = `${fraction(u, 3)}µs`;
    else text = `${fraction(u, 6)}ms`;
  } else {
    const totalSeconds = u / nsPerS;
    const hours = totalSeconds / 3600n;
    const minutes = (totalSeconds / 60n) % 60n;
    const seconds = fraction(u % (60n * nsPerS), 9);
    text = `${seconds}s`;
    if (hours > 0n || minutes > 0n) text = `${minutes}m${text}`;
    if (hours > 0n) text = `${hours}h${text}`;
  }
  return negative ? `-${text}` : text;
}

/** value / 10^digits with trailing zeros of the fraction removed, as Duration.String prints it. */
function fraction(value: bigint, digits: number): string {
  const scale = 10n ** BigInt(digits);
  const whole = value / scale;
  const frac = (value % scale).toString().padStart(digits, '0').replace(/0+$/, '');
  return frac.length === 0 ? `${whole}` : `${whole}.${frac}`;
}

const sizeSuffixes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];

/** go-humanize's Bytes (SI units): "20 kB", "1.2 MB", "9 B". */
export function humanizeBytes(size: bigint): string {
  if (size < 10n) return `${size} B`;
  const n = Number(size);
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const suffix = sizeSuffixes[e] ?? 'EB';
  // Tenths, rounded half up as go-humanize does before formatting.
  const tenths = Math.floor((n / 1000 ** e) * 10 + 0.5);
  if (tenths < 100) return `${Math.floor(tenths / 10)}.${tenths % 10} ${suffix}`;
  return `${roundHalfEven(tenths)} ${suffix}`;
}

/** fmt's %.0f of tenths/10: exact halves round to even, as Go's strconv does. */
function roundHalfEven(tenths: number): number {
  const whole = Math.floor(tenths / 10);
  const rest = tenths % 10;
  if (rest > 5) return whole + 1;
  if (rest < 5) return whole;
  return whole % 2 === 0 ? whole : whole + 1;
}

/** fmt's %v of a []string: "[a b c]". */
export function goStringSlice(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}

/** A local timestamp as zap's ISO8601 encoder writes it: 2006-01-02T15:04:05.000Z0700. */
export function zapTimestamp(date: Date): string {
  return `${localDate(date)}T${localClock(date)}.${pad(date.getMilliseconds(), 3)}${zoneOffset(date)}`;
}

/** A local timestamp as capnslog writes it: 2006-01-02 15:04:05.000000. */
export function capnslogTimestamp(date: Date): string {
  return `${localDate(date)} ${localClock(date)}.${pad(date.getMilliseconds() * 1000, 6)}`;
}

function localDate(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)}`;
}

function localClock(d: Date): string {
  return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}`;
}

function zoneOffset(d: Date): string {
  const offsetMin = -d.getTimezoneOffset();
  if (offsetMin === 0) return 'Z';
  const sign = offsetMin > 0 ? '+' : '-';
  const abs = Math.abs(offsetMin);
  return `${sign}${pad(Math.floor(abs / 60), 2)}${pad(abs % 60, 2)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
