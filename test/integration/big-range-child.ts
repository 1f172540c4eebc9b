// Child process of big-range.test.ts: reads one large Range from the server under test, checking every
// KeyValue as it arrives and keeping none, then prints the result as one JSON line. A separate process, so
// the memory the test measures is the server's alone.

import { pathToFileURL } from 'node:url';
import { RangeRequest } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { bigRange } from '../../bench/big-range-client.js';

export const keyPrefix = 'big/';

export function keyFor(i: number): Buffer {
  return Buffer.from(`${keyPrefix}${String(i).padStart(8, '0')}`);
}

/** A value that differs per key and per byte, so a misplaced or reused chunk cannot go unnoticed. */
export function valueFor(i: number, bytes: number): Buffer {
  const v = Buffer.alloc(bytes);
  for (let j = 0; j < bytes; j++) v[j] = (i * 31 + j * 7) & 0xff;
  v.writeUInt32BE(i, 0);
  return v;
}

async function main(): Promise<void> {
  const [endpoint, keysText, bytesText] = process.argv.slice(2);
  const keys = Number(keysText);
  const bytes = Number(bytesText);
  const req = RangeRequest.fromPartial({ key: Buffer.from(keyPrefix), rangeEnd: Buffer.from('big0') });
  const res = await bigRange(endpoint!, req, {
    pauseEveryBytes: 256 * 1024,
    onKv: (kv, i) => {
      if (!kv.key.equals(keyFor(i))) throw new Error(`kv ${i}: key ${kv.key.toString()}`);
      if (!kv.value.equals(valueFor(i, bytes))) throw new Error(`kv ${i}: wrong value`);
    },
  });
  process.stdout.write(`${JSON.stringify({ ...res, count: Number(res.count), header: undefined, expectedKeys: keys })}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: String((err as Error)?.stack ?? err) })}\n`);
    process.exitCode = 1;
  });
}
