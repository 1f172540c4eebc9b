// Plain-text summary of one load-generator run, close to what etcd's benchmark tool prints.

import type { LoadResult } from './load-generator.js';

export const PERCENTILES: readonly number[] = [10, 25, 50, 75, 90, 95, 99, 99.9];

export function msText(us: number): string {
  if (!Number.isFinite(us)) return '-';
  const ms = us / 1000;
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

export function summarize(result: LoadResult): string {
  const h = result.histogram;
  const cpuPct = (result.cpuUs / 1000 / result.elapsedMs) * 100;
  const lines = [
    'Summary:',
    `  Total:\t${(result.elapsedMs / 1000).toFixed(4)} secs.`,
    `  Requests:\t${h.count} ok, ${result.errorCount} failed`,
    `  Slowest:\t${msText(h.max)} ms.`,
    `  Fastest:\t${msText(h.min)} ms.`,
    `  Average:\t${msText(h.mean)} ms.`,
    `  Requests/sec:\t${result.opsPerSec.toFixed(1)}`,
    `  Load-generator CPU:\t${cpuPct.toFixed(0)}% of one core over ${result.threads} thread(s), ` +
      `${h.count > 0 ? (result.cpuUs / h.count).toFixed(1) : '-'} us per request, ` +
      `busiest thread's event loop ${(result.busiestThread * 100).toFixed(0)}% busy`,
    '',
    'Latency distribution:',
    ...PERCENTILES.map((p) => `  ${p}% in ${msText(h.percentile(p))} ms.`),
  ];
  if (result.errorCount > 0) {
    lines.push('', 'Errors:');
    for (const [what, n] of Object.entries(result.errors)) lines.push(`  ${n} x ${what}`);
  }
  return lines.join('\n');
}
