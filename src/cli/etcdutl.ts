/**
 * `etcdutl-ts`: offline maintenance of a member's data dir and of saved snapshots, as etcdutl does it.
 * Commands we do not have (backup, migrate: v2 data) say so and exit non-zero.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { etcdApiVersion, etcdTsVersion } from '../base/version.js';
import { Backend } from '../storage/backend/backend.js';
import { snapshotCommand } from './etcdutl/snapshot-cmd.js';

const usage = `NAME:
	etcdutl-ts - offline maintenance of etcd-ts data directories

USAGE:
	etcdutl-ts <command> [flags]

COMMANDS:
	defrag --data-dir DIR	Defragments the backend of a stopped member
	snapshot status FILE	Prints a saved snapshot's hash, revision, total keys and size (-w simple|table|json|fields)
	snapshot restore FILE	Builds a new member's data dir from a saved snapshot (--name, --data-dir,
				--initial-cluster, --initial-cluster-token, --initial-advertise-peer-urls, --skip-hash-check)
	version			Prints the version of etcdutl-ts
`;

async function defrag(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'data-dir': { type: 'string' } }, strict: true });
  const dataDir = values['data-dir'];
  if (!dataDir) {
    process.stderr.write('Error: --data-dir is required\n');
    return 1;
  }
  const snapDir = join(dataDir, 'member', 'snap');
  if (!existsSync(join(snapDir, 'db'))) {
    process.stderr.write(`Error: no backend under ${snapDir}\n`);
    return 1;
  }
  const backend = Backend.open(snapDir);
  const before = backend.size();
  await backend.defragment();
  const after = backend.size();
  await backend.close();
  process.stdout.write(`Finished defragmenting etcd data[${dataDir}] (${before} -> ${after} bytes)\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'version':
      process.stdout.write(`etcdutl version: ${etcdApiVersion}\nAPI version: 3.4\netcd-ts: ${etcdTsVersion}\n`);
      return 0;
    case 'defrag':
      return defrag(rest);
    case 'snapshot':
      return snapshotCommand(rest);
    case 'backup':
    case 'migrate':
      process.stderr.write(`Error: "${command}" is not implemented in etcdutl-ts yet\n`);
      return 1;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return 0;
    default:
      process.stderr.write(`Error: unknown command "${command}" for "etcdutl-ts"\n`);
      return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
