/**
 * Member and cluster ids derived from the initial configuration, the way etcd derives them, so that
 * every member of a cluster computes the same ids without talking to the others.
 */
import { createHash } from 'node:crypto';

function firstUint64(data: Buffer): bigint {
  return createHash('sha1').update(data).digest().readBigUInt64BE(0);
}

/** Hash of the sorted peer URLs, the cluster token, and (for members added at run time) the time. */
export function memberId(peerUrls: readonly string[], options: { clusterToken: string; nowUnixSeconds?: number }): bigint {
  const parts = [...peerUrls].sort().join('') + options.clusterToken +
    (options.nowUnixSeconds === undefined ? '' : String(options.nowUnixSeconds));
  return firstUint64(Buffer.from(parts, 'utf8'));
}

/** Hash of the member ids in ascending order, each as 8 big-endian bytes. */
export function clusterId(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const buf = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, i) => buf.writeBigUInt64BE(id, 8 * i));
  return firstUint64(buf);
}

/** etcd prints ids as lower-case hex without padding. */
export function idToHex(id: bigint): string {
  return id.toString(16);
}
