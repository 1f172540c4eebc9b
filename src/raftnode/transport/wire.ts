/**
 * The peer protocol's wire facts: paths, headers, the frame format of the message stream, the snapshot
 * checksum. Both sides import them from here so they cannot drift apart.
 *
 * Message stream: POST STREAM_PATH, a request body that never ends while the link is up, made of frames
 *   [u32 little-endian length][encoded Message (src/raftnode/codec.ts)]
 * in the order send() saw them. The receiver answers 200 at once (or a refusal status) and keeps its
 * response open and empty; only the sender writes.
 *
 * Snapshot: POST SNAPSHOT_PATH, body = one encoded MsgSnap message (its snapshot data inside), written in
 * chunks; its length and SHA-256 travel in headers and are checked by the receiver before decoding. The
 * receiver answers 204 once the message has been handed to raft, or an error status.
 */
import { assert } from '../../base/assert.js';
import { ByteWriter, writeMessage } from '../codec.js';
import type { Message, NodeId } from '../../raft/types.js';

/** Bumped on any incompatible change of the paths, headers or framing. */
export const PROTOCOL_VERSION = '1';

export const STREAM_PATH = '/raft/ts/stream';
export const SNAPSHOT_PATH = '/raft/ts/snapshot';

export const Header = {
  /** etcd's header name: the cluster id in lowercase hex, on requests and responses. */
  clusterId: 'x-etcd-cluster-id',
  /** etcd's header name: the sending member's id in hex. */
  from: 'x-server-from',
  /** etcd's header name: the member the sender believes it is talking to. */
  to: 'x-raft-to',
  protocol: 'x-etcd-ts-protocol',
  snapshotBytes: 'x-snapshot-bytes',
  snapshotSha256: 'x-snapshot-sha256',
} as const;

/** Refusal statuses, as etcd's rafthttp uses them. */
export const Status = {
  ok: 200,
  noContent: 204,
  badRequest: 400,
  notFound: 404,
  methodNotAllowed: 405,
  /** Removed members are told so, distinctly, so they can stop. */
  gone: 410,
  /** Cluster id, protocol version or addressee mismatch. */
  preconditionFailed: 412,
  tooLarge: 413,
  busy: 503,
} as const;

const FRAME_HEADER_BYTES = 4;
const U64_HEX = /^[0-9a-fA-F]{1,16}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Member and cluster ids as etcd prints them: lowercase hex without leading zeros. */
export function idToHex(id: NodeId): string {
  return id.toString(16);
}

/** The inverse of idToHex; null for anything that is not a 64-bit hex number. */
export function parseHexId(text: string | undefined): NodeId | null {
  if (text === undefined || !U64_HEX.test(text)) return null;
  return BigInt(`0x${text}`);
}

export function isSha256Hex(text: string | undefined): text is string {
  return text !== undefined && SHA256_HEX.test(text);
}

/** Appends one stream frame holding `m` to `w`; returns the frame's length in bytes (header included). */
export function appendFrame(w: ByteWriter, m: Message): number {
  const start = w.length;
  w.u32(0);
  writeMessage(w, m);
  const bodyBytes = w.length - start - FRAME_HEADER_BYTES;
  w.patchU32(start, bodyBytes);
  return bodyBytes + FRAME_HEADER_BYTES;
}

/** A stream that breaks the framing rules; the receiver drops the stream. */
export class FrameError extends Error {
  constructor(message: string) {
    super(`peer stream: ${message}`);
    this.name = 'FrameError';
  }
}

/**
 * Splits a byte stream into frames, whatever the chunk boundaries. A frame wholly inside one chunk is
 * handed out as a view of that chunk (no copy); one split across chunks is gathered into a buffer of its
 * announced length, allocated once, so a large frame costs linear time.
 */
export class FrameReader {
  readonly #frameBytesMax: number;
  readonly #onFrame: (frame: Uint8Array) => void;
  readonly #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerFill = 0;
  #body: Uint8Array | null = null;
  #bodyFill = 0;

  constructor(options: { frameBytesMax: number; onFrame: (frame: Uint8Array) => void }) {
    this.#frameBytesMax = options.frameBytesMax;
    this.#onFrame = options.onFrame;
  }

  /** True when the bytes seen so far end inside a frame. */
  get midFrame(): boolean {
    return this.#headerFill > 0 || this.#body !== null;
  }

  /** Throws FrameError on an empty or oversized frame. */
  push(chunk: Uint8Array): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.#body !== null) {
        pos = this.#fillBody(chunk, pos);
      } else if (this.#headerFill === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
        const length = this.#checkLength(readU32(chunk, pos));
        pos += FRAME_HEADER_BYTES;
        if (chunk.length - pos >= length) {
          // A plain view: Buffer#subarray (chunks are Buffers) costs noticeably more per frame.
          this.#onFrame(new Uint8Array(chunk.buffer, chunk.byteOffset + pos, length));
          pos += length;
        } else {
          this.#startBody(length);
        }
      } else {
        const n = Math.min(FRAME_HEADER_BYTES - this.#headerFill, chunk.length - pos);
        this.#header.set(chunk.subarray(pos, pos + n), this.#headerFill);
        this.#headerFill += n;
        pos += n;
        if (this.#headerFill === FRAME_HEADER_BYTES) {
          this.#headerFill = 0;
          this.#startBody(this.#checkLength(readU32(this.#header, 0)));
        }
      }
    }
  }

  #checkLength(length: number): number {
    if (length === 0) throw new FrameError('empty frame');
    if (length > this.#frameBytesMax) {
      throw new FrameError(`frame of ${length} bytes exceeds the limit of ${this.#frameBytesMax}`);
    }
    return length;
  }

  #startBody(length: number): void {
    this.#body = new Uint8Array(length);
    this.#bodyFill = 0;
  }

  #fillBody(chunk: Uint8Array, pos: number): number {
    const body = this.#body;
    assert(body !== null, 'no frame body to fill');
    const n = Math.min(body.length - this.#bodyFill, chunk.length - pos);
    body.set(chunk.subarray(pos, pos + n), this.#bodyFill);
    this.#bodyFill += n;
    if (this.#bodyFill === body.length) {
      this.#body = null;
      this.#onFrame(body);
    }
    return pos + n;
  }
}

function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x1000000;
}
