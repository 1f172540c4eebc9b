/** etcdctl-ts: etcd's v3 command-line client (etcdctl 3.4 compatible). */
import { ProcessIo } from './etcdctl/io.js';
import { runEtcdctl } from './etcdctl/run.js';

async function main(): Promise<void> {
  const api = process.env['ETCDCTL_API'];
  if (api !== undefined && api !== '' && api !== '3') {
    process.stderr.write(`unsupported API version ${api}\n`);
    process.exit(1);
  }
  const code = await runEtcdctl(process.argv.slice(2), { io: new ProcessIo(), env: process.env });
  // Exit once stdout has drained, so piped output is never cut short.
  process.stdout.write('', () => process.exit(code));
}

main().catch((err: unknown) => {
  process.stderr.write(`etcdctl-ts: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
