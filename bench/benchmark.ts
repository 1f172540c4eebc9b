// Standalone load generator against any running server, in the shape of etcd's `benchmark` tool:
//   node dist/bench/benchmark.js put --endpoint 127.0.0.1:2379 --conns 10 --clients 100 --total 10000
//   node dist/bench/benchmark.js range --consistency s --key-space-size 1000 --clients 100
//   node dist/bench/benchmark.js txn-put --clients 100 --key-space-size 100000

import { LOAD_FLAGS, LOAD_OPS, loadConfigFromFlags, type LoadOp } from './load-config.js';
import { runLoad } from './load-generator.js';
import { parseFlags, usage, UsageError } from './options.js';
import { summarize } from './summary.js';

function isLoadOp(word: string | undefined): word is LoadOp {
  return LOAD_OPS.some((op) => op === word);
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseFlags(argv, LOAD_FLAGS);
  const op = parsed.positional[0];
  if (parsed.help || !isLoadOp(op) || parsed.positional.length !== 1) {
    process.stdout.write(`usage: benchmark <${LOAD_OPS.join('|')}> [flags]\n${usage(LOAD_FLAGS)}\n`);
    return parsed.help ? 0 : 2;
  }
  const result = await runLoad(loadConfigFromFlags(op, parsed.flags));
  process.stdout.write(`${summarize(result)}\n`);
  return result.errorCount > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`benchmark: ${err instanceof UsageError ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
