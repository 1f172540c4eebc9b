/**
 * Server-streaming throughput, Watch-like: several streams each sent `messages` messages of ~320 B as
 * fast as write()/'drain' allow, to a grpc-js client in a child process. Prints server CPU per message and
 * messages per second for our H2Server and for grpc-js (src/api/grpc/grpc-server.ts), rounds interleaved.
 *
 * Run: node dist/src/api/h2/bench-stream.js [--streams 10] [--messages 20000] [--rounds 3]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { credentials, Metadata, type ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import { GrpcServer } from '../grpc/grpc-server.js';
import {
  MaintenanceClient, MaintenanceService, SnapshotRequest, SnapshotResponse,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { H2Server, type H2ServiceRegistration } from './h2-server.js';

const blobBytes = 300;
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

function streamingService(): H2ServiceRegistration {
  const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };
  return {
    definition: MaintenanceService,
    implementation: {
      snapshot: (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>) => {
        const total = Number(call.metadata.get('messages')[0] ?? '0');
        let sent = 0;
        const pump = (): void => {
          while (sent < total) {
            const ok = call.write(SnapshotResponse.fromPartial({ header, remainingBytes: BigInt(total - sent), blob: Buffer.alloc(blobBytes, sent) }));
            sent++;
            if (!ok) {
              call.once('drain', pump);
              return;
            }
          }
          call.end();
        };
        pump();
      },
    },
  };
}

const listenOptions = {
  urls: [new URL('http://127.0.0.1:0')], requestBytesMax: 1.5 * 1024 * 1024, maxConcurrentStreams: 1000,
  keepaliveMinTimeMs: 5000, keepaliveIntervalMs: 2 * 3600 * 1000, keepaliveTimeoutMs: 20_000, log: silent,
};

type Kind = 'h2' | 'grpc-js';

async function measure(kind: Kind, load: { streams: number; messages: number }): Promise<{ cpuUsPerMessage: number; messagesPerSec: number }> {
  const { streams, messages } = load;
  const server = kind === 'h2' ? new H2Server([streamingService()], listenOptions) : new GrpcServer([streamingService() as never], listenOptions);
  await server.listen(listenOptions.urls);
  const child = fork(fileURLToPath(import.meta.url), ['--client', String(server.boundPorts[0])]);
  const next = (): Promise<{ ms: number }> => new Promise((resolve) => child.once('message', (m) => resolve(m as { ms: number })));
  child.send({ streams, messages: 2000 });
  await next();
  const cpu0 = process.cpuUsage();
  child.send({ streams, messages });
  const { ms } = await next();
  const cpu = process.cpuUsage(cpu0);
  child.send({ streams: 0, messages: 0 });
  await new Promise((resolve) => child.once('exit', resolve));
  await server.close(1000);
  const total = streams * messages;
  return { cpuUsPerMessage: (cpu.user + cpu.system) / total, messagesPerSec: (total / ms) * 1000 };
}

function runClient(port: string): void {
  const client = new MaintenanceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  process.on('message', (m: { streams: number; messages: number }) => {
    if (m.streams === 0) {
      client.close();
      process.disconnect();
      return;
    }
    const t0 = performance.now();
    let open = m.streams;
    for (let i = 0; i < m.streams; i++) {
      const md = new Metadata();
      md.set('messages', String(m.messages));
      let got = 0;
      const stream = client.snapshot(SnapshotRequest.fromPartial({}), md);
      stream.on('data', () => { got++; });
      stream.on('error', (err: Error) => { throw err; });
      stream.on('end', () => {
        if (got !== m.messages) throw new Error(`stream got ${got} of ${m.messages}`);
        if (--open === 0) process.send?.({ ms: performance.now() - t0 });
      });
    }
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      streams: { type: 'string', default: '10' },
      messages: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const streams = Number(values.streams);
  const messages = Number(values.messages);
  console.log(`server streaming, ${streams} streams x ${messages} messages of ~${blobBytes + 30} B, grpc-js client in a child process`);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const line: string[] = [];
    for (const kind of ['h2', 'grpc-js'] as const) {
      const r = await measure(kind, { streams, messages });
      line.push(`${kind} ${r.cpuUsPerMessage.toFixed(1)} us/msg ${Math.round(r.messagesPerSec)} msgs/s`);
    }
    console.log(`round ${round}: ${line.join(' | ')}`);
  }
}

if (process.argv[2] === '--client') runClient(process.argv[3] ?? '');
else await main();
