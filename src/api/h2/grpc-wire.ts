/**
 * The gRPC-over-HTTP/2 wire format, free of any HTTP/2 object: length-prefixed message framing,
 * the grpc-timeout and grpc-message encodings, and message decompression. Texts of the errors are
 * the ones Go's grpc server answers, because clients and scripts see them.
 */
import { gunzipSync, inflateSync } from 'node:zlib';
import { GrpcCode } from '../../base/errors.js';

/** One byte of compressed flag, four of big-endian length. */
export const messagePrefixBytes = 5;
/** Above this, a message is written as prefix + payload (two chunks of one writev) instead of being copied. */
export const framingCopyBytesMax = 16 * 1024;
/** A grpc-timeout longer than a Node timer can hold is treated as no deadline. */
const timerMsMax = 2 ** 31 - 1;

/** A call's final status, thrown inside the gRPC layer and turned into trailers. */
export class GrpcStatusError extends Error {
  readonly code: GrpcCode;
  readonly details: string;

  constructor(code: GrpcCode, details: string) {
    super(details);
    this.name = 'GrpcStatusError';
    this.code = code;
    this.details = details;
  }
}

export type MessageEncoding = 'identity' | 'gzip' | 'deflate';

/** The grpc-encoding values we can read; anything else is refused before a message is read. */
export function parseEncoding(header: string | undefined): MessageEncoding | undefined {
  if (header === undefined || header === 'identity') return 'identity';
  if (header === 'gzip' || header === 'deflate') return header;
  return undefined;
}

/** Frames one message. Small payloads are copied behind the prefix so the stream sees a single write. */
export function frameMessage(payload: Uint8Array): Buffer | [Buffer, Uint8Array] {
  if (payload.length > framingCopyBytesMax) {
    const prefix = Buffer.allocUnsafe(messagePrefixBytes);
    prefix[0] = 0;
    prefix.writeUInt32BE(payload.length, 1);
    return [prefix, payload];
  }
  const out = Buffer.allocUnsafe(messagePrefixBytes + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, messagePrefixBytes);
  return out;
}

/**
 * Messages already framed by their producer (each its 5-byte prefix and payload, back to back): a
 * streaming handler that builds many responses at once (a watch fan-out) hands them over as one chunk,
 * so they leave as one write without being copied or framed again.
 */
export class FramedMessages {
  readonly bytes: Buffer;
  readonly count: number;

  constructor(bytes: Buffer, count: number) {
    this.bytes = bytes;
    this.count = count;
  }

  /** The payloads, as views of the bytes (for a transport that needs messages one by one). */
  payloads(): Buffer[] {
    const out: Buffer[] = [];
    let at = 0;
    while (at < this.bytes.length) {
      const len = this.bytes.readUInt32BE(at + 1);
      out.push(this.bytes.subarray(at + messagePrefixBytes, at + messagePrefixBytes + len));
      at += messagePrefixBytes + len;
    }
    if (out.length !== this.count || at !== this.bytes.length) {
      throw new GrpcStatusError(GrpcCode.Internal, `framed messages: ${out.length} of ${this.count} in ${this.bytes.length} bytes`);
    }
    return out;
  }
}

/** Frames several messages into one buffer: the batch one writev of a streaming call sends. */
export function frameMessages(payloads: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const p of payloads) total += messagePrefixBytes + p.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of payloads) {
    out[at] = 0;
    out.writeUInt32BE(p.length, at + 1);
    out.set(p, at + messagePrefixBytes);
    at += messagePrefixBytes + p.length;
  }
  return out;
}

function tooLarge(size: number, max: number): GrpcStatusError {
  return new GrpcStatusError(GrpcCode.ResourceExhausted, `grpc: received message larger than max (${size} vs. ${max})`);
}

/**
 * Cuts a stream of DATA chunks into messages. A message inside one chunk is a view of that chunk, not a
 * copy. The length is checked against the limit as soon as the prefix is read, so an oversized message
 * is refused before any of it is buffered.
 */
export class MessageReader {
  readonly #maxBytes: number;
  readonly #encoding: MessageEncoding;
  /** Only a prefix split across chunks needs a buffer of its own; most calls never allocate it. */
  #prefix: Buffer | null = null;
  #prefixFill = 0;
  #compressed = false;
  #body: Buffer | null = null;
  #bodyFill = 0;

  constructor(options: { maxBytes: number; encoding: MessageEncoding }) {
    this.#maxBytes = options.maxBytes;
    this.#encoding = options.encoding;
  }

  /** True while a message has been started and not finished: the stream may not end here. */
  get midMessage(): boolean {
    return this.#prefixFill > 0 || this.#body !== null;
  }

  /** Calls onMessage for every message the chunk completes; throws GrpcStatusError on bad framing. */
  push(chunk: Buffer, onMessage: (payload: Buffer) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#body !== null) {
        const take = Math.min(chunk.length - at, this.#body.length - this.#bodyFill);
        chunk.copy(this.#body, this.#bodyFill, at, at + take);
        this.#bodyFill += take;
        at += take;
        if (this.#bodyFill === this.#body.length) {
          const body = this.#body;
          this.#body = null;
          onMessage(this.#finish(body));
        }
        continue;
      }
      if (this.#prefixFill === 0 && chunk.length - at >= messagePrefixBytes) {
        const length = this.#readPrefix(chunk, at);
        at += messagePrefixBytes;
        if (chunk.length - at >= length) {
          const body = chunk.subarray(at, at + length);
          at += length;
          onMessage(this.#finish(body));
        } else {
          this.#startBody(length);
        }
        continue;
      }
      const take = Math.min(chunk.length - at, messagePrefixBytes - this.#prefixFill);
      this.#prefix ??= Buffer.allocUnsafe(messagePrefixBytes);
      chunk.copy(this.#prefix, this.#prefixFill, at, at + take);
      this.#prefixFill += take;
      at += take;
      if (this.#prefixFill === messagePrefixBytes) {
        this.#prefixFill = 0;
        const length = this.#readPrefix(this.#prefix, 0);
        if (length === 0) onMessage(this.#finish(Buffer.alloc(0)));
        else this.#startBody(length);
      }
    }
  }

  #startBody(length: number): void {
    this.#body = Buffer.allocUnsafe(length);
    this.#bodyFill = 0;
  }

  #readPrefix(buf: Buffer, at: number): number {
    const flag = buf[at];
    if (flag !== 0 && flag !== 1) {
      throw new GrpcStatusError(GrpcCode.Internal, `grpc: received unexpected payload format ${flag ?? -1}`);
    }
    if (flag === 1 && this.#encoding === 'identity') {
      throw new GrpcStatusError(GrpcCode.Internal, 'grpc: compressed flag set with identity or empty encoding');
    }
    this.#compressed = flag === 1;
    const length = buf.readUInt32BE(at + 1);
    if (length > this.#maxBytes) throw tooLarge(length, this.#maxBytes);
    return length;
  }

  #finish(body: Buffer): Buffer {
    if (!this.#compressed) return body;
    // One byte over the limit is enough to know the message is too large; never inflate a bomb fully.
    const options = { maxOutputLength: this.#maxBytes + 1 };
    let plain: Buffer;
    try {
      plain = this.#encoding === 'gzip' ? gunzipSync(body, options) : inflateSync(body, options);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(this.#maxBytes + 1, this.#maxBytes);
      throw new GrpcStatusError(GrpcCode.Internal, `grpc: failed to decompress the received message ${(err as Error).message}`);
    }
    if (plain.length > this.#maxBytes) throw tooLarge(plain.length, this.#maxBytes);
    return plain;
  }
}

const timeoutUnitMs: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * grpc-timeout is at most 8 digits and a unit. Returns milliseconds (rounded up so a tiny deadline still
 * expires), Infinity when no timer could hold it, or throws for a malformed value as Go does.
 */
export function parseGrpcTimeout(value: string): number {
  const unit = value.length >= 2 && value.length <= 9 ? timeoutUnitMs[value[value.length - 1] ?? ''] : undefined;
  const digits = value.slice(0, -1);
  if (unit === undefined || !/^\d+$/.test(digits)) {
    throw new GrpcStatusError(GrpcCode.Internal, `transport: malformed grpc-timeout: ${JSON.stringify(value)}`);
  }
  const ms = Math.ceil(Number(digits) * unit);
  return ms > timerMsMax ? Infinity : ms;
}

const plainMessage = /^[\x20-\x24\x26-\x7e]*$/;

/** grpc-message is percent-encoded UTF-8: printable ASCII except '%' passes as is (Go's encodeGrpcMessage). */
export function encodeGrpcMessage(message: string): string {
  if (plainMessage.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The inverse of encodeGrpcMessage; a malformed escape is kept literally, as Go's decoder does. */
export function decodeGrpcMessage(encoded: string): string {
  if (!encoded.includes('%')) return encoded;
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; i++) {
    const hex = encoded.slice(i + 1, i + 3);
    if (encoded[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(encoded[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
