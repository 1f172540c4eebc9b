/**
 * Server CPU per unary call: our H2Server against grpc-js (src/api/grpc/grpc-server.ts), the same trivial
 * Put handler (16 B key, 256 B value) and the same registrations, driven by a grpc-js client in a child
 * process so the server process's CPU is the server's alone. Rounds alternate servers because the machine
 * is shared and its speed drifts.
 *
 * Run: node dist/src/api/h2/bench-unary.js [--calls 20000] [--channels 4] [--inflight 16] [--rounds 3]
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
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
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

/** One measured run: warm up, then count server CPU over `calls` calls. */
async function measure(kind: Kind, args: { calls: number; channels: number; inflight: number }): Promise<RoundResult> {
  const server = await startServer(kind);
  const child = fork(fileURLToPath(import.meta.url), ['--client', String(server.port), String(args.channels), String(args.inflight)]);
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

/** The client process: runs batches of calls on request and reports their wall time. */
function runClient(port: string, channels: number, inflight: number): void {
  const clients = Array.from({ length: channels }, (_, i) =>
    new KVClient(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.channel_id': i }));
  const request = PutRequest.fromPartial({ key: Buffer.alloc(keyBytes, 0x6b), value: Buffer.alloc(valueBytes, 0x76) });
  process.on('message', (m: { calls: number }) => {
    if (m.calls === 0) {
      for (const c of clients) c.close();
      process.disconnect();
      return;
    }
    const t0 = performance.now();
    let started = 0;
    let done = 0;
    const one = (client: KVClient): void => {
      started++;
      client.put(request, (err) => {
        if (err !== null) throw err;
        done++;
        if (started < m.calls) one(client);
        else if (done === m.calls) process.send?.({ ms: performance.now() - t0 });
      });
    };
    for (const c of clients) for (let i = 0; i < inflight && started < m.calls; i++) one(c);
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
  return { cpuUsPerCall: (cpu.user + cpu.system) / calls, callsPerSec: (calls / ms) * 1000, output: output.trim().split('\n').slice(-4).join(' | ') };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '20000' },
      channels: { type: 'string', default: '4' },
      inflight: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '3' },
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
  const args = { calls: Number(values.calls), channels: Number(values.channels), inflight: Number(values.inflight) };
  console.log(`unary Put, ${args.calls} calls, ${args.channels} channels x ${args.inflight} in flight, grpc-js client in a child process`);
  if (values.only !== undefined) {
    const r = await measure(values.only as Kind, args);
    console.log(`${values.only}: ${r.cpuUsPerCall.toFixed(1)} us/call ${Math.round(r.callsPerSec)} calls/s`);
    return;
  }
  for (let round = 1; round <= Number(values.rounds); round++) {
    const ours = await measure('h2', args);
    const theirs = await measure('grpc-js', args);
    const floor = await measure('floor', args);
    console.log(`round ${round}: h2 ${ours.cpuUsPerCall.toFixed(1)} us/call ${Math.round(ours.callsPerSec)} calls/s | ` +
      `grpc-js ${theirs.cpuUsPerCall.toFixed(1)} us/call ${Math.round(theirs.callsPerSec)} calls/s | ` +
      `raw http2 floor ${floor.cpuUsPerCall.toFixed(1)} us/call ${Math.round(floor.callsPerSec)} calls/s | ` +
      `grpc-js/h2 CPU ${(theirs.cpuUsPerCall / ours.cpuUsPerCall).toFixed(2)}x`);
  }
}

if (process.argv[2] === '--client') {
  runClient(process.argv[3] ?? '', Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
