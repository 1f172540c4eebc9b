/**
 * Throughput of the peer transport between two members in one process (both ends share the CPU):
 * MsgApp messages carrying 128-byte entries (one each by default), sent as a raft leader would (a batch per
 * turn, with a bounded number in flight so the queue never overflows), optionally answered by a MsgAppResp
 * each.
 *
 *   node dist/src/raftnode/transport/bench-throughput.js [messages=200000] [--entries=1] [--responses]
 */
import { MessageType, type Message } from '../../raft/types.js';
import { appMessage, mesh, startNode, waitFor } from './test-support.js';

const IN_FLIGHT_MAX = 2048;
const BATCH_MAX = 256;
const ENTRY_BYTES = 128;

async function run(total: number, options: { entries: number; responses: boolean }): Promise<void> {
  const { entries, responses } = options;
  const a = await startNode(1n);
  const b = await startNode(2n);
  mesh([a, b]);
  // Received messages are counted, not kept: the recorder arrays would dominate memory.
  let got = 0;
  let acks = 0;
  let inOrder = true;
  const onB = (m: Message): void => {
    if (m.index !== got) inOrder = false;
    got++;
    if (responses) b.t.send([{ ...m, type: MessageType.AppResp, to: 1n, from: 2n, entries: [] }]);
  };
  b.received.push = (...ms: Message[]): number => {
    ms.forEach(onB);
    return 0;
  };
  a.received.push = (...ms: Message[]): number => {
    acks += ms.length;
    return 0;
  };
  const template = Array.from({ length: BATCH_MAX }, (_, i) => appMessage({ from: 1n, to: 2n, index: i, entryBytes: ENTRY_BYTES, entries }));
  await waitFor('the link', () => a.t.peerStats(2n)?.state === 'streaming');
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  let sent = 0;
  while (sent < total) {
    const room = Math.min(IN_FLIGHT_MAX - (sent - got), BATCH_MAX, total - sent);
    if (room > 0) {
      const batch: Message[] = [];
      for (let i = 0; i < room; i++) batch.push({ ...template[i]!, index: sent + i, commit: sent + i });
      a.t.send(batch);
      sent += room;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await waitFor('every message', () => got === total && (!responses || acks === total), 120_000);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  // The machine may be shared: per CPU-second figures say what the code costs, whatever the contention.
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const stats = a.t.peerStats(2n)!;
  console.log(JSON.stringify({
    messages: total, entriesPerMessage: entries, responses, seconds: Number(seconds.toFixed(3)),
    cpuSeconds: Number(cpuSeconds.toFixed(3)),
    messagesPerSecond: Math.round(total / seconds),
    messagesPerCpuSecond: Math.round(total / cpuSeconds),
    entriesPerSecond: Math.round((total * entries) / seconds),
    entryMBPerSecond: Number(((total * entries * ENTRY_BYTES) / seconds / 1e6).toFixed(1)),
    wireMBPerSecond: Number((stats.bytesSent / seconds / 1e6).toFixed(1)),
    dropped: stats.messagesDropped, inOrder, rttMs: a.t.rttMs(2n),
  }));
  await Promise.all([a.t.close(), b.t.close()]);
}

const total = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 200_000);
const entries = Number(/^--entries=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--entries=')) ?? '')?.[1] ?? 1);
await run(total, { entries, responses: process.argv.includes('--responses') });
