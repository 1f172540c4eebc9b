// The HTTP/JSON gateway under load: real etcd and etcd-ts one at a time, the same puts and ranges as
// JSON over HTTP/1.1 keep-alive connections. Not part of `npm test`.
//
//   node dist/bench/gateway-bench.js [--total 5000] [--clients 20] [--val-size 256] [--target-only both|etcd|ours]

import http from 'node:http';
import { resolve } from 'node:path';
import { parseFlags, usage, type FlagSpecs } from './options.js';
import { REPO_ROOT } from './workloads.js';
import { startServer } from './server-process.js';

const FLAGS = {
  total: { kind: 'int', default: 5_000, min: 10, max: 1_000_000, help: 'Requests per workload' },
  clients: { kind: 'int', default: 20, min: 1, max: 1_000, help: 'Concurrent clients, one keep-alive connection each' },
  'val-size': { kind: 'int', default: 256, min: 0, max: 1_000_000, help: 'Value size in bytes' },
  'target-only': { kind: 'enum', default: 'both', values: ['both', 'etcd', 'ours'], help: 'Run one server only' },
  'etcd-bin': { kind: 'string', default: '/usr/bin/etcd', help: 'Reference server binary' },
  'ours-bin': { kind: 'string', default: resolve(REPO_ROOT, 'bin', 'etcd-ts'), help: 'Our server binary' },
} as const satisfies FlagSpecs;

interface Result {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function post(agent: http.Agent, endpoint: string, path: string, body: string): Promise<number> {
  const [host, port] = endpoint.split(':');
  return new Promise((ok, fail) => {
    const started = performance.now();
    const req = http.request({ host, port: Number(port), path, method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? ok(performance.now() - started) : fail(new Error(`${path}: HTTP ${res.statusCode}`))));
    });
    req.on('error', fail);
    req.end(body);
  });
}

async function run(endpoint: string, o: { total: number; clients: number; body: (i: number) => string; path: string }): Promise<Result> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: o.clients }, async () => {
    while (next < o.total) {
      const i = next++;
      latencies.push(await post(agent, endpoint, o.path, o.body(i)));
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return { perSecond: o.total / seconds, p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function main(): Promise<void> {
  const parsed = parseFlags(process.argv.slice(2), FLAGS);
  if (parsed.help) {
    process.stdout.write(usage(FLAGS));
    return;
  }
  const flags = parsed.flags;
  const value = Buffer.alloc(flags['val-size'], 'v').toString('base64');
  const key = (i: number): string => Buffer.from(`key-${i % 1000}`).toString('base64');
  const targets = flags['target-only'] === 'both' ? ['etcd', 'ours'] : [flags['target-only']];
  const rows: string[] = ['| server | workload | req/s | p50 ms | p99 ms |', '|---|---|---:|---:|---:|'];
  for (const target of targets) {
    const binary = target === 'etcd' ? flags['etcd-bin'] : flags['ours-bin'];
    const server = await startServer({ label: target, binary, readyTimeoutMs: 30_000 });
    try {
      const workloads = [
        { name: 'put', path: '/v3/kv/put', body: (i: number) => `{"key":"${key(i)}","value":"${value}"}` },
        { name: 'range (linearizable)', path: '/v3/kv/range', body: (i: number) => `{"key":"${key(i)}"}` },
      ];
      for (const w of workloads) {
        const r = await run(server.endpoint, { total: flags.total, clients: flags.clients, body: w.body, path: w.path });
        rows.push(`| ${target} | ${w.name} | ${r.perSecond.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} |`);
      }
    } finally {
      await server.stop();
    }
  }
  process.stdout.write(`${rows.join('\n')}\n`);
}

await main();
