/** Where etcdctl-ts writes and reads, and how a command stops with one of etcdctl's exit codes. */
import { readSync } from 'node:fs';

/** etcdctl's exit codes. */
export const Exit = {
  Success: 0,
  Error: 1,
  BadConnection: 2,
  InvalidInput: 3,
  BadFeature: 4,
  Interrupted: 5,
  IO: 6,
  BadArgs: 128,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** The exit code of a Go program that panics. */
export const goPanicExitCode = 2;

/**
 * Stops the command. With a message, "Error: <message>" goes to stderr first, as etcdctl's ExitWithError;
 * `stderrText`, when given, is written instead (a Go panic's first line).
 */
export class ExitError extends Error {
  readonly code: number;
  readonly stderrText: string;

  constructor(code: number, message?: string, stderrText?: string) {
    super(message ?? '');
    this.name = 'ExitError';
    this.code = code;
    this.stderrText = stderrText ?? (message !== undefined ? `Error: ${message}\n` : '');
  }
}

export interface Io {
  stdout(data: string | Uint8Array): void;
  stderr(data: string | Uint8Array): void;
  /** Reads stdin to its end. */
  readAll(): Buffer;
  /** Reads one line including its '\n'; at end of input, what is left (maybe empty) and eof=true. */
  readLine(): { line: Buffer; eof: boolean };
}

/** Bounds reading stdin: a value or a txn larger than this is refused rather than buffered without end. */
export const stdinBytesMax = 64 * 1024 * 1024;
const readChunkBytes = 64 * 1024;

/** Reads fd 0 synchronously, so prompts and reads interleave as in etcdctl's interactive txn. */
export class ProcessIo implements Io {
  #pending = Buffer.alloc(0);
  #eof = false;
  #total = 0;

  stdout(data: string | Uint8Array): void {
    process.stdout.write(data);
  }

  stderr(data: string | Uint8Array): void {
    process.stderr.write(data);
  }

  readAll(): Buffer {
    while (!this.#eof) this.#fill();
    const all = this.#pending;
    this.#pending = Buffer.alloc(0);
    return all;
  }

  readLine(): { line: Buffer; eof: boolean } {
    for (;;) {
      const nl = this.#pending.indexOf(0x0a);
      if (nl >= 0) {
        const line = this.#pending.subarray(0, nl + 1);
        this.#pending = this.#pending.subarray(nl + 1);
        return { line, eof: false };
      }
      if (this.#eof) {
        const line = this.#pending;
        this.#pending = Buffer.alloc(0);
        return { line, eof: true };
      }
      this.#fill();
    }
  }

  #fill(): void {
    const chunk = Buffer.alloc(readChunkBytes);
    let n: number;
    try {
      n = readSync(0, chunk, 0, chunk.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        // stdin is a non-blocking pipe with nothing yet: wait briefly instead of spinning.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        return;
      }
      if (code === 'EOF') n = 0;
      else throw err;
    }
    if (n === 0) {
      this.#eof = true;
      return;
    }
    this.#total += n;
    if (this.#total > stdinBytesMax) throw new ExitError(Exit.IO, `standard input is larger than ${stdinBytesMax} bytes`);
    this.#pending = Buffer.concat([this.#pending, chunk.subarray(0, n)]);
  }
}

/** An Io over memory: stdin from a buffer, stdout and stderr collected. For running etcdctl-ts in-process. */
export class BufferIo implements Io {
  #stdin: Buffer;
  #out: Buffer[] = [];
  #err: Buffer[] = [];

  constructor(stdin: string | Buffer = '') {
    this.#stdin = typeof stdin === 'string' ? Buffer.from(stdin, 'utf8') : stdin;
  }

  get out(): Buffer {
    return Buffer.concat(this.#out);
  }

  get err(): Buffer {
    return Buffer.concat(this.#err);
  }

  stdout(data: string | Uint8Array): void {
    this.#out.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
  }

  stderr(data: string | Uint8Array): void {
    this.#err.push(typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data));
  }

  readAll(): Buffer {
    const all = this.#stdin;
    this.#stdin = Buffer.alloc(0);
    return all;
  }

  readLine(): { line: Buffer; eof: boolean } {
    const nl = this.#stdin.indexOf(0x0a);
    if (nl < 0) return { line: this.readAll(), eof: true };
    const line = this.#stdin.subarray(0, nl + 1);
    this.#stdin = this.#stdin.subarray(nl + 1);
    return { line, eof: false };
  }
}
