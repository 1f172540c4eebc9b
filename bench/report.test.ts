import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatCpuTicks, parseStatus } from './proc-stats.js';
import { mainTable, ratio, README_END, README_START, replaceResults, type Measure } from './report.js';

const MB = 1024 * 1024;

function measure(opsPerSec: number, rssMb: number): Measure {
  return {
    opsPerSec, okCount: 100, errorCount: 0, p50Us: 1500, p99Us: 12_000, maxUs: 20_000, peakRssBytes: rssMb * MB,
    serverCpuUsPerOp: 100, loadgenCpuUsPerOp: 300, loadgenCpuPct: 50, loadgenBusyPct: 60,
  };
}

test('ratio is ours over etcd, and a dash when a side is missing', () => {
  assert.equal(ratio(150, 100), '1.50');
  assert.equal(ratio(undefined, 100), '-');
  assert.equal(ratio(100, 0), '-');
});

test('the main table shows both sides, the ratio and dashes for a side that did not run', () => {
  const table = mainTable([
    { workload: 'put1', title: 'put, 1 client', results: { etcd: measure(1000, 30), ours: measure(1250, 40) } },
    { workload: 'put100', title: 'put, 100 clients', results: { etcd: measure(2000, 31) } },
  ]);
  const lines = table.split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0] ?? '', /workload +\| etcd ops\/s \| ours ops\/s \| ours\/etcd \|/);
  assert.deepEqual(cells(lines[2]), ['put, 1 client', '1,000', '1,250', '1.25', '1.50', '1.50', '12.0', '12.0', '30', '40']);
  assert.deepEqual(cells(lines[3]), ['put, 100 clients', '2,000', '-', '-', '1.50', '-', '12.0', '-', '31', '-']);
});

function cells(line: string | undefined): string[] {
  return (line ?? '').split('|').slice(1, -1).map((c) => c.trim());
}

test('README results are replaced between markers and the rest of the file is kept', () => {
  const readme = `# Bench\n\nintro\n\n${README_START}\nold table\n${README_END}\n\n## raft\nraft figure\n`;
  const next = replaceResults(readme, 'new table');
  assert.equal(next, `# Bench\n\nintro\n\n${README_START}\nnew table\n${README_END}\n\n## raft\nraft figure\n`);
  assert.equal(replaceResults(next, 'new table'), next);
});

test('a README without markers gets a marked section appended', () => {
  assert.equal(replaceResults('# Bench\n', 'table'), `# Bench\n\n${README_START}\ntable\n${README_END}\n`);
  assert.equal(replaceResults('', 'table'), `${README_START}\ntable\n${README_END}\n`);
});

test('/proc parsing: VmRSS, VmHWM, RssAnon, RssFile in kB; utime + stime after the command name', () => {
  const status = 'Name:\tetcd\nVmHWM:\t  51200 kB\nVmRSS:\t  40960 kB\nRssAnon:\t  30720 kB\nRssFile:\t 10240 kB\n';
  assert.deepEqual(parseStatus(status), { rssBytes: 40 * MB, hwmBytes: 50 * MB, anonBytes: 30 * MB, fileBytes: 10 * MB });
  // A command name with spaces and parentheses must not shift the fields.
  const stat = '1234 (my (odd) server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 1000 200';
  assert.equal(parseStatCpuTicks(stat), 325);
});
