/**
 * Maintenance.Snapshot: the member's backend as a server stream, as etcd 3.4 sends it. Chunks of at most
 * 32 KiB, each with the bytes still to come, then one last message whose blob is the SHA-256 of everything
 * sent (remaining_bytes 0); `etcdctl snapshot save` appends it to the file and `snapshot restore` checks it.
 *
 * Back-pressure: a chunk is read from the file only when the call accepts another write (write() returned
 * true, or 'drain' came), so a slow client holds at most the call's small write buffer plus HTTP/2's flow
 * control window in memory, never the whole database.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import type { SnapshotRequest, SnapshotResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { requestContext } from '../../base/request-context.js';
import { callContext, toServiceError } from './unary.js';

/** etcd's snapshotSendBufferSize: more than one OS page per message. */
export const snapshotChunkBytes = 32 * 1024;

/** What the stream reads: a consistent copy, consumed once and then closed. */
export interface SnapshotSource {
  readonly sizeBytes: number;
  read(buf: Buffer): Promise<number>;
  close(): Promise<void>;
}

export interface SnapshotApi {
  /** A point-in-time copy of the backend (refused on a learner, as etcd refuses its streams). */
  snapshot(): Promise<SnapshotSource>;
}

type SnapshotCall = ServerWritableStream<SnapshotRequest, SnapshotResponse>;

export function snapshotHandler(api: SnapshotApi, log: Logger): (call: SnapshotCall) => void {
  return (call) => {
    void serveSnapshot(call, api, log);
  };
}

async function serveSnapshot(call: SnapshotCall, api: SnapshotApi, log: Logger): Promise<void> {
  let gone = call.cancelled;
  const onGone = (): void => {
    gone = true;
  };
  call.on('cancelled', onGone);
  call.on('close', onGone);
  let source: SnapshotSource | undefined;
  try {
    // Admin only when auth is on: the caller's credentials decide.
    source = await requestContext.run(callContext(call), () => api.snapshot());
    if (gone) return;
    await sendAll(call, source, { log, gone: () => gone });
    if (!gone) call.end();
  } catch (err) {
    if (!gone) call.emit('error', toServiceError(err, log, 'Snapshot'));
  } finally {
    call.off('cancelled', onGone);
    call.off('close', onGone);
    await source?.close().catch(() => {});
  }
}

async function sendAll(call: SnapshotCall, source: SnapshotSource, o: { log: Logger; gone: () => boolean }): Promise<void> {
  const total = source.sizeBytes;
  const startedMs = performance.now();
  o.log.info('sending database snapshot to client', { 'total-bytes': total, size: humanBytes(total) });
  const sha = createHash('sha256');
  let sent = 0;
  while (sent < total) {
    // A fresh buffer each time: the call may still hold the previous one, unserialized, in its queue.
    const buf = Buffer.allocUnsafe(Math.min(snapshotChunkBytes, total - sent));
    const n = await source.read(buf);
    if (n === 0) throw new Error(`snapshot ended after ${sent} of ${total} bytes`);
    sent += n;
    const blob = buf.subarray(0, n);
    sha.update(blob);
    if (!(await write(call, { header: undefined, remainingBytes: BigInt(total - sent), blob }, o.gone))) return;
  }
  const digest = sha.digest();
  o.log.info('sending database sha256 checksum to client', { 'total-bytes': total, 'checksum-size': digest.length });
  if (!(await write(call, { header: undefined, remainingBytes: 0n, blob: digest }, o.gone))) return;
  o.log.info('successfully sent database snapshot to client', {
    'total-bytes': total, size: humanBytes(total), took: `${Math.round(performance.now() - startedMs)}ms`,
  });
}

/** Writes one message, waiting for room first; false once the client has gone. */
async function write(call: SnapshotCall, message: SnapshotResponse, gone: () => boolean): Promise<boolean> {
  if (gone()) return false;
  if (call.write(message)) return true;
  const ac = new AbortController();
  const onGone = (): void => ac.abort();
  call.once('cancelled', onGone);
  call.once('close', onGone);
  try {
    await once(call, 'drain', { signal: ac.signal });
  } catch {
    return false;
  } finally {
    call.off('cancelled', onGone);
    call.off('close', onGone);
  }
  return !gone();
}

/** go-humanize's Bytes (SI units, one decimal below 10), as etcd logs sizes. */
export function humanBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(Math.floor(Math.log(n) / Math.log(1000)), units.length - 1);
  const v = n / 1000 ** e;
  const rounded = Math.floor(v * 10 + 0.5) / 10;
  const text = rounded < 10 ? rounded.toFixed(1) : Math.floor(v + 0.5).toFixed(0);
  return `${text} ${units[e]}`;
}
