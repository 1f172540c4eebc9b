// A Range client that reads the response as it arrives and keeps none of it: a raw HTTP/2 gRPC call whose
// RangeResponse is parsed field by field (each KeyValue decoded on its own and handed to onKv), so a
// 1 GiB response costs the client a few KiB. Used by the big-range benchmark and its integration test;
// works against real etcd and ours alike.

import http2 from 'node:http2';
import { KeyValue } from '../src/gen/etcd/mvcc/mvccpb/kv.js';
import { RangeRequest, ResponseHeader } from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

export interface BigRangeResult {
  /** grpc-status (from trailers, or a trailers-only answer); -1 when the stream broke first. */
  status: number;
  message: string;
  /** Length of the gRPC message as its prefix announced it. */
  messageBytes: number;
  kvs: number;
  count: bigint;
  more: boolean;
  header: ResponseHeader | undefined;
  elapsedMs: number;
}

export interface BigRangeOptions {
  /** Called with every KeyValue as soon as it is complete (throwing fails the call). */
  onKv?: (kv: KeyValue, index: number) => void;
  /** Stop reading for one event-loop turn after every this many bytes: a slower client, more back-pressure. */
  pauseEveryBytes?: number;
}

/** The protobuf fields of one RangeResponse, read incrementally; only one field is ever buffered. */
class RangeResponseParser {
  #pending: Buffer = Buffer.alloc(0);
  /** Bytes of the message body still to come; -1 until the gRPC prefix was read. */
  #bodyLeft = -1;
  messageBytes = -1;
  kvs = 0;
  count = 0n;
  more = false;
  header: ResponseHeader | undefined;

  readonly #onKv: ((kv: KeyValue, index: number) => void) | undefined;

  constructor(onKv: ((kv: KeyValue, index: number) => void) | undefined) {
    this.#onKv = onKv;
  }

  push(chunk: Buffer): void {
    let buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    if (this.#bodyLeft < 0) {
      if (buf.length < 5) {
        this.#pending = Buffer.from(buf);
        return;
      }
      this.messageBytes = buf.readUInt32BE(1);
      this.#bodyLeft = this.messageBytes;
      buf = buf.subarray(5);
    }
    let pos = 0;
    while (pos < buf.length) {
      const field = readField(buf, pos);
      if (field === undefined) break;
      this.#onField(buf, field);
      this.#bodyLeft -= field.end - pos;
      pos = field.end;
    }
    // Keep only the incomplete field, copied so the chunk it came in can go.
    this.#pending = pos === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
  }

  #onField(buf: Buffer, f: Field): void {
    if (f.tag === 1) {
      this.header = ResponseHeader.decode(buf.subarray(f.start, f.end));
    } else if (f.tag === 2) {
      const index = this.kvs++;
      this.#onKv?.(KeyValue.decode(buf.subarray(f.start, f.end)), index);
    } else if (f.tag === 3) {
      this.more = f.varint !== 0n;
    } else if (f.tag === 4) {
      this.count = BigInt.asIntN(64, f.varint);
    }
  }

  get complete(): boolean {
    return this.#bodyLeft === 0 && this.#pending.length === 0;
  }
}

interface Field {
  tag: number;
  /** Payload of a length-delimited field, [start, end); for a varint field start === end. */
  start: number;
  end: number;
  varint: bigint;
}

function readVarint(buf: Buffer, pos: number): { value: bigint; next: number } | undefined {
  let value = 0n;
  let shift = 0n;
  for (let i = pos; i < buf.length && i < pos + 10; i++) {
    const b = buf[i]!;
    value |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return { value, next: i + 1 };
    shift += 7n;
  }
  if (buf.length - pos >= 10) throw new Error('varint longer than 10 bytes');
  return undefined;
}

/** The field at pos, or undefined when buf ends inside it. */
function readField(buf: Buffer, pos: number): Field | undefined {
  const key = readVarint(buf, pos);
  if (key === undefined) return undefined;
  const tag = Number(key.value >> 3n);
  const wire = Number(key.value & 7n);
  const v = readVarint(buf, key.next);
  if (v === undefined) return undefined;
  if (wire === 0) return { tag, start: v.next, end: v.next, varint: v.value };
  if (wire !== 2) throw new Error(`unexpected wire type ${wire} in RangeResponse`);
  const end = v.next + Number(v.value);
  return end > buf.length ? undefined : { tag, start: v.next, end, varint: 0n };
}

function frame(req: RangeRequest): Buffer {
  const body = RangeRequest.encode(req).finish();
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  out.set(body, 5);
  return out;
}

/** One KV.Range call on its own connection to host:port, the response read and dropped as it arrives. */
export function bigRange(endpoint: string, req: RangeRequest, opts: BigRangeOptions = {}): Promise<BigRangeResult> {
  const started = performance.now();
  const parser = new RangeResponseParser(opts.onKv);
  const session = http2.connect(`http://${endpoint}`, { settings: { initialWindowSize: 1 << 20 } });
  return new Promise<BigRangeResult>((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let sincePause = 0;
    session.on('error', reject);
    const call = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' });
    call.on('response', (h) => void (headers = h));
    call.on('trailers', (t) => void (trailers = t));
    call.on('error', reject);
    call.on('data', (chunk: Buffer) => {
      try {
        parser.push(chunk);
      } catch (err) {
        call.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
        return;
      }
      sincePause += chunk.length;
      if (opts.pauseEveryBytes !== undefined && sincePause >= opts.pauseEveryBytes) {
        sincePause = 0;
        call.pause();
        setImmediate(() => call.resume());
      }
    });
    call.on('close', () => {
      const source = trailers['grpc-status'] !== undefined ? trailers : headers;
      const status = Number(source['grpc-status'] ?? -1);
      const complete = parser.complete || (parser.messageBytes < 0 && status !== 0);
      resolve({
        status: complete ? status : -1,
        message: String(source['grpc-message'] ?? (complete ? '' : 'response ended inside the message')),
        messageBytes: parser.messageBytes,
        kvs: parser.kvs,
        count: parser.count,
        more: parser.more,
        header: parser.header,
        elapsedMs: performance.now() - started,
      });
    });
    call.end(frame(req));
  }).finally(() => session.close());
}
