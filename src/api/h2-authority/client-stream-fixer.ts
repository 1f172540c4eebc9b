/**
 * The client-to-server half of an HTTP/2 connection as a pure transformation: bytes in, bytes out.
 *
 * Every frame passes through untouched (non-header frames are streamed, never buffered whole) except:
 * - header blocks (HEADERS + CONTINUATION) are collected and decoded, so our HPACK decoder mirrors the
 *   client's encoder all along. A block whose `:authority` nghttp2 would refuse is re-encoded with the
 *   authority repaired, and from then on every block is re-encoded: the client's blocks may refer to
 *   dynamic table entries the server never saw. Re-encoded blocks are literals that leave the server's
 *   table untouched, so its (now frozen) contents never matter.
 * - when the front announced its own SETTINGS ahead of the server, the client's first SETTINGS ACK
 *   answers ours and is dropped: the server never sent it and would call an unexpected ACK an error.
 */
import { isValidAuthority, repairAuthority } from './authority.js';
import {
  FrameFlag, FrameType, H2ConnectionError, H2ErrorCode, frameHeaderBytes, headerBlockFrames,
} from './h2-frames.js';
import { encodeLiteralBlock, HpackDecoder, HpackError, type DecodedBlock, type HeaderField } from './hpack.js';

export interface FixerLimits {
  /** Compressed size of one header block, all its frames' payloads together. */
  readonly headerBlockBytesMax: number;
  /** Decoded size of one header list (name + value + 32 per field). */
  readonly headerListBytesMax: number;
  /** Largest HPACK dynamic table the client may ask for. */
  readonly tableBytesMax: number;
}

export interface FixerOptions {
  readonly limits: FixerLimits;
  /** Used when a bad authority names no usable host: the address the client connected to. */
  readonly fallbackAuthority: string;
  readonly dropFirstSettingsAck: boolean;
}

/** Frames a client may send before its first request without telling us anything about it. */
const quietTypes: ReadonlySet<number> = new Set([FrameType.Settings, FrameType.WindowUpdate, FrameType.Priority]);

interface OpenBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly priority: Buffer | undefined;
  readonly rawFrames: Buffer[];
  readonly fragments: Buffer[];
  bytes: number;
}

export class ClientStreamFixer {
  readonly #options: FixerOptions;
  readonly #decoder: HpackDecoder;
  readonly #head = Buffer.alloc(frameHeaderBytes);
  #headBytes = 0;
  /** Payload octets of a pass-through frame still to forward. */
  #passRemaining = 0;
  /** A header-block frame being collected whole (header + payload). */
  #frame: Buffer | undefined;
  #frameFilled = 0;
  #block: OpenBlock | undefined;
  #settingsAckPending: boolean;
  #rewriting = false;
  #blocksDone = 0;
  #sawOtherFrameFirst = false;
  #highestStreamId = 0;
  #lastBadAuthority = '';
  #lastRepairedAuthority = '';
  // Output of the current push(): adjacent slices of the input chunk are merged into one run.
  #out: Buffer[] = [];
  #runChunk: Buffer | undefined;
  #runStart = 0;
  #runEnd = 0;

  constructor(options: FixerOptions) {
    this.#options = options;
    this.#decoder = new HpackDecoder({
      tableBytesMax: options.limits.tableBytesMax,
      headerListBytesMax: options.limits.headerListBytesMax,
    });
    this.#settingsAckPending = options.dropFirstSettingsAck;
  }

  /** True once some block was re-encoded: the connection can no longer bypass the fixer. */
  get rewriting(): boolean {
    return this.#rewriting;
  }

  get headerBlocksDone(): number {
    return this.#blocksDone;
  }

  /** A frame other than SETTINGS, WINDOW_UPDATE or PRIORITY came before the first header block. */
  get sawOtherFrameFirst(): boolean {
    return this.#sawOtherFrameFirst;
  }

  get settingsAckPending(): boolean {
    return this.#settingsAckPending;
  }

  get highestStreamId(): number {
    return this.#highestStreamId;
  }

  /** Consumes `chunk` (the bytes after the client preface); returns what to send on to the server. */
  push(chunk: Buffer): Buffer[] {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#passRemaining > 0) {
        const n = Math.min(this.#passRemaining, chunk.length - pos);
        this.#emit(chunk, pos, pos + n);
        this.#passRemaining -= n;
        pos += n;
      } else if (this.#frame !== undefined) {
        const n = Math.min(this.#frame.length - this.#frameFilled, chunk.length - pos);
        chunk.copy(this.#frame, this.#frameFilled, pos, pos + n);
        this.#frameFilled += n;
        pos += n;
        if (this.#frameFilled === this.#frame.length) this.#headerFrameDone();
      } else {
        pos = this.#readFrameHeader(chunk, pos);
      }
    }
    this.#flushRun();
    const out = this.#out;
    this.#out = [];
    return out;
  }

  /**
   * The raw input bytes held inside the fixer (a partial frame header, an unfinished header block),
   * for handing the connection over without the fixer. Only valid while not rewriting.
   */
  heldBytes(): Buffer[] {
    const held: Buffer[] = [...(this.#block?.rawFrames ?? [])];
    if (this.#frame !== undefined) held.push(this.#frame.subarray(0, this.#frameFilled));
    if (this.#headBytes > 0) held.push(Buffer.from(this.#head.subarray(0, this.#headBytes)));
    return held;
  }

  #readFrameHeader(chunk: Buffer, pos: number): number {
    let header: Buffer;
    let start: number;
    let next: number;
    if (this.#headBytes === 0 && chunk.length - pos >= frameHeaderBytes) {
      [header, start, next] = [chunk, pos, pos + frameHeaderBytes];
    } else {
      const n = Math.min(frameHeaderBytes - this.#headBytes, chunk.length - pos);
      chunk.copy(this.#head, this.#headBytes, pos, pos + n);
      this.#headBytes += n;
      if (this.#headBytes < frameHeaderBytes) return pos + n;
      this.#headBytes = 0;
      [header, start, next] = [Buffer.from(this.#head), 0, pos + n];
    }
    this.#onFrameHeader(header, start, chunk === header);
    return next;
  }

  #onFrameHeader(header: Buffer, start: number, inChunk: boolean): void {
    const length = header.readUIntBE(start, 3);
    const type = header[start + 3]!;
    const flags = header[start + 4]!;
    const streamId = header.readUInt32BE(start + 5) & 0x7fffffff;
    const isBlockFrame = type === FrameType.Headers || type === FrameType.Continuation;
    if (this.#block !== undefined && !(type === FrameType.Continuation && streamId === this.#block.streamId)) {
      throw new H2ConnectionError(H2ErrorCode.ProtocolError, 'h2: header block interrupted by another frame');
    }
    if (isBlockFrame) {
      if (type === FrameType.Continuation && this.#block === undefined) {
        throw new H2ConnectionError(H2ErrorCode.ProtocolError, 'h2: CONTINUATION without HEADERS');
      }
      if ((this.#block?.bytes ?? 0) + length > this.#options.limits.headerBlockBytesMax) {
        throw new H2ConnectionError(H2ErrorCode.EnhanceYourCalm, 'h2: header block too large');
      }
      this.#frame = Buffer.allocUnsafe(frameHeaderBytes + length);
      header.copy(this.#frame, 0, start, start + frameHeaderBytes);
      this.#frameFilled = frameHeaderBytes;
      if (length === 0) this.#headerFrameDone();
      return;
    }
    if (this.#blocksDone === 0 && !quietTypes.has(type)) this.#sawOtherFrameFirst = true;
    const isAck = type === FrameType.Settings && (flags & FrameFlag.Ack) !== 0;
    if (isAck && length === 0 && this.#settingsAckPending) {
      this.#settingsAckPending = false;
      return;
    }
    if (inChunk) this.#emit(header, start, start + frameHeaderBytes);
    else this.#emitCopy(header);
    this.#passRemaining = length;
  }

  #headerFrameDone(): void {
    const frame = this.#frame!;
    this.#frame = undefined;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    let block = this.#block;
    let fragment = frame.subarray(frameHeaderBytes);
    if (block === undefined) {
      const { priority, body } = splitHeadersPayload(fragment, flags);
      fragment = body;
      block = { streamId, endStream: (flags & FrameFlag.EndStream) !== 0, priority, rawFrames: [], fragments: [], bytes: 0 };
      this.#block = block;
      if (streamId > this.#highestStreamId) this.#highestStreamId = streamId;
    }
    block.rawFrames.push(frame);
    block.fragments.push(fragment);
    block.bytes += frame.length - frameHeaderBytes;
    if ((flags & FrameFlag.EndHeaders) !== 0) {
      this.#block = undefined;
      this.#blockDone(block);
    }
  }

  #blockDone(block: OpenBlock): void {
    const bytes = block.fragments.length === 1 ? block.fragments[0]! : Buffer.concat(block.fragments);
    let decoded: DecodedBlock;
    try {
      decoded = this.#decoder.decode(bytes);
    } catch (err) {
      if (err instanceof HpackError) throw new H2ConnectionError(H2ErrorCode.CompressionError, err.message);
      throw err;
    }
    this.#blocksDone++;
    const fields = this.#repairFields(decoded.fields);
    if (!this.#rewriting && fields === decoded.fields) {
      for (const raw of block.rawFrames) this.#emitCopy(raw);
      return;
    }
    this.#rewriting = true;
    const encoded = encodeLiteralBlock(fields, decoded.tableSizeUpdates);
    this.#emitCopy(headerBlockFrames(encoded, block));
  }

  /** Returns `fields` itself when nothing needed repair. */
  #repairFields(fields: HeaderField[]): HeaderField[] {
    const i = fields.findIndex((f) => f.name === ':authority' && !isValidAuthority(f.value));
    if (i < 0) return fields;
    const bad = fields[i]!.value;
    if (bad !== this.#lastBadAuthority) {
      this.#lastBadAuthority = bad;
      this.#lastRepairedAuthority = repairAuthority(bad, this.#options.fallbackAuthority);
    }
    const repaired = fields.slice();
    repaired[i] = { name: ':authority', value: this.#lastRepairedAuthority, neverIndexed: fields[i]!.neverIndexed };
    return repaired;
  }

  #emit(chunk: Buffer, start: number, end: number): void {
    if (this.#runChunk === chunk && this.#runEnd === start) {
      this.#runEnd = end;
      return;
    }
    this.#flushRun();
    [this.#runChunk, this.#runStart, this.#runEnd] = [chunk, start, end];
  }

  #emitCopy(bytes: Buffer): void {
    this.#flushRun();
    this.#out.push(bytes);
  }

  #flushRun(): void {
    if (this.#runChunk === undefined) return;
    this.#out.push(this.#runChunk.subarray(this.#runStart, this.#runEnd));
    this.#runChunk = undefined;
  }
}

/** Strips padding and the priority fields from a HEADERS payload (RFC 9113 6.2). */
function splitHeadersPayload(payload: Buffer, flags: number): { priority: Buffer | undefined; body: Buffer } {
  let start = 0;
  let end = payload.length;
  if ((flags & FrameFlag.Padded) !== 0) {
    if (payload.length < 1) throw new H2ConnectionError(H2ErrorCode.FrameSizeError, 'h2: HEADERS too short for padding');
    end -= payload[0]!;
    start = 1;
  }
  let priority: Buffer | undefined;
  if ((flags & FrameFlag.Priority) !== 0) {
    priority = payload.subarray(start, start + 5);
    start += 5;
  }
  if (end < start) throw new H2ConnectionError(H2ErrorCode.ProtocolError, 'h2: HEADERS padding exceeds the payload');
  return { priority, body: payload.subarray(start, end) };
}
