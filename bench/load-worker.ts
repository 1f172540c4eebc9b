// Entry point of a load-generator thread. The parent sends phases one at a time; each phase runs this
// thread's clients until the shared counter is spent and answers with the latencies it saw.

import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../src/base/assert.js';
import type { LoadConfig } from './load-config.js';
import { openConns, runPhase, waitConnected, type PhaseSpec, type ThreadShare } from './load-engine.js';

export interface WorkerInit {
  cfg: LoadConfig;
  share: ThreadShare;
  counters: SharedArrayBuffer;
}

export type ToWorker = { type: 'phase'; phase: PhaseSpec } | { type: 'close' };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'phase-done'; result: Awaited<ReturnType<typeof runPhase>> }
  | { type: 'failed'; message: string };

async function main(): Promise<void> {
  const port = parentPort;
  assert(port !== null, 'load-worker must run as a worker thread');
  const init = workerData as WorkerInit;
  const counter = new Int32Array(init.counters);
  const conns = openConns(init.cfg.endpoint, init.share.connIds.length);
  const post = (msg: FromWorker): void => port.postMessage(msg);
  try {
    await waitConnected(conns);
  } catch (err) {
    post({ type: 'failed', message: `connect: ${String(err)}` });
    return;
  }
  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'close') {
      for (const c of conns) c.close();
      port.close();
      return;
    }
    runPhase(conns, { cfg: init.cfg, share: init.share, counter, phase: msg.phase }).then(
      (result) => post({ type: 'phase-done', result }),
      (err: unknown) => post({ type: 'failed', message: String(err) }),
    );
  });
  post({ type: 'ready' });
}

void main();
