/**
 * Scripted interaction tests (after etcd-io/raft's rafttest): a tiny command language drives a cluster
 * of RawNodes step by step and prints what happens (Readies, messages, log lines), so behaviour is
 * reviewed by reading a golden file rather than by decoding assertions.
 *
 * File format: a command line, a line "----", then the output lines up to a blank line. Lines starting
 * with '#' and blank lines between blocks are comments.
 */
import type { ReadState, Ready } from '../contract.js';
import { StateRole } from '../contract.js';
import { decodeConfChangeV1, decodeConfChangeV2, confChangeV1ToV2, parseConfChanges } from '../conf-change.js';
import { describeEntry, describeHardState, describeMessage, describeMessageType, describeReady, describeRole } from '../describe.js';
import type { Logger } from '../logger.js';
import { TestStorage } from './cluster.js';
import { SeededRng } from '../prng.js';
import type { RawNodeConfig } from '../raw-node.js';
import { RawNode } from '../raw-node.js';
import type { ConfChangeTransition, ConfState, Entry, Message, NodeId, Snapshot } from '../types.js';
import { ConfChangeTransition as CT, EntryType } from '../types.js';

export interface Command {
  readonly name: string;
  /** Positional arguments. */
  readonly args: string[];
  /** key=value arguments; values of the form (a,b) are lists. */
  readonly kv: Map<string, string>;
}

export function parseCommand(line: string): Command {
  const toks = line.trim().match(/\S+=\([^)]*\)|\S+/g) ?? [];
  const [name, ...rest] = toks;
  const args: string[] = [];
  const kv = new Map<string, string>();
  for (const t of rest) {
    const eq = t.indexOf('=');
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else args.push(t);
  }
  return { name: name ?? '', args, kv };
}

export function parseIdList(v: string | undefined): NodeId[] {
  if (v === undefined) return [];
  const inner = v.replace(/^\(/, '').replace(/\)$/, '').trim();
  return inner === '' ? [] : inner.split(/[,\s]+/).map((x) => BigInt(x));
}

interface AppliedState {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
  readonly data: string;
}

interface EnvNode {
  readonly id: NodeId;
  node: RawNode;
  readonly storage: TestStorage;
  config: RawNodeConfig;
  /** The state machine after each applied index: an "appender" of payloads. */
  readonly history: AppliedState[];
}

const dec = new TextDecoder();
const enc = new TextEncoder();

export class InteractionEnv {
  readonly nodes: EnvNode[] = [];
  messages: Message[] = [];
  #out: string[] = [];
  #indent = '';
  #logLevel: 'info' | 'none' = 'info';
  readonly #logger: Logger = {
    info: (msg) => this.#log('INFO', msg),
    warn: (msg) => this.#log('WARN', msg),
  };

  #log(level: string, msg: string): void {
    if (this.#logLevel === 'none') return;
    this.#print(`${level} ${msg}`);
  }

  #print(s: string): void {
    for (const line of s.split('\n')) if (line.trim() !== '') this.#out.push(this.#indent + line);
  }

  #withIndent(fn: () => void): void {
    const saved = this.#indent;
    this.#indent += '  ';
    try {
      fn();
    } finally {
      this.#indent = saved;
    }
  }

  /** Runs one command; returns its output (never empty: "ok" when nothing was printed). */
  run(line: string): string {
    this.#out = [];
    this.#indent = '';
    const cmd = parseCommand(line);
    const handler = this.#handlers[cmd.name];
    if (handler === undefined) throw new Error(`unknown command: ${cmd.name}`);
    try {
      handler(cmd);
    } catch (err) {
      this.#print(`error: ${(err as Error).message}`);
    }
    return this.#out.length === 0 ? 'ok' : this.#out.join('\n');
  }

  readonly #handlers: Record<string, (c: Command) => void> = {
    'add-nodes': (c) => this.#addNodes(c),
    campaign: (c) => this.#node(c.args[0]).node.campaign(),
    propose: (c) => this.#node(c.args[0]).node.propose(enc.encode(c.args[1] ?? '')),
    'propose-conf-change': (c) => this.#proposeConfChange(c),
    'process-ready': (c) => this.#ids(c).forEach((id) => this.#processReadyWithHeader(id, c.args.length > 1)),
    'deliver-msgs': (c) => this.#ids(c).forEach((id) => this.#deliverWithHeader(id, c, c.args.length > 1)),
    'drop-msgs': (c) => this.#dropMsgs(c),
    stabilize: (c) => this.#stabilize(c.args.length === 0 ? this.nodes.map((n) => n.id) : this.#ids(c)),
    // A leader ticks one election timeout (check-quorum, transfer timeout); others tick until their
    // randomized election timeout fires.
    'tick-election': (c) =>
      this.#tickN(c, (n) => {
        const r = n.node.raft;
        if (r.state === StateRole.Leader) return n.config.electionTicks;
        return Math.max(1, r.randomizedElectionTimeout - r.electionElapsed);
      }),
    'tick-heartbeat': (c) => this.#tickN(c, (n) => n.config.heartbeatTicks),
    tick: (c) => this.#tickN(c, () => Number(c.kv.get('n') ?? '1')),
    status: (c) => this.#status(this.#node(c.args[0])),
    'raft-state': () => this.#raftState(),
    'raft-log': (c) => this.#raftLog(this.#node(c.args[0])),
    'read-index': (c) => this.#node(c.args[0]).node.readIndex(enc.encode(c.args[1] ?? '')),
    'transfer-leadership': (c) => this.#node(c.kv.get('from')).node.transferLeader(BigInt(c.kv.get('to') ?? '0')),
    'report-unreachable': (c) => this.#node(c.args[0]).node.reportUnreachable(BigInt(c.args[1] ?? '0')),
    'report-snapshot': (c) => this.#node(c.args[0]).node.reportSnapshot(BigInt(c.args[1] ?? '0'), c.args[2] === 'failure' ? 'failure' : 'finish'),
    compact: (c) => this.#compact(this.#node(c.args[0]), Number(c.args[1])),
    restart: (c) => this.#restart(this.#node(c.args[0])),
    'set-randomized-election-timeout': (c) => {
      this.#node(c.args[0]).node.raft.randomizedElectionTimeout = Number(c.kv.get('timeout'));
    },
    'log-level': (c) => {
      this.#logLevel = c.args[0] === 'none' ? 'none' : 'info';
    },
    applied: (c) => this.#applied(this.#node(c.args[0])),
  };

  #node(arg: string | undefined): EnvNode {
    const n = this.nodes[Number(arg ?? '0') - 1];
    if (n === undefined) throw new Error(`no node ${arg}`);
    return n;
  }

  #ids(c: Command): NodeId[] {
    return c.args.map((a) => this.#node(a).id);
  }

  #addNodes(c: Command): void {
    const n = Number(c.args[0] ?? '1');
    const voters = parseIdList(c.kv.get('voters'));
    const learners = parseIdList(c.kv.get('learners'));
    const index = Number(c.kv.get('index') ?? '0');
    for (let i = 0; i < n; i++) {
      const id = BigInt(this.nodes.length + 1);
      const cs: ConfState = { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
      const storage = new TestStorage(index === 0 ? { confState: cs } : {});
      if (index > 0) storage.applySnapshot({ data: new Uint8Array(), metadata: { confState: cs, index, term: 1 } });
      const config = this.#config(id, storage, c, 0);
      const history: AppliedState[] = [{ index, term: index > 0 ? 1 : 0, confState: cs, data: '' }];
      // A follower that needs a snapshot gets one of the state as applied now (with its configuration).
      storage.onSnapshot = () => {
        const last = history[history.length - 1] as AppliedState;
        if (last.index > storage.storedSnapshot().metadata.index) {
          storage.createSnapshot(last.index, { confState: last.confState, data: enc.encode(last.data) });
        }
      };
      this.nodes.push({ id, node: new RawNode(config), storage, config, history });
    }
  }

  #config(id: NodeId, storage: TestStorage, c: Command, appliedIndex: number): RawNodeConfig {
    const num = (k: string, d: number): number => Number(c.kv.get(k) ?? d);
    return {
      id,
      storage,
      rng: new SeededRng(Number(id)),
      electionTicks: num('election-ticks', 10),
      heartbeatTicks: num('heartbeat-ticks', 1),
      appliedIndex,
      maxSizePerMsgBytes: num('max-size-per-msg', 1 << 20),
      maxInflightMsgs: num('max-inflight', 256),
      maxInflightBytes: num('max-inflight-bytes', 0),
      maxUncommittedEntriesBytes: num('max-uncommitted-size', 0),
      preVote: c.kv.get('prevote') === 'true',
      checkQuorum: c.kv.get('checkquorum') === 'true',
      readOnlyOption: c.kv.get('read-only') === 'lease-based' ? 'lease-based' : 'safe',
      disableProposalForwarding: c.kv.get('disable-proposal-forwarding') === 'true',
      logger: this.#logger,
    };
  }

  #proposeConfChange(c: Command): void {
    const tr = c.kv.get('transition');
    const transition: ConfChangeTransition =
      tr === 'implicit' ? CT.JointImplicit : tr === 'explicit' ? CT.JointExplicit : CT.Auto;
    const changes = parseConfChanges(c.args.slice(1).join(' '));
    this.#node(c.args[0]).node.proposeConfChange({ transition, changes, context: new Uint8Array() });
  }

  #processReadyWithHeader(id: NodeId, header: boolean): void {
    if (!header) {
      this.#processReady(id);
      return;
    }
    this.#print(`> ${id} handling Ready`);
    this.#withIndent(() => this.#processReady(id));
  }

  /** Persist, queue messages, apply, advance: the host contract. */
  #processReady(id: NodeId): void {
    const n = this.#node(String(id));
    const rd = n.node.ready();
    this.#print(describeReady(rd));
    this.#persist(n, rd);
    for (const m of rd.messages) this.messages.push(m);
    for (const e of rd.committedEntries) this.#apply(n, e);
    n.node.advance();
  }

  #persist(n: EnvNode, rd: Ready): void {
    if (rd.snapshot !== null) {
      n.storage.applySnapshot(rd.snapshot);
      const m = rd.snapshot.metadata;
      n.history.push({ index: m.index, term: m.term, confState: m.confState, data: dec.decode(rd.snapshot.data) });
    }
    n.storage.append(rd.entries);
    if (rd.hardState !== null) n.storage.setHardState(rd.hardState);
  }

  #apply(n: EnvNode, e: Entry): void {
    const last = n.history[n.history.length - 1] as AppliedState;
    let confState = last.confState;
    let data = last.data;
    if (e.type === EntryType.Normal) {
      data += dec.decode(e.data);
    } else {
      const cc = e.type === EntryType.ConfChangeV2 ? decodeConfChangeV2(e.data) : confChangeV1ToV2(decodeConfChangeV1(e.data));
      confState = n.node.applyConfChange(cc);
    }
    n.history.push({ index: e.index, term: e.term, confState, data });
  }

  #deliverWithHeader(id: NodeId, c: Command, header: boolean): void {
    if (!header) {
      this.#deliver(id, c.kv.get('type'));
      return;
    }
    this.#print(`> ${id} receiving messages`);
    this.#withIndent(() => this.#deliver(id, c.kv.get('type')));
  }

  #takeMsgs(id: NodeId, type: string | undefined): Message[] {
    const take: Message[] = [];
    const keep: Message[] = [];
    for (const m of this.messages) {
      const match = m.to === id && (type === undefined || describeMessageType(m.type) === type);
      (match ? take : keep).push(m);
    }
    this.messages = keep;
    return take;
  }

  #deliver(id: NodeId, type?: string): void {
    const n = this.#node(String(id));
    for (const m of this.#takeMsgs(id, type)) {
      this.#print(describeMessage(m));
      try {
        n.node.step(m);
      } catch (err) {
        this.#print(`error: ${(err as Error).message}`);
      }
    }
  }

  #dropMsgs(c: Command): void {
    for (const id of this.#ids(c)) {
      for (const m of this.#takeMsgs(id, c.kv.get('type'))) this.#print(`dropped: ${describeMessage(m)}`);
    }
  }

  #stabilize(ids: NodeId[]): void {
    for (let round = 0; round < 1000; round++) {
      let done = true;
      for (const id of ids) {
        if (!this.#node(String(id)).node.hasReady()) continue;
        done = false;
        this.#print(`> ${id} handling Ready`);
        this.#withIndent(() => this.#processReady(id));
      }
      for (const id of ids) {
        if (!this.messages.some((m) => m.to === id)) continue;
        done = false;
        this.#print(`> ${id} receiving messages`);
        this.#withIndent(() => this.#deliver(id));
      }
      if (done) return;
    }
    throw new Error('stabilize: no fixpoint after 1000 rounds');
  }

  #tickN(c: Command, count: (n: EnvNode) => number): void {
    for (const id of this.#ids(c)) {
      const n = this.#node(String(id));
      const k = count(n);
      for (let i = 0; i < k; i++) n.node.tick();
    }
  }

  #status(n: EnvNode): void {
    const st = n.node.status();
    if (st.progress === null) {
      this.#print(`${n.id}: ${describeRole(st.softState.role)} (not leader) ${describeHardState(st.hardState)} Lead:${st.softState.lead}`);
      return;
    }
    for (const [id, pr] of st.progress) {
      const p = n.node.raft.trk.get(id);
      this.#print(`${id}: ${p === undefined ? pr.state : p.toString()}`);
    }
  }

  #raftState(): void {
    for (const n of this.nodes) {
      const r = n.node.raft;
      const role = r.trk.config.voters.has(n.id) ? 'Voter' : r.isLearner ? 'Learner' : 'Non-Voter';
      this.#print(`${n.id}: ${describeRole(r.state)} (${role}) Term:${r.term} Lead:${r.lead}`);
    }
  }

  #raftLog(n: EnvNode): void {
    const s = n.storage;
    if (s.lastIndex() < s.firstIndex()) {
      this.#print(`log is empty: first index=${s.firstIndex()}, last index=${s.lastIndex()}`);
      return;
    }
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) this.#print(describeEntry(e));
  }

  #compact(n: EnvNode, index: number): void {
    const st = n.history.find((h) => h.index === index);
    if (st === undefined) throw new Error(`node ${n.id} has not applied index ${index}`);
    if (index > n.storage.storedSnapshot().metadata.index) {
      n.storage.createSnapshot(index, { confState: st.confState, data: enc.encode(st.data) });
    }
    n.storage.compact(index);
    this.#raftLog(n);
  }

  /** Crash and restart: whatever was not persisted (unstable entries, messages in the node) is lost. */
  #restart(n: EnvNode): void {
    const applied = Math.max(n.storage.storedSnapshot().metadata.index, (n.history[n.history.length - 1] as AppliedState).index);
    n.config = { ...n.config, appliedIndex: applied };
    n.node = new RawNode(n.config);
  }

  #applied(n: EnvNode): void {
    const last = n.history[n.history.length - 1] as AppliedState;
    this.#print(`applied index ${last.index}: ${JSON.stringify(last.data)}`);
  }

  readStates(id: NodeId): readonly ReadState[] {
    return this.#node(String(id)).node.raft.readStates;
  }

  leader(): NodeId | null {
    const l = this.nodes.find((n) => n.node.raft.state === StateRole.Leader);
    return l === undefined ? null : l.id;
  }

  snapshotOf(id: NodeId): Snapshot {
    return this.#node(String(id)).storage.storedSnapshot();
  }
}

/** A parsed golden file: blocks of comments, a command and its expected output. */
export interface Block {
  readonly comments: string[];
  readonly command: string;
  readonly expected: string;
  readonly line: number;
}

export function parseScript(text: string): { blocks: Block[]; trailing: string[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] as string;
    if (line.trim() === '' || line.startsWith('#')) {
      comments.push(line);
      i++;
      continue;
    }
    const command = line;
    const start = i + 1;
    if (lines[i + 1] !== '----') throw new Error(`line ${i + 2}: expected ---- after command "${command}"`);
    i += 2;
    const out: string[] = [];
    while (i < lines.length && (lines[i] as string) !== '') out.push(lines[i++] as string);
    blocks.push({ comments, command, expected: out.join('\n'), line: start });
    comments = [];
  }
  return { blocks, trailing: comments };
}

export function renderScript(blocks: readonly { comments: string[]; command: string; expected: string }[], trailing: string[]): string {
  const parts: string[] = [];
  for (const b of blocks) {
    parts.push(...b.comments, b.command, '----', b.expected);
  }
  let s = parts.join('\n');
  // Blocks are separated by at least one blank line, which parseScript keeps as a comment line.
  const t = trailing.filter((l, idx) => !(l === '' && idx === trailing.length - 1));
  if (t.length > 0) s += '\n' + t.join('\n');
  return s + '\n';
}
