/** How a failed run is reported: the violation, the seed's profile, the last trace lines and the replay command. */
import type { RunResult } from './scenario.js';

/** Rounds of phase one when --steps is not given. */
export const DEFAULT_STEPS = 3000;

export function replayCommand(seed: number, steps: number, options: { leaseReads?: boolean } = {}): string {
  const flags = `${steps === DEFAULT_STEPS ? '' : ` --steps ${steps}`}${options.leaseReads === true ? ' --lease-reads' : ''}`;
  return `npm run sim -- --seed ${seed}${flags}`;
}

export function formatFailure(r: RunResult, steps: number, options: { leaseReads?: boolean } = {}): string {
  const v = r.violation;
  const lines = [
    `FAIL seed ${r.seed}: ${v?.message ?? '?'}`,
    `  profile: ${JSON.stringify(r.profile)}`,
  ];
  if (v !== null && v.name !== 'SimViolation' && v.stack !== undefined) lines.push(`  ${v.stack.split('\n').slice(0, 8).join('\n  ')}`);
  if (r.trace.length > 0) {
    lines.push('  last trace lines:');
    for (const t of r.trace.slice(-30)) lines.push(`    ${t}`);
  }
  lines.push(`  replay: ${replayCommand(r.seed, steps, options)}`);
  return lines.join('\n');
}

