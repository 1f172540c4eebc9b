/**
 * A saved snapshot file, as `etcdctl snapshot save` writes it: the backend database (our LMDB file)
 * followed by the SHA-256 of the database, which the server sent as the stream's last message. A file
 * copied straight out of a data dir has no checksum; as in etcd, the two are told apart by size (a
 * database is a whole number of 512-byte sectors, so database + 32 bytes is not).
 *
 * Status, as etcd 3.4 defines it over bbolt, is computed here over LMDB: the hash is CRC-32C over every
 * bucket in name order (the name, then each key and value in key order: etcd's backend Hash with nothing
 * ignored), the revision is the main revision of the last key of the key bucket, total keys counts the
 * entries of all buckets (etcd counts them all, not only the key bucket), and total size is the database
 * size in pages.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from 'lmdb';
import { assert } from '../base/assert.js';
import { crc32c } from '../mvcc/crc32c.js';
import { mainOfKey } from '../mvcc/revision.js';
import { bucketNames } from '../storage/backend/backend.js';

export const sha256Bytes = 32;
/** Copy buffer: large enough for the disk, small enough to keep restore's memory flat. */
const copyChunkBytes = 1024 * 1024;

/** A snapshot file that cannot be read; the message is what Go's os package says (etcd prints it). */
export class SnapshotFileError extends Error {
  override readonly name = 'SnapshotFileError';
}

const goErrnoText: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
};

/** Go's *PathError text ("open x: no such file or directory") for a failed fs call. */
export function goPathError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.syscall === undefined || e.path === undefined) return e.message;
  return `${e.syscall} ${e.path}: ${goErrnoText[e.code ?? ''] ?? e.message}`;
}

/** Whether a file of this size ends with the checksum (etcd's hasChecksum). */
export function hasChecksum(sizeBytes: number): boolean {
  return sizeBytes % 512 === sha256Bytes;
}

export interface CopiedDb {
  readonly dbBytes: number;
  /** The checksum the file ends with, or null for a file without one. */
  readonly expectedSha: Buffer | null;
  /** SHA-256 of the database bytes copied. */
  readonly actualSha: Buffer;
}

/**
 * Copies the database part of a snapshot file to `dest` (fsynced), hashing it on the way. `onProgress`
 * hears the bytes copied so far.
 */
export async function copySnapshotDb(source: string, dest: string, options: { onProgress?: (doneBytes: number, totalBytes: number) => void } = {}): Promise<CopiedDb> {
  const input = await fs.promises.open(source, 'r').catch((err: unknown) => {
    throw new SnapshotFileError(goPathError(err));
  });
  try {
    const size = (await input.stat()).size;
    const withSha = hasChecksum(size);
    const dbBytes = withSha ? size - sha256Bytes : size;
    let expectedSha: Buffer | null = null;
    if (withSha) {
      expectedSha = Buffer.alloc(sha256Bytes);
      const { bytesRead } = await input.read(expectedSha, 0, sha256Bytes, dbBytes);
      assert(bytesRead === sha256Bytes, 'short read of the snapshot checksum');
    }
    const output = await fs.promises.open(dest, 'wx', 0o600);
    try {
      const sha = createHash('sha256');
      const buf = Buffer.allocUnsafe(copyChunkBytes);
      for (let done = 0; done < dbBytes;) {
        const { bytesRead } = await input.read(buf, 0, Math.min(buf.length, dbBytes - done), done);
        if (bytesRead === 0) throw new Error(`${source} shrank while being read (at ${done} of ${dbBytes} bytes)`);
        const chunk = buf.subarray(0, bytesRead);
        sha.update(chunk);
        await output.write(chunk, 0, bytesRead, done);
        done += bytesRead;
        options.onProgress?.(done, dbBytes);
      }
      await output.sync();
      return { dbBytes, expectedSha, actualSha: sha.digest() };
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

export interface SnapshotStatus {
  readonly hash: number;
  readonly revision: number;
  readonly totalKey: number;
  readonly totalSize: number;
}

/** Reads a snapshot file's status; the file itself is not touched (LMDB would put a lock file beside it). */
export async function snapshotStatus(file: string): Promise<SnapshotStatus> {
  try {
    fs.statSync(file);
  } catch (err) {
    throw new SnapshotFileError(goPathError(err));
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdts-snapshot-status-'));
  try {
    await copySnapshotDb(file, path.join(dir, 'data.mdb'));
    return await statusOfEnvDir(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Bucket names in byte order, the order bbolt keeps them and etcd hashes them. */
const bucketsInOrder = [...bucketNames].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

async function statusOfEnvDir(dir: string): Promise<SnapshotStatus> {
  const env = open({ path: dir, readOnly: true, maxDbs: bucketNames.length + 2 });
  try {
    let hash = 0;
    let revision = 0;
    let totalKey = 0;
    for (const name of bucketsInOrder) {
      const db = env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
      hash = crc32c(hash, Buffer.from(name));
      for (const { key, value } of db.getRange({})) {
        hash = crc32c(crc32c(hash, key), value);
        if (name === 'key') revision = mainOfKey(key);
        totalKey++;
      }
    }
    const stats = env.getStats() as { lastPageNumber: number; pageSize: number };
    return { hash, revision, totalKey, totalSize: (stats.lastPageNumber + 1) * stats.pageSize };
  } finally {
    await env.close();
  }
}
