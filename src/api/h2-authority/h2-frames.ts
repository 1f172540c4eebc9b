/** HTTP/2 framing constants and the few frames the authority front writes itself (RFC 9113). */

export const clientPreface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const frameHeaderBytes = 9;
/** SETTINGS_MAX_FRAME_SIZE can only be raised from this, so frames this size fit every peer. */
export const defaultMaxFrameBytes = 16384;

export const FrameType = {
  Data: 0x0,
  Headers: 0x1,
  Priority: 0x2,
  RstStream: 0x3,
  Settings: 0x4,
  PushPromise: 0x5,
  Ping: 0x6,
  Goaway: 0x7,
  WindowUpdate: 0x8,
  Continuation: 0x9,
} as const;

export const FrameFlag = {
  EndStream: 0x1,
  Ack: 0x1,
  EndHeaders: 0x4,
  Padded: 0x8,
  Priority: 0x20,
} as const;

export const H2ErrorCode = {
  ProtocolError: 0x1,
  FrameSizeError: 0x6,
  CompressionError: 0x9,
  EnhanceYourCalm: 0xb,
} as const;
export type H2ErrorCode = (typeof H2ErrorCode)[keyof typeof H2ErrorCode];

/** Input that ends the connection: the code goes into our GOAWAY when we still own the socket. */
export class H2ConnectionError extends Error {
  readonly code: H2ErrorCode;

  constructor(code: H2ErrorCode, message: string) {
    super(message);
    this.name = 'H2ConnectionError';
    this.code = code;
  }
}

export function writeFrameHeader(
  out: Buffer,
  at: number,
  frame: { length: number; type: number; flags: number; streamId: number },
): void {
  out.writeUIntBE(frame.length, at, 3);
  out[at + 3] = frame.type;
  out[at + 4] = frame.flags;
  out.writeUInt32BE(frame.streamId & 0x7fffffff, at + 5);
}

export function settingsFrame(payload: Buffer): Buffer {
  const out = Buffer.alloc(frameHeaderBytes + payload.length);
  writeFrameHeader(out, 0, { length: payload.length, type: FrameType.Settings, flags: 0, streamId: 0 });
  payload.copy(out, frameHeaderBytes);
  return out;
}

export function goawayFrame(lastStreamId: number, code: H2ErrorCode): Buffer {
  const out = Buffer.alloc(frameHeaderBytes + 8);
  writeFrameHeader(out, 0, { length: 8, type: FrameType.Goaway, flags: 0, streamId: 0 });
  out.writeUInt32BE(lastStreamId & 0x7fffffff, frameHeaderBytes);
  out.writeUInt32BE(code, frameHeaderBytes + 4);
  return out;
}

/**
 * A header block as HEADERS + CONTINUATION frames of at most `defaultMaxFrameBytes` payload each.
 * `priority` (5 octets) rides in the HEADERS frame; padding is never added.
 */
export function headerBlockFrames(
  block: Buffer,
  head: { streamId: number; endStream: boolean; priority: Buffer | undefined },
): Buffer {
  const priorityBytes = head.priority?.length ?? 0;
  const firstBytes = Math.min(block.length, defaultMaxFrameBytes - priorityBytes);
  const continuations = Math.ceil((block.length - firstBytes) / defaultMaxFrameBytes);
  const out = Buffer.allocUnsafe(block.length + priorityBytes + frameHeaderBytes * (1 + continuations));
  let flags = (head.endStream ? FrameFlag.EndStream : 0) | (head.priority ? FrameFlag.Priority : 0);
  if (continuations === 0) flags |= FrameFlag.EndHeaders;
  writeFrameHeader(out, 0, { length: priorityBytes + firstBytes, type: FrameType.Headers, flags, streamId: head.streamId });
  let pos = frameHeaderBytes;
  if (head.priority) pos += head.priority.copy(out, pos);
  pos += block.copy(out, pos, 0, firstBytes);
  for (let from = firstBytes; from < block.length; from += defaultMaxFrameBytes) {
    const length = Math.min(defaultMaxFrameBytes, block.length - from);
    const last = from + length === block.length;
    writeFrameHeader(out, pos, {
      length, type: FrameType.Continuation, flags: last ? FrameFlag.EndHeaders : 0, streamId: head.streamId,
    });
    pos += frameHeaderBytes;
    pos += block.copy(out, pos, from, from + length);
  }
  return out;
}
