// The part of the load generator that runs inside one thread: open this thread's share of the
// connections, then let each of its clients issue requests back to back until the shared request counter
// reaches the total. The counter lives in shared memory so that clients on several threads draw from one
// sequence, as etcd's benchmark clients draw from one channel.

import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  AuthClient,
  Compare_CompareResult,
  Compare_CompareTarget,
  KVClient,
  type PutRequest,
  type RangeRequest,
  type TxnRequest,
} from '../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { assert } from '../src/base/assert.js';
import { Histogram, type HistogramSnapshot } from './histogram.js';
import { encodeKey, type LoadConfig } from './load-config.js';

/** Which connections (by global number) this thread opens, and which connection each of its clients uses. */
export interface ThreadShare {
  connIds: number[];
  /** For each client on this thread, an index into connIds. */
  clientConn: number[];
}

export interface PhaseResult {
  histogram: HistogramSnapshot;
  /** Failed requests by gRPC status code name (or a reason of ours). */
  errors: Record<string, number>;
  /** Wall-clock bounds of the phase on this thread, ms since the epoch (comparable across threads). */
  startMs: number;
  endMs: number;
  /** Share of the phase this thread's event loop was busy (0..1): near 1, the thread limits the load. */
  busy: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const ZERO = 0n;
/** A bound no real revision reaches: the compare always holds, but the server must look the key up. */
const REVISION_CEILING = 1n << 62n;

export function nowEpochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Each connection must be its own HTTP/2 session: grpc-js shares subchannels between equal clients. */
export function openConns(endpoint: string, count: number): KVClient[] {
  const out: KVClient[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      new KVClient(endpoint, credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        // Wide ranges (1M keys) answer with hundreds of MB; etcd itself sends without limit.
        'grpc.max_receive_message_length': -1,
        'grpc.primary_user_agent': `etcd-ts-bench/conn-${i}`,
        // Neither is part of the request path being measured; both add per-call bookkeeping.
        'grpc.enable_channelz': 0,
        'grpc.enable_retries': 0,
      }),
    );
  }
  return out;
}

export async function waitConnected(conns: readonly KVClient[]): Promise<void> {
  const deadline = Date.now() + CONNECT_TIMEOUT_MS;
  await Promise.all(
    conns.map(
      (c) => new Promise<void>((resolve, reject) => c.waitForReady(deadline, (err) => (err ? reject(err) : resolve()))),
    ),
  );
}

type Issue = (client: KVClient, n: number) => Promise<string | null>;

/** "name:password" split at the first colon, as etcdctl --user does. */
function splitUser(user: string): { name: string; password: string } {
  const at = user.indexOf(':');
  return { name: user.slice(0, at), password: user.slice(at + 1) };
}

/** One Auth client per connection (sharing its channel), kept across phases. */
const authClients = new WeakMap<KVClient, AuthClient>();
function authClientOf(client: KVClient): AuthClient {
  let a = authClients.get(client);
  if (!a) {
    a = new AuthClient('unused:0', credentials.createInsecure(), { channelOverride: client.getChannel() });
    authClients.set(client, a);
  }
  return a;
}

/** One token per connection, fetched by its first request (in the warm-up) and kept across phases. */
const tokens = new WeakMap<KVClient, Promise<Metadata>>();
function metadataFor(cfg: LoadConfig, client: KVClient): Promise<Metadata> {
  let md = tokens.get(client);
  if (!md) {
    const { name, password } = splitUser(cfg.user);
    md = new Promise<Metadata>((resolve, reject) => {
      authClientOf(client).authenticate({ name, password }, (err, res) => {
        if (err) return reject(err);
        const m = new Metadata();
        m.set('token', res.token);
        return resolve(m);
      });
    });
    tokens.set(client, md);
  }
  return md;
}

function authenticateIssuer(cfg: LoadConfig): Issue {
  const { name, password } = splitUser(cfg.user);
  return (client) => new Promise((resolve) => authClientOf(client).authenticate({ name, password }, (err) => resolve(err ? codeName(err) : null)));
}

function keyFor(cfg: LoadConfig, n: number): number {
  return cfg.sequentialKeys ? n % cfg.keySpaceSize : Math.floor(Math.random() * cfg.keySpaceSize);
}

function codeName(err: ServiceError): string {
  return `grpc-${err.code}${err.details ? `: ${err.details.slice(0, 80)}` : ''}`;
}

function putIssuer(cfg: LoadConfig, value: Buffer): Issue {
  return (client, n) => {
    const req: PutRequest = {
      key: encodeKey(keyFor(cfg, n), cfg.keySize),
      value,
      lease: ZERO,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    };
    if (cfg.user === '') return new Promise((resolve) => client.put(req, (err) => resolve(err ? codeName(err) : null)));
    return metadataFor(cfg, client).then(
      (md) => new Promise((resolve) => client.put(req, md, (err) => resolve(err ? codeName(err) : null))),
      (err: ServiceError) => codeName(err),
    );
  };
}

function rangeIssuer(cfg: LoadConfig): Issue {
  return (client, n) => {
    const index = keyFor(cfg, n);
    const req: RangeRequest = {
      key: encodeKey(index, cfg.keySize),
      rangeEnd: cfg.rangeSpan > 1 ? encodeKey(index + cfg.rangeSpan, cfg.keySize) : Buffer.alloc(0),
      limit: ZERO,
      revision: ZERO,
      sortOrder: 0,
      sortTarget: 0,
      serializable: cfg.consistency === 's',
      keysOnly: false,
      countOnly: false,
      minModRevision: ZERO,
      maxModRevision: ZERO,
      minCreateRevision: ZERO,
      maxCreateRevision: ZERO,
    };
    return new Promise((resolve) => client.range(req, (err) => resolve(err ? codeName(err) : null)));
  };
}

function txnPutIssuer(cfg: LoadConfig, value: Buffer): Issue {
  const empty = Buffer.alloc(0);
  return (client, n) => {
    // Consecutive keys (mod the key space) so one txn never names a key twice, which etcd refuses.
    const first = cfg.sequentialKeys ? (n * cfg.opsPerTxn) % cfg.keySpaceSize : keyFor(cfg, n);
    const req: TxnRequest = { compare: [], success: [], failure: [] };
    for (let j = 0; j < cfg.opsPerTxn; j++) {
      const key = encodeKey((first + j) % cfg.keySpaceSize, cfg.keySize);
      req.compare.push({
        result: Compare_CompareResult.LESS,
        target: Compare_CompareTarget.MOD,
        key,
        targetUnion: { $case: 'modRevision', value: REVISION_CEILING },
        rangeEnd: empty,
      });
      const put: PutRequest = { key, value, lease: ZERO, prevKv: false, ignoreValue: false, ignoreLease: false };
      req.success.push({ request: { $case: 'requestPut', value: put } });
    }
    return new Promise((resolve) =>
      client.txn(req, (err, res) => resolve(err ? codeName(err) : res.succeeded ? null : 'txn-compare-failed')),
    );
  };
}

export function makeIssuer(cfg: LoadConfig): Issue {
  // One value shared by every request, as etcd's tool does: its bytes do not matter, its size does.
  const value = Buffer.alloc(cfg.valSize, 0x61);
  switch (cfg.op) {
    case 'put':
      return putIssuer(cfg, value);
    case 'range':
      return rangeIssuer(cfg);
    case 'txn-put':
      return txnPutIssuer(cfg, value);
    case 'authenticate':
      return authenticateIssuer(cfg);
  }
}

export interface PhaseSpec {
  total: number;
  /** Index into the shared counter array for this phase. */
  counterSlot: number;
  record: boolean;
}

/** Runs one phase: every client of this thread loops until the shared counter passes the total. */
export async function runPhase(
  conns: readonly KVClient[],
  opts: { cfg: LoadConfig; share: ThreadShare; counter: Int32Array; phase: PhaseSpec },
): Promise<PhaseResult> {
  const { cfg, share, counter, phase } = opts;
  const issue = makeIssuer(cfg);
  const histogram = new Histogram();
  const errors: Record<string, number> = {};
  const startMs = nowEpochMs();
  const elu = performance.eventLoopUtilization();
  let endMs = startMs;
  const loop = async (client: KVClient): Promise<void> => {
    for (;;) {
      const n = Atomics.add(counter, phase.counterSlot, 1);
      if (n >= phase.total) return;
      const t0 = performance.now();
      const failure = await issue(client, n);
      const t1 = performance.now();
      if (failure !== null) {
        errors[failure] = (errors[failure] ?? 0) + 1;
      } else if (phase.record) {
        histogram.record((t1 - t0) * 1000);
      }
      endMs = performance.timeOrigin + t1;
    }
  };
  await Promise.all(
    share.clientConn.map((ci) => {
      const client = conns[ci];
      assert(client !== undefined, `client mapped to missing connection ${ci}`);
      return loop(client);
    }),
  );
  const busy = performance.eventLoopUtilization(elu).utilization;
  return { histogram: histogram.snapshot(), errors, startMs, endMs, busy };
}

/** Connections of etcd's tool: client i uses connection i mod conns; threads take whole connections. */
export function shareFor(cfg: Pick<LoadConfig, 'conns' | 'clients'>, threads: number, thread: number): ThreadShare {
  const connIds: number[] = [];
  for (let c = thread; c < cfg.conns; c += threads) connIds.push(c);
  const clientConn: number[] = [];
  for (let i = 0; i < cfg.clients; i++) {
    const local = connIds.indexOf(i % cfg.conns);
    if (local !== -1) clientConn.push(local);
  }
  return { connIds, clientConn };
}
