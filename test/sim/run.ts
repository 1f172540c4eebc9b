/**
 * The simulator's command line.
 *   npm run sim -- --seed 42             replay one seed (add --verbose for the full trace)
 *   npm run sim -- --seeds 200 --base 1  run seeds 1..200
 *   --steps N                            rounds of phase one (faults); default DEFAULT_STEPS
 *   --messages                           with the trace, every message sent and received
 *   --lease-reads                        reads served by the leader's lease (CheckQuorum on, no pauses)
 * Every failure prints the seed and the exact command that replays it. Exit code 1 on any failure.
 */
import { loadCore } from './core.js';
import { DEFAULT_STEPS, formatFailure, replayCommand } from './report.js';
import { runSeed, type RunResult } from './scenario.js';

interface Args {
  seed: number | null;
  seeds: number;
  base: number;
  steps: number;
  verbose: boolean;
  messages: boolean;
  leaseReads: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { seed: null, seeds: 1, base: 1, steps: DEFAULT_STEPS, verbose: false, messages: false, leaseReads: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${a} needs a non-negative integer`);
      return v;
    };
    if (a === '--seed') args.seed = next();
    else if (a === '--seeds') args.seeds = next();
    else if (a === '--base') args.base = next();
    else if (a === '--steps') args.steps = next();
    else if (a === '--verbose' || a === '-v') args.verbose = true;
    else if (a === '--messages') args.messages = args.verbose = true;
    else if (a === '--lease-reads') args.leaseReads = true;
    else throw new Error(`unknown argument ${a} (use --seed N | --seeds N [--base B] | --steps N | --verbose | --messages | --lease-reads)`);
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const core = await loadCore();
  const seeds = args.seed !== null ? [args.seed] : Array.from({ length: args.seeds }, (_, i) => args.base + i);
  const started = performance.now();
  const failures: RunResult[] = [];
  for (const seed of seeds) {
    const t0 = performance.now();
    const r = runSeed(seed, core, { steps: args.steps, verbose: args.verbose, messages: args.messages, leaseReads: args.leaseReads });
    const ms = Math.round(performance.now() - t0);
    if (r.violation !== null) {
      failures.push(r);
      console.log(formatFailure(r, args.steps, args));
    } else if (seeds.length === 1 || args.verbose) {
      console.log(`ok seed ${seed} in ${ms} ms: ${JSON.stringify(r.stats)}`);
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${seeds.length} seeds, ${failures.length} failed, ${secs} s`);
  if (failures.length > 0) {
    console.log(`failed seeds: ${failures.map((f) => f.seed).join(' ')}`);
    for (const f of failures) console.log(`  ${replayCommand(f.seed, args.steps, args)}   # ${f.violation?.message ?? ''}`);
  }
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
