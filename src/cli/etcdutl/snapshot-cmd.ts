/**
 * `etcdutl-ts snapshot status|restore`: etcdctl 3.4's offline snapshot commands (etcdutl's in 3.5),
 * with the same flags, outputs, messages and exit codes. Progress bars go to a terminal only, for files
 * large enough to take a while; logs are JSON lines on stderr as etcdctl's zap logger writes them.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import cliProgress from 'cli-progress';
import { humanizeBytes } from '../etcdctl/go-format.js';
import { renderTable } from '../etcdctl/table.js';
import { restoreSnapshot, RestoreError } from '../../server/snapshot-restore.js';
import { snapshotStatus, type SnapshotStatus } from '../../server/snapshot-file.js';

/** etcdctl's exit codes. */
const exitError = 1;
const exitBadArgs = 128;
/** Below this a progress bar would only flicker. */
export const progressBarMinBytes = 16 * 1024 * 1024;

/** Where progress bars are drawn: only on a terminal (isTTY), never into a pipe or a file. */
export type ProgressStream = NodeJS.WritableStream & { readonly isTTY?: boolean };

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly progress: ProgressStream;
}

export const processIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  progress: process.stderr,
};

export async function snapshotCommand(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const [sub, ...rest] = args;
  try {
    switch (sub) {
      case 'status':
        return await statusCommand(rest, io);
      case 'restore':
        return await restoreCommand(rest, io);
      default:
        io.err(`Error: unknown command ${JSON.stringify(sub ?? '')} for "etcdutl-ts snapshot" (status, restore)\n`);
        return exitBadArgs;
    }
  } catch (err) {
    io.err(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitError;
  }
}

function parse(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>): ReturnType<typeof parseArgs> {
  return parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
}

async function statusCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, { 'write-out': { type: 'string', short: 'w', default: 'simple' } });
  if (positionals.length !== 1) {
    io.err('Error: snapshot status requires exactly one argument\n');
    return exitBadArgs;
  }
  const format = String(values['write-out']);
  if (!['simple', 'table', 'json', 'fields'].includes(format)) {
    io.err(`Error: unsupported output format ${JSON.stringify(format)}\n`);
    return exitBadArgs;
  }
  io.out(formatStatus(await snapshotStatus(positionals[0]!), format));
  return 0;
}

/** etcdctl's DBStatus printers. */
export function formatStatus(s: SnapshotStatus, format: string): string {
  const row = [s.hash.toString(16), String(s.revision), String(s.totalKey), humanizeBytes(BigInt(s.totalSize))];
  switch (format) {
    case 'json':
      return `${JSON.stringify({ hash: s.hash, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize })}\n`;
    case 'table':
      return renderTable(['hash', 'revision', 'total keys', 'total size'], [row]);
    case 'fields':
      return `"Hash" : ${s.hash}\n"Revision" : ${s.revision}\n"Keys" : ${s.totalKey}\n"Size" : ${s.totalSize}\n`;
    default:
      return `${row.join(', ')}\n`;
  }
}

async function restoreCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    'data-dir': { type: 'string', default: '' },
    'initial-cluster': { type: 'string' },
    'initial-cluster-token': { type: 'string', default: 'etcd-cluster' },
    'initial-advertise-peer-urls': { type: 'string', default: 'http://localhost:2380' },
    name: { type: 'string', default: 'default' },
    'skip-hash-check': { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) {
    io.err('Error: snapshot restore requires exactly one argument\n');
    return exitBadArgs;
  }
  const name = String(values['name']);
  const bar = new ProgressReporter(io.progress, { label: 'restoring' });
  try {
    await restoreSnapshot({
      snapshotPath: positionals[0]!,
      name,
      dataDir: String(values['data-dir']),
      initialCluster: typeof values['initial-cluster'] === 'string' ? values['initial-cluster'] : `${name || 'default'}=http://localhost:2380`,
      initialClusterToken: String(values['initial-cluster-token']),
      initialAdvertisePeerUrls: String(values['initial-advertise-peer-urls']).split(','),
      skipHashCheck: values['skip-hash-check'] === true,
      onProgress: (done, total) => bar.update(done, total),
      log: (msg, fields) => io.err(zapLine(msg, fields)),
    });
  } catch (err) {
    if (err instanceof RestoreError) {
      bar.stop();
      io.err(`Error: ${err.message}\n`);
      return exitError;
    }
    throw err;
  } finally {
    bar.stop();
  }
  return 0;
}

/** A zap production JSON line (etcdctl logs restore steps so). */
export function zapLine(msg: string, fields: Record<string, unknown>): string {
  return `${JSON.stringify({ level: 'info', ts: Date.now() / 1000, caller: 'snapshot', msg, ...fields })}\n`;
}

/** A byte-count progress bar on a terminal, for large files only; silent otherwise. */
export class ProgressReporter {
  readonly #stream: ProgressStream;
  readonly #label: string;
  readonly #minBytes: number;
  #bar: cliProgress.SingleBar | null = null;
  #stopped = false;

  constructor(stream: ProgressStream, options: { label: string; minBytes?: number }) {
    this.#stream = stream;
    this.#label = options.label;
    this.#minBytes = options.minBytes ?? progressBarMinBytes;
  }

  update(doneBytes: number, totalBytes: number): void {
    if (this.#stopped || this.#stream.isTTY !== true || totalBytes < this.#minBytes) return;
    if (this.#bar === null) {
      this.#bar = new cliProgress.SingleBar({
        format: `${this.#label} [{bar}] {percentage}% | {doneHuman} / {totalHuman}`,
        stream: this.#stream,
        hideCursor: true,
      }, cliProgress.Presets.shades_classic);
      this.#bar.start(totalBytes, 0, { doneHuman: humanizeBytes(0n), totalHuman: humanizeBytes(BigInt(totalBytes)) });
    }
    this.#bar.update(doneBytes, { doneHuman: humanizeBytes(BigInt(doneBytes)) });
    if (doneBytes >= totalBytes) this.stop();
  }

  /** Ends the bar (at 100% or wherever it stopped) on its own line, so log lines that follow start clean. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#bar === null) return;
    this.#bar.stop();
    this.#stream.write('\n');
  }
}
