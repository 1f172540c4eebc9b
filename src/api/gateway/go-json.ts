/**
 * JSON as Go's encoding/json reads and writes it, because etcd's gateway answers with Go's own texts:
 * a body that is not JSON gets "invalid character 'b' looking for beginning of object key string", a
 * truncated one "unexpected EOF", and strings are written HTML-safe (\u003c) as json.Marshal does.
 *
 * The scanner is Go's state machine (encoding/json/scanner.go): the same states, the same error
 * contexts, byte by byte, so a stream of concatenated values (the watch body) splits where Go's Decoder
 * splits it. Parsing a value already known to be valid is then a plain recursive walk.
 */
import { assert } from '../../base/assert.js';

/** An error whose message is exactly the text Go would produce. */
export class GoJsonError extends Error {}

type Step = (s: Scanner, c: number) => Outcome;
const enum Outcome { Continue, BeginValue, End, Error }
const enum Parse { ObjectKey, ObjectValue, ArrayValue }

/** Nesting beyond this is refused rather than recursed into. */
const nestingMax = 10_000;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Go's quoteChar: the offending byte as the error text shows it. */
function quoteChar(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  if (c === 0x0a) return `'\\n'`;
  if (c === 0x0d) return `'\\r'`;
  if (c === 0x09) return `'\\t'`;
  if (c === 0x07) return `'\\a'`;
  if (c === 0x08) return `'\\b'`;
  if (c === 0x0c) return `'\\f'`;
  if (c === 0x0b) return `'\\v'`;
  if (c === 0x5c) return `'\\\\'`;
  if (c < 0x20 || c === 0x7f || c >= 0x80) return `'\\x${c.toString(16).padStart(2, '0')}'`;
  return `'${String.fromCharCode(c)}'`;
}

class Scanner {
  step: Step = beginValue;
  readonly stack: Parse[] = [];
  error: string | null = null;
  endTop = false;

  fail(c: number, context: string): Outcome {
    this.step = failed;
    this.error = `invalid character ${quoteChar(c)} ${context}`;
    return Outcome.Error;
  }

  push(p: Parse): Outcome {
    if (this.stack.length >= nestingMax) {
      this.step = failed;
      this.error = 'exceeded max depth';
      return Outcome.Error;
    }
    this.stack.push(p);
    return Outcome.BeginValue;
  }

  /** Go's scanner.eof: whether the bytes so far form a complete value. */
  eof(): boolean {
    if (this.error !== null) return false;
    if (this.endTop) return true;
    this.step(this, 0x20);
    return this.endTop;
  }
}

function failed(): Outcome {
  return Outcome.Error;
}

function beginValueOrEmpty(s: Scanner, c: number): Outcome {
  if (isSpace(c)) return Outcome.Continue;
  if (c === 0x5d /* ] */) return endValue(s, c);
  return beginValue(s, c);
}

function beginValue(s: Scanner, c: number): Outcome {
  if (isSpace(c)) return Outcome.Continue;
  switch (c) {
    case 0x7b /* { */:
      s.step = beginStringOrEmpty;
      return s.push(Parse.ObjectKey);
    case 0x5b /* [ */:
      s.step = beginValueOrEmpty;
      return s.push(Parse.ArrayValue);
    case 0x22:
      s.step = inString;
      return Outcome.BeginValue;
    case 0x2d /* - */:
      s.step = neg;
      return Outcome.BeginValue;
    case 0x30:
      s.step = zero;
      return Outcome.BeginValue;
    case 0x74 /* t */:
      s.step = literal('rue', 'true', 0);
      return Outcome.BeginValue;
    case 0x66 /* f */:
      s.step = literal('alse', 'false', 0);
      return Outcome.BeginValue;
    case 0x6e /* n */:
      s.step = literal('ull', 'null', 0);
      return Outcome.BeginValue;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.step = digits;
    return Outcome.BeginValue;
  }
  return s.fail(c, 'looking for beginning of value');
}

function beginStringOrEmpty(s: Scanner, c: number): Outcome {
  if (isSpace(c)) return Outcome.Continue;
  if (c === 0x7d /* } */) {
    s.stack[s.stack.length - 1] = Parse.ObjectValue;
    return endValue(s, c);
  }
  return beginString(s, c);
}

function beginString(s: Scanner, c: number): Outcome {
  if (isSpace(c)) return Outcome.Continue;
  if (c === 0x22) {
    s.step = inString;
    return Outcome.BeginValue;
  }
  return s.fail(c, 'looking for beginning of object key string');
}

function endValue(s: Scanner, c: number): Outcome {
  const n = s.stack.length;
  if (n === 0) {
    s.step = endTop;
    s.endTop = true;
    return endTop(s, c);
  }
  if (isSpace(c)) {
    s.step = endValue;
    return Outcome.Continue;
  }
  switch (s.stack[n - 1]) {
    case Parse.ObjectKey:
      if (c === 0x3a /* : */) {
        s.stack[n - 1] = Parse.ObjectValue;
        s.step = beginValue;
        return Outcome.Continue;
      }
      return s.fail(c, 'after object key');
    case Parse.ObjectValue:
      if (c === 0x2c /* , */) {
        s.stack[n - 1] = Parse.ObjectKey;
        s.step = beginString;
        return Outcome.Continue;
      }
      if (c === 0x7d) return popParse(s);
      return s.fail(c, 'after object key:value pair');
    default:
      if (c === 0x2c) {
        s.step = beginValue;
        return Outcome.Continue;
      }
      if (c === 0x5d) return popParse(s);
      return s.fail(c, 'after array element');
  }
}

function popParse(s: Scanner): Outcome {
  s.stack.pop();
  if (s.stack.length === 0) {
    s.step = endTop;
    s.endTop = true;
  } else {
    s.step = endValue;
  }
  return Outcome.Continue;
}

function endTop(s: Scanner, c: number): Outcome {
  if (!isSpace(c)) s.fail(c, 'after top-level value');
  return Outcome.End;
}

function inString(s: Scanner, c: number): Outcome {
  if (c === 0x22) {
    s.step = endValue;
    return Outcome.Continue;
  }
  if (c === 0x5c) {
    s.step = inStringEsc;
    return Outcome.Continue;
  }
  if (c < 0x20) return s.fail(c, 'in string literal');
  return Outcome.Continue;
}

function inStringEsc(s: Scanner, c: number): Outcome {
  if ('bfnrt\\/"'.includes(String.fromCharCode(c))) {
    s.step = inString;
    return Outcome.Continue;
  }
  if (c === 0x75 /* u */) {
    s.step = hexEscape(4);
    return Outcome.Continue;
  }
  return s.fail(c, 'in string escape code');
}

function hexEscape(left: number): Step {
  return (s, c) => {
    if (!isHex(c)) return s.fail(c, 'in \\u hexadecimal character escape');
    s.step = left === 1 ? inString : hexEscape(left - 1);
    return Outcome.Continue;
  };
}

function neg(s: Scanner, c: number): Outcome {
  if (c === 0x30) {
    s.step = zero;
    return Outcome.Continue;
  }
  if (c >= 0x31 && c <= 0x39) {
    s.step = digits;
    return Outcome.Continue;
  }
  return s.fail(c, 'in numeric literal');
}

function digits(s: Scanner, c: number): Outcome {
  if (isDigit(c)) return Outcome.Continue;
  return zero(s, c);
}

function zero(s: Scanner, c: number): Outcome {
  if (c === 0x2e /* . */) {
    s.step = dot;
    return Outcome.Continue;
  }
  if (c === 0x65 || c === 0x45) {
    s.step = exponent;
    return Outcome.Continue;
  }
  return endValue(s, c);
}

function dot(s: Scanner, c: number): Outcome {
  if (isDigit(c)) {
    s.step = dotDigits;
    return Outcome.Continue;
  }
  return s.fail(c, 'after decimal point in numeric literal');
}

function dotDigits(s: Scanner, c: number): Outcome {
  if (isDigit(c)) return Outcome.Continue;
  if (c === 0x65 || c === 0x45) {
    s.step = exponent;
    return Outcome.Continue;
  }
  return endValue(s, c);
}

function exponent(s: Scanner, c: number): Outcome {
  if (c === 0x2b || c === 0x2d) {
    s.step = exponentSign;
    return Outcome.Continue;
  }
  return exponentSign(s, c);
}

function exponentSign(s: Scanner, c: number): Outcome {
  if (isDigit(c)) {
    s.step = exponentDigits;
    return Outcome.Continue;
  }
  return s.fail(c, 'in exponent of numeric literal');
}

function exponentDigits(s: Scanner, c: number): Outcome {
  if (isDigit(c)) return Outcome.Continue;
  return endValue(s, c);
}

/** true, false, null: each remaining letter in turn, with Go's "(expecting 'r')" hint. */
function literal(rest: string, word: string, at: number): Step {
  return (s, c) => {
    const want = rest.charCodeAt(at);
    if (c !== want) return s.fail(c, `in literal ${word} (expecting ${quoteChar(want)})`);
    s.step = at + 1 === rest.length ? endValue : literal(rest, word, at + 1);
    return Outcome.Continue;
  };
}

// ------------------------------------------------------------------------------------------ decoding

export type ScanResult =
  | { readonly kind: 'value'; readonly start: number; readonly end: number }
  | { readonly kind: 'eof' }
  | { readonly kind: 'more' }
  | { readonly kind: 'error'; readonly message: string };

/**
 * Go's Decoder.Decode, resumable: feed it the same growing buffer; it scans only bytes it has not seen.
 * After a 'value' or 'error' it starts afresh at the offset the caller continues from.
 */
export class ValueScanner {
  #s = new Scanner();
  #start = -1;
  #from = 0;
  #at = 0;

  /** Starts over at `from` (the end of the previous value). */
  reset(from: number): void {
    this.#s = new Scanner();
    this.#start = -1;
    this.#from = from;
    this.#at = from;
  }

  /**
   * The next value's bounds in buf, 'eof' when only whitespace is left and the input has ended, 'more'
   * when the value is not complete yet, or Go's error ("unexpected EOF" for a value cut short by the end).
   */
  scan(buf: Uint8Array, ended: boolean): ScanResult {
    const s = this.#s;
    for (let i = this.#at; i < buf.length; i++) {
      if (s.step === inString) i = skipPlainString(buf, i);
      if (i === buf.length) break;
      const c = buf[i]!;
      const outcome = s.step(s, c);
      if (this.#start < 0 && !isSpace(c)) this.#start = i;
      if (outcome === Outcome.Error) return { kind: 'error', message: s.error ?? 'syntax error' };
      if (outcome === Outcome.End) return { kind: 'value', start: this.#start, end: i };
      // An object or array ends at its closing byte: Go invents the space that ends it.
      if (s.endTop && (c === 0x7d || c === 0x5d)) return { kind: 'value', start: this.#start, end: i + 1 };
    }
    this.#at = Math.max(buf.length, this.#from);
    if (!ended) return { kind: 'more' };
    if (this.#start < 0) return { kind: 'eof' };
    if (s.step(s, 0x20) === Outcome.End) return { kind: 'value', start: this.#start, end: buf.length };
    return { kind: 'error', message: 'unexpected EOF' };
  }
}

/** Inside a string only '"', '\\' and control bytes matter: skip the rest without stepping (long values). */
function skipPlainString(buf: Uint8Array, from: number): number {
  let i = from;
  while (i < buf.length) {
    const c = buf[i]!;
    if (c === 0x22 || c === 0x5c || c < 0x20) break;
    i++;
  }
  return i;
}

/** ValueScanner's answer for buf[from..] in one go. */
export function scanNext(buf: Uint8Array, from: number, ended: boolean): ScanResult {
  const scanner = new ValueScanner();
  scanner.reset(from);
  return scanner.scan(buf, ended);
}

/** Go's checkValid (json.Unmarshal's first pass) over a whole text. */
export function checkValid(bytes: Uint8Array): void {
  const s = new Scanner();
  for (const c of bytes) {
    if (s.step(s, c) === Outcome.Error) throw new GoJsonError(s.error ?? 'syntax error');
  }
  if (!s.eof()) {
    if (s.error !== null) throw new GoJsonError(s.error);
    throw new GoJsonError('unexpected end of JSON input');
  }
}

export type JsonNode =
  | { readonly type: 'object'; readonly fields: ReadonlyMap<string, JsonNode> }
  | { readonly type: 'array'; readonly items: readonly JsonNode[] }
  | { readonly type: 'string'; readonly value: string; readonly raw: string }
  | { readonly type: 'number'; readonly raw: string }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'null' };

/** Go's name for a JSON value's kind in "cannot unmarshal X into ...". */
export function kindName(node: JsonNode): string {
  return node.type === 'bool' ? 'bool' : node.type;
}

/** Parses text that scanNext or checkValid accepted. Duplicate keys: the last wins, as in a Go map. */
export function parseValid(text: string): JsonNode {
  const p = { text, at: 0 };
  const node = parseAt(p, 0);
  return node;
}

function skipSpace(p: { text: string; at: number }): void {
  while (p.at < p.text.length && isSpace(p.text.charCodeAt(p.at))) p.at++;
}

function parseAt(p: { text: string; at: number }, depth: number): JsonNode {
  assert(depth <= nestingMax, 'nesting was checked by the scanner');
  skipSpace(p);
  const c = p.text[p.at];
  if (c === '{') {
    p.at++;
    const fields = new Map<string, JsonNode>();
    skipSpace(p);
    if (p.text[p.at] === '}') {
      p.at++;
      return { type: 'object', fields };
    }
    for (;;) {
      skipSpace(p);
      const key = parseAt(p, depth + 1);
      assert(key.type === 'string', 'object keys are strings');
      skipSpace(p);
      p.at++; // ':'
      fields.set(key.value, parseAt(p, depth + 1));
      skipSpace(p);
      if (p.text[p.at++] === '}') return { type: 'object', fields };
    }
  }
  if (c === '[') {
    p.at++;
    const items: JsonNode[] = [];
    skipSpace(p);
    if (p.text[p.at] === ']') {
      p.at++;
      return { type: 'array', items };
    }
    for (;;) {
      items.push(parseAt(p, depth + 1));
      skipSpace(p);
      if (p.text[p.at++] === ']') return { type: 'array', items };
    }
  }
  if (c === '"') {
    const start = p.at;
    p.at++;
    let escaped = false;
    for (let c = p.text.charCodeAt(p.at); c !== 0x22; c = p.text.charCodeAt(p.at)) {
      escaped ||= c === 0x5c;
      p.at += c === 0x5c ? 2 : 1;
    }
    p.at++;
    const raw = p.text.slice(start, p.at);
    return { type: 'string', value: escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1), raw };
  }
  if (c === 't' || c === 'f') {
    p.at += c === 't' ? 4 : 5;
    return { type: 'bool', value: c === 't' };
  }
  if (c === 'n') {
    p.at += 4;
    return { type: 'null' };
  }
  const start = p.at;
  while (p.at < p.text.length && /[-+.eE0-9]/.test(p.text[p.at]!)) p.at++;
  return { type: 'number', raw: p.text.slice(start, p.at) };
}

// ------------------------------------------------------------------------------------------ encoding

const hexDigits = '0123456789abcdef';

/** json.Marshal of a Go string: HTML-safe, \u2028/\u2029 escaped, other control bytes as \u00XX. */
export function goQuote(s: string): string {
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | null = null;
    if (c < 0x20 || c === 0x22 || c === 0x5c || c === 0x3c || c === 0x3e || c === 0x26) {
      if (c === 0x22) esc = '\\"';
      else if (c === 0x5c) esc = '\\\\';
      else if (c === 0x0a) esc = '\\n';
      else if (c === 0x0d) esc = '\\r';
      else if (c === 0x09) esc = '\\t';
      else esc = `\\u00${hexDigits[c >> 4]}${hexDigits[c & 15]}`;
    } else if (c === 0x2028 || c === 0x2029) {
      esc = `\\u${c.toString(16)}`;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (pair) {
        i++;
        continue;
      }
      esc = '\\ufffd'; // a lone surrogate is invalid UTF-8 to Go
    }
    if (esc === null) continue;
    out += s.slice(from, i) + esc;
    from = i + 1;
  }
  return `${out}${s.slice(from)}"`;
}

// ------------------------------------------------------------------------------------------ base64

const stdAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const decodeMap = new Int16Array(256).fill(-1);
for (let i = 0; i < stdAlphabet.length; i++) decodeMap[stdAlphabet.charCodeAt(i)] = i;

const wellFormedBase64 = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function corrupt(at: number): GoJsonError {
  return new GoJsonError(`illegal base64 data at input byte ${at}`);
}

/**
 * base64.StdEncoding.DecodeString as Go does it: padding required, \r and \n skipped anywhere, and the
 * error names the same byte offset Go's decodeQuantum names.
 */
export function goBase64Decode(text: string): Buffer {
  // Well-formed input (the norm) decodes natively; the walk below is for Go's error offsets and newlines.
  if (text.length % 4 === 0 && wellFormedBase64.test(text)) return Buffer.from(text, 'base64');
  const src = Buffer.from(text, 'latin1');
  const out: number[] = [];
  let si = 0;
  while (si < src.length) {
    const quad: number[] = [];
    let dlen = 4;
    let trailing = -1;
    for (let j = 0; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        throw corrupt(si - j);
      }
      const c = src[si++]!;
      const v = decodeMap[c]!;
      if (v >= 0) {
        quad[j] = v;
        continue;
      }
      if (c === 0x0a || c === 0x0d) {
        j--;
        continue;
      }
      if (c !== 0x3d /* = */ || j < 2) throw corrupt(si - 1);
      if (j === 2) {
        while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
        if (si === src.length) throw corrupt(src.length);
        if (src[si] !== 0x3d) throw corrupt(si - 1);
        si++;
      }
      while (si < src.length && (src[si] === 0x0a || src[si] === 0x0d)) si++;
      if (si < src.length) trailing = si;
      dlen = j;
      break;
    }
    const val = ((quad[0] ?? 0) << 18) | ((quad[1] ?? 0) << 12) | ((quad[2] ?? 0) << 6) | (quad[3] ?? 0);
    const bytes = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff];
    for (let k = 0; k < dlen - 1; k++) out.push(bytes[k]!);
    if (trailing >= 0) throw corrupt(trailing);
    if (dlen < 4) break;
  }
  return Buffer.from(out);
}
