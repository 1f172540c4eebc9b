/**
 * Raft core throughput: a 3-node cluster in one process, an in-memory network (arrays, no faults) and
 * MemoryStorage as the "disk". The leader proposes batches of 128-byte entries; every node runs the host
 * loop (persist to storage, send, apply, advance) once per turn. Prints committed entries per second
 * (counted on the leader as its Ready hands them out) and heap bytes allocated per entry.
 *
 * Allocation is measured with v8.GCProfiler: bytes allocated = heap used at the end - heap used at the
 * start + everything the collections of the run freed (sum of used-before minus used-after per GC).
 * The payload buffer is shared by all proposals, so the figure is what raft and the host loop allocate.
 *
 *   npm run bench:raft -- [--entries N] [--batch N] [--payload BYTES] [--window BATCHES] [--propose-each] [--json]
 *   (default: each batch is one RawNode.proposeMany() call; --propose-each calls propose() per entry)
 *   node --cpu-prof dist/bench/raft-bench.js      (profile)
 */
import v8 from 'node:v8';
import { StateRole } from '../src/raft/contract.js';
import { MemoryStorage } from '../src/raft/memory-storage.js';
import { SeededRng } from '../src/raft/prng.js';
import { RawNode } from '../src/raft/raw-node.js';
import type { ConfState, Entry, Message, NodeId } from '../src/raft/types.js';
import { EntryType, NONE } from '../src/raft/types.js';

interface Options {
  entries: number;
  batch: number;
  payloadBytes: number;
  /** Batches proposed but not yet committed, at most. */
  windowBatches: number;
  proposeMany: boolean;
  json: boolean;
}

/** Keep this many entries in storage behind the applied index, compacting every COMPACT_EVERY entries. */
const COMPACT_KEEP = 1_000;
const COMPACT_EVERY = 16_384;
const BOOTSTRAP_INDEX = 2;

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { entries: 1_000_000, batch: 256, payloadBytes: 128, windowBatches: 8, proposeMany: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--entries') o.entries = num();
    else if (a === '--batch') o.batch = num();
    else if (a === '--payload') o.payloadBytes = num();
    else if (a === '--window') o.windowBatches = num();
    else if (a === '--propose-each') o.proposeMany = false;
    else if (a === '--json') o.json = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

class BenchNode {
  readonly storage = new MemoryStorage();
  readonly raw: RawNode;
  inbox: Message[] = [];
  applied = BOOTSTRAP_INDEX;
  #lastCompact = BOOTSTRAP_INDEX;

  constructor(
    readonly id: NodeId,
    cs: ConfState,
  ) {
    this.storage.applySnapshot({ data: new Uint8Array(0), metadata: { confState: cs, index: BOOTSTRAP_INDEX, term: 1 } });
    this.storage.setHardState({ term: 1, vote: NONE, commit: BOOTSTRAP_INDEX });
    this.raw = new RawNode({
      id,
      storage: this.storage,
      rng: new SeededRng(Number(id)),
      electionTicks: 10,
      heartbeatTicks: 1,
      appliedIndex: BOOTSTRAP_INDEX,
      maxSizePerMsgBytes: 1 << 20,
      maxInflightMsgs: 256,
      maxInflightBytes: 64 << 20,
      maxUncommittedEntriesBytes: 0,
      preVote: true,
      checkQuorum: true,
      readOnlyOption: 'safe',
      disableProposalForwarding: false,
    });
  }

  /** One turn of the host loop; returns the normal entries with a payload this node applied. */
  handleReady(nodes: readonly BenchNode[]): number {
    if (!this.raw.hasReady()) return 0;
    const rd = this.raw.ready();
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
    const msgs = rd.messages;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i] as Message;
      nodes[Number(m.to) - 1]?.inbox.push(m);
    }
    let applied = 0;
    const ce = rd.committedEntries;
    for (let i = 0; i < ce.length; i++) {
      const e = ce[i] as Entry;
      if (e.type === EntryType.Normal && e.data.length > 0) applied++;
    }
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last !== undefined) this.applied = last.index;
    this.raw.advance();
    this.#maybeCompact();
    return applied;
  }

  deliver(): void {
    const msgs = this.inbox;
    this.inbox = [];
    for (let i = 0; i < msgs.length; i++) this.raw.step(msgs[i] as Message);
  }

  #maybeCompact(): void {
    if (this.applied - this.#lastCompact < COMPACT_EVERY) return;
    this.storage.createSnapshot(this.applied, { confState: null, data: new Uint8Array(0) });
    this.storage.compact(this.applied - COMPACT_KEEP);
    this.#lastCompact = this.applied;
  }
}

interface RunResult {
  committed: number;
  seconds: number;
  /** CPU time of the process during the run: on a shared machine, wall time includes waiting for a core. */
  cpuSeconds: number;
  turns: number;
  allocatedBytes: number;
  gcs: number;
  gcMs: number;
}

/** Node i + 1 sits at index i: the bench's network is an array lookup. */
function newCluster(): { nodes: BenchNode[]; leader: BenchNode } {
  const voters: NodeId[] = [1n, 2n, 3n];
  const cs: ConfState = { voters, learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const nodes = voters.map((id) => new BenchNode(id, cs));
  const leader = nodes[0] as BenchNode;
  leader.raw.campaign();
  for (let i = 0; i < 100 && leader.raw.status().softState.role !== StateRole.Leader; i++) turn(nodes);
  if (leader.raw.status().softState.role !== StateRole.Leader) throw new Error('bench: no leader elected');
  for (let i = 0; i < 10; i++) turn(nodes);
  return { nodes, leader };
}

/** Every node handles its Ready, then every node steps what it received. Returns entries the leader applied. */
function turn(nodes: readonly BenchNode[], leader?: BenchNode): number {
  let committed = 0;
  for (const n of nodes) {
    const c = n.handleReady(nodes);
    if (n === leader) committed += c;
  }
  for (const n of nodes) n.deliver();
  return committed;
}

function run(o: Options, entries: number): RunResult {
  const { nodes, leader } = newCluster();
  const payload = new Uint8Array(o.payloadBytes).fill(0x61);
  const batchPayloads: Uint8Array[] = new Array<Uint8Array>(o.batch).fill(payload);
  const window = o.windowBatches * o.batch;
  globalThis.gc?.();
  const profiler = new v8.GCProfiler();
  const usedStart = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let proposed = 0;
  let committed = 0;
  let turns = 0;
  while (committed < entries) {
    while (proposed < entries && proposed - committed < window) {
      if (o.proposeMany) leader.raw.proposeMany(batchPayloads);
      else for (let i = 0; i < o.batch; i++) leader.raw.propose(payload);
      proposed += o.batch;
    }
    committed += turn(nodes, leader);
    turns++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const usedEnd = v8.getHeapStatistics().used_heap_size;
  const gc = profiler.stop();
  let freed = 0;
  let gcMs = 0;
  for (const s of gc.statistics) {
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    gcMs += s.cost / 1000;
  }
  return { committed, seconds, cpuSeconds, turns, allocatedBytes: usedEnd - usedStart + freed, gcs: gc.statistics.length, gcMs };
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  // Warm the JIT on a smaller run first so the measured run sees optimized code.
  run(o, Math.min(o.entries, 100_000));
  const r = run(o, o.entries);
  const perSec = r.committed / r.seconds;
  const summary = {
    entries: r.committed,
    payloadBytes: o.payloadBytes,
    batch: o.batch,
    proposeMany: o.proposeMany,
    seconds: Number(r.seconds.toFixed(3)),
    entriesPerSec: Math.round(perSec),
    cpuSeconds: Number(r.cpuSeconds.toFixed(3)),
    entriesPerCpuSec: Math.round(r.committed / r.cpuSeconds),
    allocatedBytesPerEntry: Math.round(r.allocatedBytes / r.committed),
    turns: r.turns,
    gcs: r.gcs,
    gcMs: Math.round(r.gcMs),
    exposeGc: typeof globalThis.gc === 'function',
  };
  if (o.json) {
    console.log(JSON.stringify(summary));
    return;
  }
  console.log(`raft bench: 3 nodes in one process, ${o.payloadBytes}-byte entries, batches of ${o.batch}` +
    `${o.proposeMany ? ' (proposeMany)' : ' (propose per entry)'}`);
  console.log(`  committed ${r.committed} entries in ${r.seconds.toFixed(2)} s: ${Math.round(perSec).toLocaleString('en-US')} entries/s`);
  console.log(`  process CPU ${r.cpuSeconds.toFixed(2)} s: ${summary.entriesPerCpuSec.toLocaleString('en-US')} entries per CPU second` +
    ' (wall time also counts waiting for a core on a busy machine)');
  console.log(`  heap allocated: ${summary.allocatedBytesPerEntry} bytes/entry (v8.GCProfiler; ${r.gcs} GCs, ${summary.gcMs} ms in GC)`);
  console.log(`  target 500,000 entries/s: ${perSec >= 500_000 ? 'met' : 'NOT met'}`);
}

main();
