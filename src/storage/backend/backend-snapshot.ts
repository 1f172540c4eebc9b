/**
 * A point-in-time copy of the backend, read in chunks (the Maintenance.Snapshot stream's source).
 *
 * The copy is made by Backend.snapshotTo into a staging file: LMDB copies the committed state from a read
 * transaction on its own thread, so the member keeps reading and writing meanwhile (writes stay in the
 * batch until the copy is done). The staging file is unlinked as soon as it is open, so whatever happens to
 * the reader (a client that goes away, a crash) the disk space returns when the descriptor closes; a crash
 * between the copy and the unlink leaves a file that removeStaleSnapshots() deletes at the next start.
 * Memory stays bounded: the reader pulls one chunk at a time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { assert } from '../../base/assert.js';
import type { Backend } from './backend.js';

export interface BackendSnapshot {
  /** Bytes of the copy (what the client receives before the checksum). */
  readonly sizeBytes: number;
  /** The raft index whose effects the copy holds. */
  readonly consistentIndex: number;
  /** Fills buf from the current position; returns the bytes read (0 at the end). */
  read(buf: Buffer): Promise<number>;
  /** Releases the copy; safe to call more than once. */
  close(): Promise<void>;
}

const stagingPrefix = 'client-snapshot-';
let stagingCounter = 0;

/** Copies the backend's committed state and opens the copy for reading. */
export async function openBackendSnapshot(backend: Backend, options: { stagingDir: string }): Promise<BackendSnapshot> {
  fs.mkdirSync(options.stagingDir, { recursive: true });
  const file = path.join(options.stagingDir, `${stagingPrefix}${process.pid}-${++stagingCounter}.db`);
  let handle: fs.promises.FileHandle | undefined;
  try {
    const copied = await backend.snapshotTo(file);
    handle = await fs.promises.open(file, 'r');
    const size = (await handle.stat()).size;
    assert(size === copied.sizeBytes, () => `snapshot copy changed size: ${copied.sizeBytes} -> ${size}`);
    return new FileSnapshot(handle, { sizeBytes: size, consistentIndex: copied.index });
  } catch (err) {
    await handle?.close();
    throw err;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Deletes staging files a crash left behind (none of them can have a reader after a restart). */
export function removeStaleSnapshots(stagingDir: string): void {
  if (!fs.existsSync(stagingDir)) return;
  for (const name of fs.readdirSync(stagingDir)) {
    if (name.startsWith(stagingPrefix)) fs.rmSync(path.join(stagingDir, name), { recursive: true, force: true });
  }
}

class FileSnapshot implements BackendSnapshot {
  readonly sizeBytes: number;
  readonly consistentIndex: number;
  readonly #handle: fs.promises.FileHandle;
  #position = 0;
  #closed = false;

  constructor(handle: fs.promises.FileHandle, o: { sizeBytes: number; consistentIndex: number }) {
    this.#handle = handle;
    this.sizeBytes = o.sizeBytes;
    this.consistentIndex = o.consistentIndex;
  }

  async read(buf: Buffer): Promise<number> {
    assert(!this.#closed, 'snapshot is closed');
    const want = Math.min(buf.length, this.sizeBytes - this.#position);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await this.#handle.read(buf, got, want - got, this.#position + got);
      // The file is unlinked and private to us: a short file means the copy is not what was measured.
      assert(bytesRead > 0, () => `snapshot copy ended at ${this.#position + got} of ${this.sizeBytes} bytes`);
      got += bytesRead;
    }
    this.#position += got;
    return got;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}
