/**
 * The little DER (X.690) this project needs: encoding a self-signed certificate (--auto-tls) and reading
 * the serial numbers out of a certificate revocation list (--client-crl-file, --peer-crl-file). Not a
 * general ASN.1 library: lengths up to 2^32, definite lengths only, no validation of nesting rules.
 */
import { assert } from '../base/assert.js';

export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  printableString: 0x13,
  utcTime: 0x17,
  generalizedTime: 0x18,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Nested deeper than this, a document is refused (a CRL is three levels deep where we read it). */
const depthMax = 32;

function encodeLength(n: number): Buffer {
  assert(Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32, () => `DER length ${n} out of range`);
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(Tag.sequence, Buffer.concat(items));
export const set = (...items: Buffer[]): Buffer => tlv(Tag.set, Buffer.concat(items));
/** [n] EXPLICIT, constructed. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** [n] IMPLICIT, primitive (SAN entries). */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

/** A non-negative INTEGER from big-endian magnitude bytes. */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const needsPad = trimmed.length === 0 || (trimmed[0]! & 0x80) !== 0;
  return tlv(Tag.integer, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => BigInt(p));
  assert(parts.length >= 2, () => `bad OID ${dotted}`);
  const out: number[] = [Number(parts[0]! * 40n + parts[1]!)];
  for (const arc of parts.slice(2)) {
    const chunk: number[] = [];
    for (let v = arc; ; v >>= 7n) {
      chunk.unshift(Number(v & 0x7fn) | (chunk.length === 0 ? 0 : 0x80));
      if (v < 0x80n) break;
    }
    out.push(...chunk);
  }
  return tlv(Tag.oid, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 §4.1.2.5 asks. */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  return d.getUTCFullYear() < 2050 ? tlv(Tag.utcTime, Buffer.from(iso.slice(2), 'latin1')) : tlv(Tag.generalizedTime, Buffer.from(iso, 'latin1'));
}

export interface DerNode {
  readonly tag: number;
  readonly content: Buffer;
}

/** The elements directly inside `content` (a SEQUENCE's or SET's body, or a whole document). */
export function children(content: Buffer, depth = 0): DerNode[] {
  if (depth > depthMax) throw new Error('DER nested too deeply');
  const out: DerNode[] = [];
  let pos = 0;
  while (pos < content.length) {
    const tag = content[pos++]!;
    if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not supported');
    let length = content[pos++];
    if (length === undefined) throw new Error('DER: truncated length');
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > 4) throw new Error('DER: unsupported length form');
      length = 0;
      for (let i = 0; i < count; i++) {
        const b = content[pos++];
        if (b === undefined) throw new Error('DER: truncated length');
        length = length * 256 + b;
      }
    }
    if (pos + length > content.length) throw new Error('DER: element runs past its container');
    out.push({ tag, content: content.subarray(pos, pos + length) });
    pos += length;
  }
  return out;
}
