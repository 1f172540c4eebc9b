/**
 * Cost of the authority front per unary gRPC call: the same Range call against a node:http2 server
 * listening by itself, behind the front with a valid authority (direct path) and with a malformed
 * one (fixing path). Client and server share one process, so a per-call time is the CPU of both ends
 * plus the front; the differences between variants are the front's cost.
 *
 *   node dist/src/api/h2-authority/authority-bench.js [callsPerRound=5000] [rounds=5]
 */
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { RangeRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { defaultAuthorityFrontLimits, listenWithAuthorityFix } from './authority-front.js';
import { ClientStreamFixer } from './client-stream-fixer.js';
import { clientPreface } from './h2-frames.js';
import { rangeReply } from './test-helpers.js';

function grpcServer(): http2.Http2Server {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(rangeReply(Buffer.concat(chunks)));
    });
  });
  return server;
}

const request = ((): Buffer => {
  const body = Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('bench-key') })).finish());
  const framed = Buffer.alloc(5 + body.length);
  framed.writeUInt32BE(body.length, 1);
  body.copy(framed, 5);
  return framed;
})();

function call(session: http2.ClientHttp2Session, authority: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST', ':path': '/etcdserverpb.KV/Range', ':authority': authority,
      'content-type': 'application/grpc', te: 'trailers', 'user-agent': 'grpc-go/1.33.3',
    });
    stream.on('trailers', (t) => (t['grpc-status'] === '0' ? undefined : reject(new Error('bad status'))));
    stream.on('error', reject);
    stream.on('close', () => resolve());
    stream.resume();
    stream.end(request);
  });
}

interface Sample {
  readonly wallMicros: number;
  readonly cpuMicros: number;
}

/** Wall time and CPU time (user + system, this process: client, server and front) per call. */
async function measure(port: number, authority: string, calls: number, inFlight: number): Promise<Sample> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await call(session, authority); // connection set-up is not what we measure
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next++ < calls) await call(session, authority);
  }));
  const wallMicros = Number(process.hrtime.bigint() - start) / 1000 / calls;
  const used = process.cpuUsage(cpu);
  await new Promise<void>((resolve) => session.close(() => resolve()));
  return { wallMicros, cpuMicros: (used.user + used.system) / calls };
}

/** The bytes a Node http2 client sends for `requests` Range calls (a server that never answers). */
async function recordClientBytes(requests: number, authority: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const recorder = net.createServer((socket) => socket.on('data', (c: Buffer) => chunks.push(c)));
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  const session = http2.connect(`http://127.0.0.1:${(recorder.address() as { port: number }).port}`);
  session.on('error', () => {});
  for (let i = 0; i < requests; i++) void call(session, authority).catch(() => {});
  const expected = requests * (request.length + 9);
  while (chunks.reduce((n, c) => n + c.length, 0) < expected) await new Promise((resolve) => setTimeout(resolve, 5));
  session.destroy();
  await new Promise((resolve) => recorder.close(resolve));
  return Buffer.concat(chunks).subarray(clientPreface.length);
}

/** JavaScript cost of the fixer alone per request (HEADERS + DATA frames), no I/O. */
async function fixerMicros(authority: string, iterations: number): Promise<number> {
  const requests = 100;
  const bytes = await recordClientBytes(requests, authority);
  const options = { limits: defaultAuthorityFrontLimits, fallbackAuthority: '127.0.0.1:1', dropFirstSettingsAck: false };
  for (let i = 0; i < 50; i++) new ClientStreamFixer(options).push(bytes);
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) new ClientStreamFixer(options).push(bytes);
  return Number(process.hrtime.bigint() - start) / 1000 / (iterations * requests);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 5000);
  const rounds = Number(process.argv[3] ?? 5);
  const plain = grpcServer();
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
  const plainPort = (plain.address() as { port: number }).port;
  const front = await listenWithAuthorityFix(grpcServer(), { host: '127.0.0.1', port: 0 });
  const frontPort = front.address().port;
  const variants: Array<[string, number, string]> = [
    ['plain node:http2 server', plainPort, `127.0.0.1:${plainPort}`],
    ['front, valid authority (direct)', frontPort, `127.0.0.1:${frontPort}`],
    ['front, #initially=[...] (fixing)', frontPort, `#initially=[http://127.0.0.1:${frontPort}]`],
  ];
  for (const inFlight of calls > 0 ? [1, 32] : []) {
    const results = new Map<string, Sample[]>(variants.map(([name]) => [name, []]));
    for (let round = -1; round < rounds; round++) {
      for (const [name, port, authority] of variants) {
        const sample = await measure(port, authority, calls, inFlight);
        if (round >= 0) results.get(name)!.push(sample); // round -1 warms up
      }
    }
    console.log(`\n${calls} unary calls x ${rounds} rounds, ${inFlight} in flight: medians per call`);
    for (const [name, xs] of results) {
      const wall = median(xs.map((x) => x.wallMicros));
      const cpu = median(xs.map((x) => x.cpuMicros));
      console.log(`  ${name.padEnd(36)} wall ${wall.toFixed(1).padStart(7)} us   cpu ${cpu.toFixed(1).padStart(7)} us`);
    }
  }
  console.log('front stats', front.stats);
  console.log('\nClientStreamFixer.push alone, per request (HEADERS + DATA); min and median of 9 x 200 connections of 100 requests:');
  for (const [name, authority] of [['valid authority (decode only)', '127.0.0.1:2379'], ['#initially=[...] (decode + re-encode)', '#initially=[http://127.0.0.1:2379]']] as const) {
    const xs: number[] = [];
    for (let i = 0; i < 9; i++) xs.push(await fixerMicros(authority, 200));
    console.log(`  ${name.padEnd(40)} min ${Math.min(...xs).toFixed(2)} us   median ${median(xs).toFixed(2)} us`);
  }
  await front.close({ graceMs: 100 });
  await new Promise((resolve) => plain.close(resolve));
}

await main();
