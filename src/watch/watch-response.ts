/**
 * WatchResponse bytes assembled from parts: the head (header, watch id, flags) encoded per response and
 * the events' pre-encoded field bytes (shared-event.ts). Fields come in field-number order with zero values
 * omitted, as etcd's encoder writes them, so the bytes equal the generated codec's.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';

export interface ResponseHead {
  /** An encoded etcdserverpb.ResponseHeader (the message, without its field tag). */
  readonly header: Uint8Array;
  readonly watchId: bigint;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compactRevision?: bigint;
  readonly cancelReason?: string;
  readonly fragment?: boolean;
}

export function encodeHead(h: ResponseHead): Buffer {
  const w = new BinaryWriter();
  w.uint32(10).bytes(h.header);
  if (h.watchId !== 0n) w.uint32(16).int64(h.watchId);
  if (h.created === true) w.uint32(24).bool(true);
  if (h.canceled === true) w.uint32(32).bool(true);
  if (h.compactRevision !== undefined && h.compactRevision !== 0n) w.uint32(40).int64(h.compactRevision);
  if (h.cancelReason !== undefined && h.cancelReason !== '') w.uint32(50).string(h.cancelReason);
  if (h.fragment === true) w.uint32(56).bool(true);
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function encodeResponse(head: ResponseHead, events: readonly Buffer[] = []): Buffer {
  const first = encodeHead(head);
  return events.length === 0 ? first : Buffer.concat([first, ...events]);
}

function sizeOf(events: readonly Buffer[], from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += events[i]!.length;
  return n;
}

/**
 * etcd's sendFragments: a response of at least maxBytes with two or more events is cut into responses
 * marked fragment (all but the last), each filled greedily while under maxBytes, each with at least one
 * event. The client joins them back into one; the events of a revision stay one logical response.
 */
export function fragmentResponse(head: ResponseHead, events: readonly Buffer[], maxBytes: number): Buffer[] {
  const whole = encodeHead(head);
  if (whole.length + sizeOf(events, 0, events.length) < maxBytes || events.length < 2) {
    return [events.length === 0 ? whole : Buffer.concat([whole, ...events])];
  }
  const fragHead = encodeHead({ ...head, fragment: true });
  const lastHead = encodeHead({ ...head, fragment: false });
  const out: Buffer[] = [];
  let idx = 0;
  while (idx < events.length) {
    const start = idx;
    let size = fragHead.length;
    for (; idx < events.length; idx++) {
      const next = size + events[idx]!.length;
      if (idx > start && next >= maxBytes) break;
      size = next;
    }
    out.push(Buffer.concat([idx === events.length ? lastHead : fragHead, ...events.slice(start, idx)]));
  }
  return out;
}
