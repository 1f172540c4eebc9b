/**
 * The member's Prometheus metrics, under etcd 3.4's names, labels, types, help texts and buckets.
 *
 * Cost on the hot path: a request bumps plain numbers in cells bound in advance (per gRPC method, per
 * code); prom-client only sees them when /metrics is scraped, through collect callbacks. State (indexes,
 * sizes, key counts) is read from its owner at scrape time too. Only histograms observe as events happen,
 * and those are disk syncs, batch commits and pings, not requests.
 *
 * Core modules never import this file: they declare the sink they report to (WalMetrics, BackendMetrics,
 * MvccMetrics, GrpcServerMetrics, a transport's onRtt) and bootstrap wires this implementation in.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type LabelValues } from 'prom-client';
import { etcdApiVersion } from '../base/version.js';
import type { GrpcCode } from '../base/errors.js';
import { grpcCodeNames, type GrpcMethodDescription, type GrpcMethodMetrics, type GrpcServerMetrics } from '../api/h2/grpc-metrics.js';
import type { BackendMetrics } from '../storage/backend/backend.js';
import type { WalMetrics } from '../storage/wal/wal.js';
import type { MvccMetrics, MvccOpCounts } from './apply/kv-apply.js';
import { idToHex } from './ids.js';

/** What the metrics read when scraped; each is cheap and synchronous. */
export interface MetricSources {
  readonly memberId: bigint;
  committedIndex(): number;
  appliedIndex(): number;
  proposalsPending(): number;
  proposalsFailed(): number;
  isLearner(): boolean;
  /** The cluster version once the cluster has decided it (major.minor.patch or major.minor), else null. */
  clusterVersion(): string | null;
  dbSizeBytes(): number;
  dbSizeInUseBytes(): number;
  liveKeys(): number;
  revision(): number;
  compactRevision(): number;
}

/** prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** A counter value the hot path bumps; prom-client reads it when scraped. */
export class Cell {
  value = 0;
}

type Labels<T extends string> = Partial<Record<T, string | number>>;

/** A prom-client counter whose series are cells bound once, by label set. */
class CellCounter<T extends string> {
  readonly #cells: Array<{ labels: LabelValues<T>; cell: Cell }> = [];

  constructor(registry: Registry, config: { name: string; help: string; labelNames?: readonly T[] }) {
    const cells = this.#cells;
    const counter: Counter<T> = new Counter<T>({
      name: config.name,
      help: config.help,
      labelNames: config.labelNames ?? [],
      registers: [registry],
      collect() {
        counter.reset();
        for (const { labels, cell } of cells) counter.inc(labels, cell.value);
      },
    });
  }

  bind(labels: Labels<T> = {}): Cell {
    const cell = new Cell();
    this.#cells.push({ labels: labels as LabelValues<T>, cell });
    return cell;
  }
}

/** A gauge read from its owner when scraped. */
function sourcedGauge(registry: Registry, config: { name: string; help: string }, read: () => number): void {
  const gauge: Gauge = new Gauge({
    name: config.name,
    help: config.help,
    registers: [registry],
    collect() {
      gauge.set(read());
    },
  });
}

/** Client API versions counted apart; beyond this many, requests count as "unknown" (clients choose it). */
const clientApiVersionsMax = 32;

/** go-grpc-prometheus's server counters, one set of cells per method and code; etcd's own per-request ones. */
class GrpcCounters implements GrpcServerMetrics {
  readonly #sentBytes: Cell;
  readonly #receivedBytes: Cell;
  readonly #clientRequests: CellCounter<'type' | 'client_api_version'>;
  readonly #byVersion = { unary: new Map<string, Cell>(), stream: new Map<string, Cell>() };
  readonly #started: CellCounter<'grpc_method' | 'grpc_service' | 'grpc_type'>;
  readonly #handled: CellCounter<'grpc_code' | 'grpc_method' | 'grpc_service' | 'grpc_type'>;
  readonly #received: CellCounter<'grpc_method' | 'grpc_service' | 'grpc_type'>;
  readonly #sent: CellCounter<'grpc_method' | 'grpc_service' | 'grpc_type'>;

  constructor(registry: Registry) {
    const labelNames = ['grpc_method', 'grpc_service', 'grpc_type'] as const;
    this.#started = new CellCounter(registry, { name: 'grpc_server_started_total', help: 'Total number of RPCs started on the server.', labelNames });
    this.#handled = new CellCounter(registry, {
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: ['grpc_code', ...labelNames],
    });
    this.#received = new CellCounter(registry, { name: 'grpc_server_msg_received_total', help: 'Total number of RPC stream messages received on the server.', labelNames });
    this.#sent = new CellCounter(registry, { name: 'grpc_server_msg_sent_total', help: 'Total number of gRPC stream messages sent by the server.', labelNames });
    this.#sentBytes = new CellCounter(registry, { name: 'etcd_network_client_grpc_sent_bytes_total', help: 'The total number of bytes sent to grpc clients.' }).bind();
    this.#receivedBytes = new CellCounter(registry, {
      name: 'etcd_network_client_grpc_received_bytes_total', help: 'The total number of bytes received from grpc clients.',
    }).bind();
    this.#clientRequests = new CellCounter(registry, {
      name: 'etcd_server_client_requests_total', help: 'The total number of client requests per client version.', labelNames: ['type', 'client_api_version'],
    });
  }

  /** etcd_server_client_requests_total's cell for a call: "unary" or "stream", by the version its client sent. */
  #clientRequestCell(type: 'unary' | 'stream', version: string | undefined): Cell {
    const cells = this.#byVersion[type];
    const v = version === undefined || (cells.size >= clientApiVersionsMax && !cells.has(version)) ? 'unknown' : version;
    let cell = cells.get(v);
    if (cell === undefined) {
      cell = this.#clientRequests.bind({ type, client_api_version: v });
      cells.set(v, cell);
    }
    return cell;
  }

  method(d: GrpcMethodDescription): GrpcMethodMetrics {
    const labels = { grpc_method: d.method, grpc_service: d.service, grpc_type: d.type };
    const started = this.#started.bind(labels);
    const received = this.#received.bind(labels);
    const sent = this.#sent.bind(labels);
    // Every code from the start, as go-grpc-prometheus pre-registers them: a zero is a real answer.
    const handled = grpcCodeNames.map((code) => this.#handled.bind({ grpc_code: code, ...labels }));
    const requestType = d.type === 'unary' ? 'unary' : 'stream';
    const sentBytes = this.#sentBytes;
    const receivedBytes = this.#receivedBytes;
    return {
      started: (version) => {
        started.value++;
        this.#clientRequestCell(requestType, version).value++;
      },
      received: (bytes) => {
        received.value++;
        receivedBytes.value += bytes;
      },
      sent: (count, bytes) => {
        sent.value += count;
        sentBytes.value += bytes;
      },
      handled: (code: GrpcCode) => void handled[code]!.value++,
    };
  }
}

/** etcd's mvcc/metrics_txn.go: a store txn adds its operations; one of more than one operation is a txn. */
class MvccCounters implements MvccMetrics {
  readonly #range: Cell;
  readonly #put: Cell;
  readonly #delete: Cell;
  readonly #txn: Cell;

  constructor(registry: Registry) {
    const counter = (name: string, help: string): Cell => new CellCounter(registry, { name, help }).bind();
    this.#range = counter('etcd_mvcc_range_total', 'Total number of ranges seen by this member.');
    this.#put = counter('etcd_mvcc_put_total', 'Total number of puts seen by this member.');
    this.#delete = counter('etcd_mvcc_delete_total', 'Total number of deletes seen by this member.');
    this.#txn = counter('etcd_mvcc_txn_total', 'Total number of txns seen by this member.');
  }

  txnEnded(ops: MvccOpCounts): void {
    this.#range.value += ops.ranges;
    this.#put.value += ops.puts;
    this.#delete.value += ops.deletes;
    if (ops.ranges + ops.puts + ops.deletes > 1) this.#txn.value++;
  }
}

/** Buckets of etcd's disk histograms: 1 ms to 8 s. */
const diskBuckets = exponentialBuckets(0.001, 2, 14);
/** etcd_network_peer_round_trip_time_seconds: 0.1 ms to 3.2768 s. */
const rttBuckets = exponentialBuckets(0.0001, 2, 16);

export class ServerMetrics {
  readonly registry = new Registry();
  readonly hasLeader = new Gauge({ name: 'etcd_server_has_leader', help: 'Whether or not a leader exists. 1 is existence, 0 is not.', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'etcd_server_is_leader', help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.', registers: [this.registry] });
  readonly snapshotReceived = new Counter({
    name: 'etcd_network_snapshot_receive_success', help: 'Total number of successful snapshot receives', labelNames: ['From'], registers: [this.registry],
  });
  readonly snapshotSent = new Counter({
    name: 'etcd_network_snapshot_send_success', help: 'Total number of successful snapshot sends', labelNames: ['To'], registers: [this.registry],
  });
  readonly grpc: GrpcServerMetrics;
  readonly mvcc: MvccMetrics;
  readonly wal: WalMetrics;
  readonly backend: BackendMetrics;
  readonly #healthSuccess: Cell;
  readonly #slowApplies: Cell;
  readonly #heartbeatSendFailures: Cell;
  readonly #healthFailures: Cell;
  readonly #rtt: Histogram<'To'>;
  readonly #rttByPeer = new Map<bigint, { observe(seconds: number): void }>();
  #sources: MetricSources | null = null;

  constructor() {
    const registry = this.registry;
    new Gauge({ name: 'etcd_server_version', help: 'Which version is running. 1 for \'server_version\' label with current version.', labelNames: ['server_version'], registers: [registry] })
      .set({ server_version: etcdApiVersion }, 1);
    this.grpc = new GrpcCounters(registry);
    this.mvcc = new MvccCounters(registry);
    const walFsync = new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds', help: 'The latency distributions of fsync called by WAL.', buckets: diskBuckets, registers: [registry],
    });
    this.wal = { fsyncSeconds: (s) => walFsync.observe(s) };
    const commit = new Histogram({
      name: 'etcd_disk_backend_commit_duration_seconds', help: 'The latency distributions of commit called by backend.', buckets: diskBuckets, registers: [registry],
    });
    this.backend = { commitSeconds: (s) => commit.observe(s) };
    this.#rtt = new Histogram({
      name: 'etcd_network_peer_round_trip_time_seconds', help: 'Round-Trip-Time histogram between peers', buckets: rttBuckets, labelNames: ['To'], registers: [registry],
    });
    this.#healthSuccess = new CellCounter(registry, { name: 'etcd_server_health_success', help: 'The total number of successful health checks' }).bind();
    this.#healthFailures = new CellCounter(registry, { name: 'etcd_server_health_failures', help: 'The total number of failed health checks' }).bind();
    this.#slowApplies = new CellCounter(registry, {
      name: 'etcd_server_slow_apply_total', help: 'The total number of slow apply requests (likely overloaded from slow disk).',
    }).bind();
    this.#heartbeatSendFailures = new CellCounter(registry, {
      name: 'etcd_server_heartbeat_send_failures_total',
      help: 'The total number of leader heartbeat send failures (likely overloaded from slow disk).',
    }).bind();
    this.#registerSourced(registry);
    collectDefaultMetrics({ register: registry });
  }

  /** Connects the scrape-time readings to the running member (before that they read as zero). */
  attach(sources: MetricSources): void {
    this.#sources = sources;
  }

  /** A PING to a peer was answered after rttMs. */
  observeRtt(peer: bigint, rttMs: number): void {
    let child = this.#rttByPeer.get(peer);
    if (child === undefined) {
      child = this.#rtt.labels({ To: idToHex(peer) });
      this.#rttByPeer.set(peer, child);
    }
    child.observe(rttMs / 1000);
  }

  /** An apply took longer than --experimental-warning-apply-duration. */
  slowApply(): void {
    this.#slowApplies.value++;
  }

  /** The leader sent a heartbeat later than two heartbeat intervals after the previous one. */
  heartbeatSendFailure(): void {
    this.#heartbeatSendFailures.value++;
  }

  /** A /health answer (etcd counts them). */
  healthChecked(healthy: boolean): void {
    (healthy ? this.#healthSuccess : this.#healthFailures).value++;
  }

  #registerSourced(registry: Registry): void {
    const read = (fn: (s: MetricSources) => number) => (): number => (this.#sources === null ? 0 : fn(this.#sources));
    const gauge = (name: string, help: string, fn: (s: MetricSources) => number): void => sourcedGauge(registry, { name, help }, read(fn));
    gauge('etcd_server_proposals_committed_total', 'The total number of consensus proposals committed.', (s) => s.committedIndex());
    gauge('etcd_server_proposals_applied_total', 'The total number of consensus proposals applied.', (s) => s.appliedIndex());
    gauge('etcd_server_proposals_pending', 'The current number of pending proposals to commit.', (s) => s.proposalsPending());
    gauge('etcd_server_is_learner', 'Whether or not this member is a learner. 1 if is, 0 otherwise.', (s) => (s.isLearner() ? 1 : 0));
    gauge('etcd_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', (s) => s.dbSizeBytes());
    gauge('etcd_debugging_mvcc_db_total_size_in_bytes', 'Total size of the underlying database physically allocated in bytes.', (s) => s.dbSizeBytes());
    gauge('etcd_mvcc_db_total_size_in_use_in_bytes', 'Total size of the underlying database logically in use in bytes.', (s) => s.dbSizeInUseBytes());
    gauge('etcd_debugging_mvcc_keys_total', 'Total number of keys.', (s) => s.liveKeys());
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', (s) => s.revision());
    gauge('etcd_debugging_mvcc_compact_revision', 'The revision of the last compaction in store.', (s) => s.compactRevision());
    const failed: Counter = new Counter({
      name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.', registers: [registry],
      collect: () => {
        failed.reset();
        failed.inc(read((s) => s.proposalsFailed())());
      },
    });
    this.#registerLabelledSourced(registry);
  }

  /** Gauges whose one series names a value in its label, 1 for the current one. */
  #registerLabelledSourced(registry: Registry): void {
    const id: Gauge<'server_id'> = new Gauge({
      name: 'etcd_server_id', help: 'Server or member ID in hexadecimal format. 1 for \'server_id\' label with current ID.', labelNames: ['server_id'], registers: [registry],
      collect: () => {
        id.reset();
        if (this.#sources !== null) id.set({ server_id: idToHex(this.#sources.memberId) }, 1);
      },
    });
    // As etcd: once the cluster version is known, its series is 1; an older version's series stays at 0.
    let current: string | null = null;
    const cluster: Gauge<'cluster_version'> = new Gauge({
      name: 'etcd_cluster_version', help: 'Which version is running. 1 for \'cluster_version\' label with current cluster version', labelNames: ['cluster_version'], registers: [registry],
      collect: () => {
        const v = this.#sources?.clusterVersion() ?? null;
        if (v === null) return;
        const short = v.split('.').slice(0, 2).join('.');
        if (current !== null && current !== short) cluster.set({ cluster_version: current }, 0);
        current = short;
        cluster.set({ cluster_version: short }, 1);
      },
    });
  }
}
