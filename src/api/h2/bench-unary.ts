/**
 * Server CPU per unary call: our H2Server against grpc-js (src/api/grpc/grpc-server.ts), the same trivial
 * Put handler (16 B key, 256 B value) and the same registrations, driven by a grpc-js client in a child
 * process so the server process's CPU is the server's alone. Rounds alternate servers because the machine
 * is shared and its speed drifts.
 *
 * Run: node dist/src/api/h2/bench-unary.js [--client grpc-js|raw] [--calls 20000] [--channels 4] [--inflight 16] [--rounds 5]
 *      (--client raw: hand-framed gRPC over node:http2, light enough that the server, not the client, saturates)
 *      node dist/src/api/h2/bench-unary.js --etcdctl-perf m   (Go clientv3 load: `etcdctl check perf`)
 */
import { fork, spawn } from 'node:child_process';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { credentials } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import { GrpcServer } from '../grpc/grpc-server.js';
import {
  DeleteRangeResponse, KVClient, KVService, PutRequest, PutResponse, RangeResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { frameMessages } from './grpc-wire.js';
import { H2Server, type H2ServiceRegistration } from './h2-server.js';

const keyBytes = 16;
const valueBytes = 256;
const warmupCalls = 3000;

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function trivialKv(): H2ServiceRegistration {
  const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };
  const putResponse = PutResponse.fromPartial({ header });
  return {
    definition: KVService,
    implementation: {
      put: (_call: unknown, cb: (err: null, res: PutResponse) => void) => cb(null, putResponse),
      range: (_call: unknown, cb: (err: null, res: RangeResponse) => void) => cb(null, RangeResponse.fromPartial({ header })),
      deleteRange: (_call: unknown, cb: (err: null, res: DeleteRangeResponse) => void) =>
        cb(null, DeleteRangeResponse.fromPartial({ header })),
    },
  };
}

interface Server {
  readonly port: number;
  close(): Promise<void>;
}

const listenOptions = {
  urls: [new URL('http://127.0.0.1:0')], requestBytesMax: 1.5 * 1024 * 1024, maxConcurrentStreams: 2 ** 31 - 1,
  keepaliveMinTimeMs: 5000, keepaliveIntervalMs: 2 * 3600 * 1000, keepaliveTimeoutMs: 20_000, log: silent,
};

type Kind = 'h2' | 'grpc-js' | 'floor';

/** The floor: node:http2 answering every stream with a canned gRPC response, no decoding, no dispatch. */
async function startFloor(): Promise<Server> {
  const body = PutResponse.encode(PutResponse.fromPartial({ header: { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n } })).finish();
  const frame = frameMessages([body]);
  const respondOptions = { waitForTrailers: true, sendDate: false };
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, respondOptions);
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { port, close: () => new Promise((resolve) => { server.close(() => resolve()); }) };
}

async function startServer(kind: Kind): Promise<Server> {
  if (kind === 'floor') return startFloor();
  const s = kind === 'h2' ? new H2Server([trivialKv()], listenOptions) : new GrpcServer([trivialKv() as never], listenOptions);
  await s.listen(listenOptions.urls);
  const port = s.boundPorts[0];
  if (port === undefined) throw new Error('no port');
  return { port, close: () => s.close(1000) };
}

interface RoundResult {
  readonly cpuUsPerCall: number;
  readonly callsPerSec: number;
}

type ClientKind = 'grpc-js' | 'raw';

interface LoadArgs {
  readonly calls: number;
  readonly channels: number;
  readonly inflight: number;
  readonly client: ClientKind;
}

/** One measured run: warm up, then count server CPU over `calls` calls. */
async function measure(kind: Kind, args: LoadArgs): Promise<RoundResult> {
  const server = await startServer(kind);
  const child = fork(fileURLToPath(import.meta.url), ['--client', args.client, String(server.port), String(args.channels), String(args.inflight)]);
  const next = (): Promise<{ ms: number }> => new Promise((resolve) => child.once('message', (m) => resolve(m as { ms: number })));
  child.send({ calls: warmupCalls });
  await next();
  const cpu0 = process.cpuUsage();
  child.send({ calls: args.calls });
  const { ms } = await next();
  const cpu = process.cpuUsage(cpu0);
  child.send({ calls: 0 });
  await new Promise((resolve) => child.once('exit', resolve));
  await server.close();
  return { cpuUsPerCall: (cpu.user + cpu.system) / args.calls, callsPerSec: (args.calls / ms) * 1000 };
}

/** A client: `put(channel, done)` issues one Put on a channel and calls done when it completed OK. */
interface LoadClient {
  put(channel: number, done: () => void): void;
  close(): void;
}

const request = PutRequest.fromPartial({ key: Buffer.alloc(keyBytes, 0x6b), value: Buffer.alloc(valueBytes, 0x76) });

function grpcJsClient(port: string, channels: number): LoadClient {
  const clients = Array.from({ length: channels }, (_, i) =>
    new KVClient(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.channel_id': i }));
  return {
    put(channel, done) {
      clients[channel]?.put(request, (err) => {
        if (err !== null) throw err;
        done();
      });
    },
    close: () => clients.forEach((c) => c.close()),
  };
}

/** Hand-framed gRPC over node:http2: a fraction of grpc-js's client cost, so the server becomes the bottleneck. */
function rawClient(port: string, channels: number): LoadClient {
  const sessions = Array.from({ length: channels }, () => http2.connect(`http://127.0.0.1:${port}`));
  const body = PutRequest.encode(request).finish();
  const frame = Buffer.from(frameMessages([body]));
  const headers = { ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' };
  return {
    put(channel, done) {
      const req = sessions[channel]?.request(headers);
      if (req === undefined) throw new Error('no session');
      let ok = false;
      req.on('trailers', (t) => { ok = t['grpc-status'] === '0'; });
      req.on('data', () => {});
      req.on('close', () => {
        if (!ok) throw new Error('call failed');
        done();
      });
      req.end(frame);
    },
    close: () => sessions.forEach((s) => s.close()),
  };
}

/** The client process: runs batches of calls on request and reports their wall time. */
function runClient(options: { kind: ClientKind; port: string; channels: number; inflight: number }): void {
  const { port, channels, inflight } = options;
  const client = options.kind === 'raw' ? rawClient(port, channels) : grpcJsClient(port, channels);
  process.on('message', (m: { calls: number }) => {
    if (m.calls === 0) {
      client.close();
      process.disconnect();
      return;
    }
    const t0 = performance.now();
    let started = 0;
    let done = 0;
    const one = (channel: number): void => {
      started++;
      client.put(channel, () => {
        done++;
        if (started < m.calls) one(channel);
        else if (done === m.calls) process.send?.({ ms: performance.now() - t0 });
      });
    };
    for (let c = 0; c < channels; c++) for (let i = 0; i < inflight && started < m.calls; i++) one(c);
  });
}

/** Go clientv3 as load: `etcdctl check perf` (rate-limited puts of 256 B keys, 1 KiB values, 60 s). */
async function measureEtcdctlPerf(kind: 'h2' | 'grpc-js', load: string): Promise<RoundResult & { output: string }> {
  const server = await startServer(kind);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let calls = 0;
  const output = await new Promise<string>((resolve) => {
    const child = spawn('/usr/bin/etcdctl', ['--endpoints', `127.0.0.1:${server.port}`, 'check', 'perf', '--load', load],
      { env: { ...process.env, ETCDCTL_API: '3' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.on('exit', () => resolve(out));
  });
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  const rps = /Throughput is (\d+) writes\/s/.exec(output)?.[1] ?? /Throughput too low: (\d+)/.exec(output)?.[1];
  calls = Number(rps ?? 0) * 60;
  await server.close();
  return { cpuUsPerCall: (cpu.user + cpu.system) / calls, callsPerSec: (calls / ms) * 1000, output: output.split(/[\r\n]+/).filter((l) => /PASS|FAIL|Slowest|Stddev/.test(l)).map((l) => l.replace(/.*?(PASS|FAIL|Slowest|Stddev)/, '$1')).join(' | ') };
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '20000' },
      channels: { type: 'string', default: '4' },
      inflight: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '5' },
      client: { type: 'string', default: 'grpc-js' },
      'etcdctl-perf': { type: 'string' },
      only: { type: 'string' },
    },
  });
  if (values['etcdctl-perf'] !== undefined) {
    for (const kind of ['h2', 'grpc-js'] as const) {
      const r = await measureEtcdctlPerf(kind, values['etcdctl-perf']);
      console.log(`${kind.padEnd(8)} server CPU ${r.cpuUsPerCall.toFixed(1)} us/put  (~${Math.round(r.callsPerSec)} puts/s)  ${r.output}`);
    }
    return;
  }
  const client = values.client === 'raw' ? 'raw' : 'grpc-js';
  const args: LoadArgs = { calls: Number(values.calls), channels: Number(values.channels), inflight: Number(values.inflight), client };
  const kinds: Kind[] = values.only !== undefined ? [values.only as Kind] : ['h2', 'grpc-js', 'floor'];
  console.log(`unary Put (${keyBytes} B key, ${valueBytes} B value), ${args.calls} calls per round, ${client} client in a child ` +
    `process, ${args.channels} connections x ${args.inflight} in flight; rounds interleave the servers`);
  const results = new Map<Kind, RoundResult[]>(kinds.map((k) => [k, []]));
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const kind of kinds) results.get(kind)?.push(await measure(kind, args));
  }
  for (const kind of kinds) {
    const rs = results.get(kind) ?? [];
    const cpu = rs.map((r) => r.cpuUsPerCall);
    console.log(`${kind.padEnd(8)} server CPU/call median ${median(cpu).toFixed(1)} us (min ${Math.min(...cpu).toFixed(1)}, ` +
      `max ${Math.max(...cpu).toFixed(1)})  calls/s median ${Math.round(median(rs.map((r) => r.callsPerSec)))}`);
  }
}

if (process.argv[2] === '--client') {
  runClient({
    kind: process.argv[3] === 'raw' ? 'raw' : 'grpc-js', port: process.argv[4] ?? '', channels: Number(process.argv[5]), inflight: Number(process.argv[6]),
  });
} else {
  await main();
}
