/**
 * The slice of HPACK (RFC 7541) the authority front needs: a full decoder (static + dynamic table,
 * table size updates, Huffman strings) that tracks the client's encoder, and an encoder that writes
 * only literals that never touch the server's dynamic table.
 *
 * Why not an npm package: hpack.js (the only maintained-looking candidate, `npm view hpack.js`) is
 * 2.1.6 from the spdy-transport era, stream-based on readable-stream@2 with obuf/wbuf; it is not in
 * our dependencies and the decoder here is small. Strings are latin1 so every octet round-trips.
 */
import { huffmanDecode, HuffmanError, latin1 } from './hpack-huffman.js';

export interface HeaderField {
  readonly name: string;
  readonly value: string;
  /** Sent as "literal never indexed" (RFC 7541 6.2.3): intermediaries must keep it that way. */
  readonly neverIndexed: boolean;
}

export interface DecodedBlock {
  readonly fields: HeaderField[];
  /** Dynamic table size updates found at the start of the block, in order. */
  readonly tableSizeUpdates: number[];
}

export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HpackError';
  }
}

/** Per-entry overhead that RFC 7541 4.1 adds to the octet length of name and value. */
const entryOverheadBytes = 32;
const defaultTableBytes = 4096;
/** Integers above this are never legitimate here (sizes, indexes, lengths) and guard the arithmetic. */
const integerMax = 2 ** 31 - 1;

const staticTable: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ['accept-language', ''], ['accept-ranges', ''], ['accept', ''],
  ['access-control-allow-origin', ''], ['age', ''], ['allow', ''], ['authorization', ''],
  ['cache-control', ''], ['content-disposition', ''], ['content-encoding', ''], ['content-language', ''],
  ['content-length', ''], ['content-location', ''], ['content-range', ''], ['content-type', ''],
  ['cookie', ''], ['date', ''], ['etag', ''], ['expect', ''], ['expires', ''], ['from', ''], ['host', ''],
  ['if-match', ''], ['if-modified-since', ''], ['if-none-match', ''], ['if-range', ''],
  ['if-unmodified-since', ''], ['last-modified', ''], ['link', ''], ['location', ''], ['max-forwards', ''],
  ['proxy-authenticate', ''], ['proxy-authorization', ''], ['range', ''], ['referer', ''], ['refresh', ''],
  ['retry-after', ''], ['server', ''], ['set-cookie', ''], ['strict-transport-security', ''],
  ['transfer-encoding', ''], ['user-agent', ''], ['vary', ''], ['via', ''], ['www-authenticate', ''],
];

/** Name -> lowest static index with that name (1-based), so re-encoded names cost one octet. */
const staticNameIndex: ReadonlyMap<string, number> = new Map(
  [...staticTable.entries()].reverse().map(([i, [name]]) => [name, i + 1]),
);

export interface HpackDecoderOptions {
  /** Largest table size the client may switch to (the SETTINGS_HEADER_TABLE_SIZE bound we accept). */
  readonly tableBytesMax: number;
  /**
   * Table size before any size update: 4096 on HTTP/2 (an encoder must signal any other size, and
   * nghttp2 keeps 4096 until it does). RFC 7541's examples assume other starting sizes.
   */
  readonly initialTableBytes?: number;
  /** Decoded header list size bound (RFC 9113 6.5.2 accounting: name + value + 32 per field). */
  readonly headerListBytesMax: number;
}

/** Mirrors one client's HPACK encoder; decode every header block of the connection, in order. */
export class HpackDecoder {
  readonly #options: HpackDecoderOptions;
  /** Oldest entry first; HPACK index 62 is the last element. */
  readonly #entries: Array<readonly [string, string]> = [];
  #tableBytes = 0;
  #tableBytesCapacity = defaultTableBytes;
  #input: Uint8Array = new Uint8Array(0);
  #pos = 0;

  constructor(options: HpackDecoderOptions) {
    this.#options = options;
    this.#tableBytesCapacity = options.initialTableBytes ?? defaultTableBytes;
  }

  get tableBytes(): number {
    return this.#tableBytes;
  }

  get tableEntries(): number {
    return this.#entries.length;
  }

  decode(block: Uint8Array): DecodedBlock {
    this.#input = block;
    this.#pos = 0;
    const fields: HeaderField[] = [];
    const tableSizeUpdates: number[] = [];
    let listBytes = 0;
    while (this.#pos < block.length) {
      const field = this.#decodeOne(fields.length === 0, tableSizeUpdates);
      if (field === undefined) continue;
      listBytes += field.name.length + field.value.length + entryOverheadBytes;
      if (listBytes > this.#options.headerListBytesMax) {
        throw new HpackError(`hpack: header list exceeds ${this.#options.headerListBytesMax} bytes`);
      }
      fields.push(field);
    }
    this.#input = new Uint8Array(0);
    return { fields, tableSizeUpdates };
  }

  #decodeOne(atBlockStart: boolean, tableSizeUpdates: number[]): HeaderField | undefined {
    const first = this.#input[this.#pos]!;
    if (first >= 0x80) {
      const [name, value] = this.#lookup(this.#readInteger(7));
      return { name, value, neverIndexed: false };
    }
    if (first >= 0x40) {
      const field = this.#readLiteral(6, false);
      this.#insert(field.name, field.value);
      return field;
    }
    if (first >= 0x20) {
      if (!atBlockStart) throw new HpackError('hpack: table size update after a header field');
      const size = this.#readInteger(5);
      if (size > this.#options.tableBytesMax) throw new HpackError(`hpack: table size update to ${size} too large`);
      this.#tableBytesCapacity = size;
      this.#evictTo(size);
      tableSizeUpdates.push(size);
      return undefined;
    }
    return this.#readLiteral(4, first >= 0x10);
  }

  #readLiteral(prefixBits: number, neverIndexed: boolean): HeaderField {
    const index = this.#readInteger(prefixBits);
    const name = index === 0 ? this.#readString() : this.#lookup(index)[0];
    return { name, value: this.#readString(), neverIndexed };
  }

  #lookup(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError('hpack: index 0');
    if (index <= staticTable.length) return staticTable[index - 1]!;
    const entry = this.#entries[this.#entries.length - (index - staticTable.length)];
    if (entry === undefined) throw new HpackError(`hpack: index ${index} beyond the dynamic table`);
    return entry;
  }

  #insert(name: string, value: string): void {
    const bytes = name.length + value.length + entryOverheadBytes;
    if (bytes > this.#tableBytesCapacity) {
      // RFC 7541 4.4: an entry larger than the table empties it and is not added.
      this.#evictTo(0);
      return;
    }
    this.#evictTo(this.#tableBytesCapacity - bytes);
    this.#entries.push([name, value]);
    this.#tableBytes += bytes;
  }

  #evictTo(bytesMax: number): void {
    let drop = 0;
    while (this.#tableBytes > bytesMax) {
      const [name, value] = this.#entries[drop++]!;
      this.#tableBytes -= name.length + value.length + entryOverheadBytes;
    }
    if (drop > 0) this.#entries.splice(0, drop);
  }

  #readInteger(prefixBits: number): number {
    const input = this.#input;
    const mask = (1 << prefixBits) - 1;
    let value = input[this.#pos++]! & mask;
    if (value < mask) return value;
    for (let shift = 0; ; shift += 7) {
      if (this.#pos >= input.length) throw new HpackError('hpack: truncated integer');
      if (shift > 28) throw new HpackError('hpack: integer too large');
      const byte = input[this.#pos++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (value > integerMax) throw new HpackError('hpack: integer too large');
      if ((byte & 0x80) === 0) return value;
    }
  }

  #readString(): string {
    if (this.#pos >= this.#input.length) throw new HpackError('hpack: truncated string');
    const huffman = (this.#input[this.#pos]! & 0x80) !== 0;
    const length = this.#readInteger(7);
    const start = this.#pos;
    const end = start + length;
    if (end > this.#input.length) throw new HpackError('hpack: string runs past the block');
    this.#pos = end;
    if (!huffman) return latin1(this.#input, start, end);
    try {
      return huffmanDecode(this.#input, start, end);
    } catch (err) {
      if (err instanceof HuffmanError) throw new HpackError(err.message);
      throw err;
    }
  }
}

/**
 * Encodes `fields` as literals without indexing (or never indexed where the client said so), after
 * the given table size updates. Such a block neither reads nor changes the receiver's dynamic table,
 * so it is valid whatever that table holds.
 */
export function encodeLiteralBlock(fields: readonly HeaderField[], tableSizeUpdates: readonly number[]): Buffer {
  let bytes = tableSizeUpdates.length * 6;
  for (const f of fields) bytes += 6 + f.name.length + 6 + f.value.length + 6;
  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  for (const size of tableSizeUpdates) pos = writeInteger(out, pos, 0x20, 5, size);
  for (const f of fields) {
    const flag = f.neverIndexed ? 0x10 : 0x00;
    const nameIndex = staticNameIndex.get(f.name);
    if (nameIndex !== undefined) {
      pos = writeInteger(out, pos, flag, 4, nameIndex);
    } else {
      out[pos++] = flag;
      pos = writeString(out, pos, f.name);
    }
    pos = writeString(out, pos, f.value);
  }
  return out.subarray(0, pos);
}

function writeInteger(out: Buffer, start: number, flags: number, prefixBits: number, value: number): number {
  let pos = start;
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out[pos++] = flags | value;
    return pos;
  }
  out[pos++] = flags | mask;
  let rest = value - mask;
  while (rest >= 0x80) {
    out[pos++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[pos++] = rest;
  return pos;
}

/** Below this length a plain loop beats Buffer.write's per-call overhead. */
const shortStringChars = 64;

function writeString(out: Buffer, start: number, s: string): number {
  const pos = writeInteger(out, start, 0x00, 7, s.length);
  if (s.length >= shortStringChars) return pos + out.write(s, pos, 'latin1');
  for (let i = 0; i < s.length; i++) out[pos + i] = s.charCodeAt(i);
  return pos + s.length;
}
