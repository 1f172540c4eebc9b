/**
 * HPACK Huffman decoding (RFC 7541 section 5.2 and Appendix B).
 *
 * The RFC's code is canonical: codes are handed out in order of (length, symbol), so the 257 code
 * lengths below define the whole table. One letter per symbol 0..256 (256 = EOS): 'A' = 5 bits ... 'Z' = 30.
 * Decoding walks a 4-bit-at-a-time state machine built once from the tree: every code is at least 5 bits
 * long, so one nibble completes at most one symbol.
 */

const codeLengths =
  'ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCCCCCCCCCCCCCCCCDCDIOIJBKABABABBB' +
  'ACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRSTSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQ' +
  'VWWVWTQQVVXWWWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ';

const symbolCount = 257;
const eos = 256;

export interface HuffmanCode {
  readonly code: number;
  readonly bits: number;
}

/** The canonical code of every symbol, index = symbol (exported for tests). */
export const huffmanCodes: readonly HuffmanCode[] = buildCodes();

function buildCodes(): HuffmanCode[] {
  if (codeLengths.length !== symbolCount) throw new Error('hpack: huffman length table is corrupt');
  const lengths = Array.from(codeLengths, (c) => c.charCodeAt(0) - 65 + 5);
  const order = [...lengths.keys()].sort((a, b) => (lengths[a]! - lengths[b]!) || a - b);
  const codes: HuffmanCode[] = new Array<HuffmanCode>(symbolCount);
  let code = 0;
  let previousBits = lengths[order[0]!]!;
  order.forEach((symbol, i) => {
    const bits = lengths[symbol]!;
    if (i > 0) code = (code + 1) * 2 ** (bits - previousBits);
    previousBits = bits;
    codes[symbol] = { code, bits };
  });
  return codes;
}

// Transition entry layout (one Int32 per state x nibble): bits 0..7 next state, bits 8..16 emitted
// symbol + 1 (0 = none), bit 17 = the nibble ran into EOS (a decoding error).
const emitShift = 8;
const failFlag = 1 << 17;

interface DecodeTables {
  readonly transitions: Int32Array;
  /** A state may end a string only if its path from the root is at most 7 one-bits (EOS padding). */
  readonly acceptsEnd: Uint8Array;
}

const tables: DecodeTables = buildTables();

function buildTables(): DecodeTables {
  // Tree as arrays: child[node*2 + bit]; a leaf is stored as -(symbol + 1).
  const child: number[] = [0, 0];
  let nodes = 1;
  for (let symbol = 0; symbol < symbolCount; symbol++) {
    const { code, bits } = huffmanCodes[symbol]!;
    let node = 0;
    for (let b = bits - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) % 2;
      const slot = node * 2 + bit;
      if (b === 0) {
        child[slot] = -(symbol + 1);
      } else {
        if (child[slot] === 0) {
          child[slot] = nodes++;
          child.push(0, 0);
        }
        node = child[slot]!;
      }
    }
  }
  const acceptsEnd = new Uint8Array(nodes);
  for (let node = 0, depth = 0; depth <= 7; depth++) {
    acceptsEnd[node] = 1;
    const next = child[node * 2 + 1]!;
    if (next <= 0) break;
    node = next;
  }
  const transitions = new Int32Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      transitions[state * 16 + nibble] = walkNibble(child, state, nibble);
    }
  }
  return { transitions, acceptsEnd };
}

function walkNibble(child: readonly number[], state: number, nibble: number): number {
  let node = state;
  let emitted = 0;
  for (let b = 3; b >= 0; b--) {
    const next = child[node * 2 + ((nibble >> b) & 1)]!;
    if (next < 0) {
      const symbol = -next - 1;
      if (symbol === eos) return failFlag;
      emitted = symbol + 1;
      node = 0;
    } else {
      node = next;
    }
  }
  return node | (emitted << emitShift);
}

export class HuffmanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HuffmanError';
  }
}

/** Reused output space: header strings are short, and decoding is synchronous. */
let scratch = new Uint8Array(4096);

/** One char per octet; short strings skip Buffer#toString's fixed cost. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 1024) return Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start).toString('latin1');
  return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
}

/** Decodes `input[start, end)` into a latin1 string (one char per octet). */
export function huffmanDecode(input: Uint8Array, start: number, end: number): string {
  const { transitions, acceptsEnd } = tables;
  if (scratch.length < (end - start) * 2) scratch = new Uint8Array((end - start) * 2);
  const out = scratch;
  let length = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = input[i]!;
    for (let shift = 4; shift >= 0; shift -= 4) {
      const t = transitions[state * 16 + ((byte >> shift) & 15)]!;
      if ((t & failFlag) !== 0) throw new HuffmanError('hpack: EOS symbol inside a huffman string');
      const emitted = t >> emitShift;
      if (emitted !== 0) out[length++] = emitted - 1;
      state = t & 0xff;
    }
  }
  if (acceptsEnd[state] !== 1) throw new HuffmanError('hpack: bad huffman padding');
  return latin1(out, 0, length);
}
