import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GrpcCode } from '../base/errors.js';
import { exponentialBuckets, ServerMetrics, type MetricSources } from './metrics.js';
import { parseMetrics, rawValue, sample, valueOf, type Family } from './metrics-test-support.js';

function sources(over: Partial<MetricSources> = {}): MetricSources {
  return {
    memberId: 0x8e9e05c52164694dn,
    committedIndex: () => 12,
    appliedIndex: () => 11,
    proposalsPending: () => 2,
    proposalsFailed: () => 3,
    isLearner: () => false,
    clusterVersion: () => '3.4.0',
    dbSizeBytes: () => 20480,
    dbSizeInUseBytes: () => 16384,
    liveKeys: () => 7,
    revision: () => 9,
    compactRevision: () => -1,
    ...over,
  };
}

async function scrape(m: ServerMetrics): Promise<Map<string, Family>> {
  return parseMetrics(await m.registry.metrics());
}

test('every metric has etcd\'s name and type', async () => {
  const m = new ServerMetrics();
  m.attach(sources());
  m.grpc.method({ service: 'etcdserverpb.KV', method: 'Put', type: 'unary' });
  m.observeRtt(2n, 1);
  const f = await scrape(m);
  const expected: Record<string, string> = {
    etcd_server_has_leader: 'GAUGE', etcd_server_is_leader: 'GAUGE', etcd_server_leader_changes_seen_total: 'COUNTER',
    etcd_server_proposals_committed_total: 'GAUGE', etcd_server_proposals_applied_total: 'GAUGE',
    etcd_server_proposals_pending: 'GAUGE', etcd_server_proposals_failed_total: 'COUNTER',
    etcd_server_version: 'GAUGE', etcd_cluster_version: 'GAUGE', etcd_server_id: 'GAUGE', etcd_server_is_learner: 'GAUGE',
    etcd_server_health_success: 'COUNTER', etcd_server_heartbeat_send_failures_total: 'COUNTER', etcd_server_slow_apply_total: 'COUNTER', etcd_server_health_failures: 'COUNTER',
    etcd_mvcc_db_total_size_in_bytes: 'GAUGE', etcd_mvcc_db_total_size_in_use_in_bytes: 'GAUGE',
    etcd_mvcc_put_total: 'COUNTER', etcd_mvcc_delete_total: 'COUNTER', etcd_mvcc_range_total: 'COUNTER', etcd_mvcc_txn_total: 'COUNTER',
    etcd_debugging_mvcc_keys_total: 'GAUGE',
    etcd_disk_wal_fsync_duration_seconds: 'HISTOGRAM', etcd_disk_backend_commit_duration_seconds: 'HISTOGRAM',
    etcd_network_peer_round_trip_time_seconds: 'HISTOGRAM',
    grpc_server_started_total: 'COUNTER', grpc_server_handled_total: 'COUNTER',
    grpc_server_msg_received_total: 'COUNTER', grpc_server_msg_sent_total: 'COUNTER',
    process_cpu_seconds_total: 'COUNTER', process_resident_memory_bytes: 'GAUGE', nodejs_eventloop_lag_seconds: 'GAUGE',
  };
  for (const [name, type] of Object.entries(expected)) assert.equal(f.get(name)?.type, type, name);
});

test('state is read from its owner at scrape time', async () => {
  const m = new ServerMetrics();
  let applied = 11;
  m.attach(sources({ appliedIndex: () => applied }));
  let f = await scrape(m);
  assert.equal(valueOf(f, 'etcd_server_proposals_applied_total'), 11);
  applied = 20;
  f = await scrape(m);
  assert.equal(valueOf(f, 'etcd_server_proposals_applied_total'), 20);
  assert.equal(valueOf(f, 'etcd_server_proposals_committed_total'), 12);
  assert.equal(valueOf(f, 'etcd_server_proposals_pending'), 2);
  assert.equal(valueOf(f, 'etcd_server_proposals_failed_total'), 3);
  assert.equal(valueOf(f, 'etcd_mvcc_db_total_size_in_bytes'), 20480);
  assert.equal(valueOf(f, 'etcd_mvcc_db_total_size_in_use_in_bytes'), 16384);
  assert.equal(valueOf(f, 'etcd_debugging_mvcc_keys_total'), 7);
  assert.equal(valueOf(f, 'etcd_server_id', { server_id: '8e9e05c52164694d' }), 1);
  assert.equal(valueOf(f, 'etcd_server_version', { server_version: '3.4.23' }), 1);
});

test('cluster version: absent until decided, major.minor, an older version drops to 0', async () => {
  const m = new ServerMetrics();
  let version: string | null = null;
  m.attach(sources({ clusterVersion: () => version }));
  assert.equal((await scrape(m)).get('etcd_cluster_version')?.metrics.length ?? 0, 0);
  version = '3.3.0';
  assert.equal(valueOf(await scrape(m), 'etcd_cluster_version', { cluster_version: '3.3' }), 1);
  version = '3.4.0';
  const f = await scrape(m);
  assert.equal(valueOf(f, 'etcd_cluster_version', { cluster_version: '3.4' }), 1);
  assert.equal(sample(f, 'etcd_cluster_version', { cluster_version: '3.3' })?.value, '0');
});

test('gRPC: every code of a method is exported from registration on; calls bump bound cells', async () => {
  const m = new ServerMetrics();
  const put = m.grpc.method({ service: 'etcdserverpb.KV', method: 'Put', type: 'unary' });
  const watch = m.grpc.method({ service: 'etcdserverpb.Watch', method: 'Watch', type: 'bidi_stream' });
  let f = await scrape(m);
  const handled = f.get('grpc_server_handled_total')!.metrics;
  assert.equal(handled.length, 2 * 17);
  assert.ok(handled.every((s) => s.value === '0'));
  put.started('3.4');
  put.received(10);
  put.sent(1, 20);
  put.handled(GrpcCode.OK);
  watch.started(undefined);
  watch.received(5);
  watch.received(5);
  watch.sent(3, 30);
  watch.handled(GrpcCode.Canceled);
  f = await scrape(m);
  const putLabels = { grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
  const watchLabels = { grpc_method: 'Watch', grpc_service: 'etcdserverpb.Watch', grpc_type: 'bidi_stream' };
  assert.equal(valueOf(f, 'grpc_server_started_total', putLabels), 1);
  assert.equal(valueOf(f, 'grpc_server_handled_total', { ...putLabels, grpc_code: 'OK' }), 1);
  assert.equal(valueOf(f, 'grpc_server_handled_total', { ...watchLabels, grpc_code: 'Canceled' }), 1);
  assert.equal(valueOf(f, 'grpc_server_handled_total', { ...watchLabels, grpc_code: 'OK' }), 0);
  assert.equal(valueOf(f, 'grpc_server_msg_received_total', watchLabels), 2);
  assert.equal(valueOf(f, 'grpc_server_msg_sent_total', watchLabels), 3);
  assert.equal(valueOf(f, 'etcd_network_client_grpc_received_bytes_total'), 20);
  assert.equal(valueOf(f, 'etcd_network_client_grpc_sent_bytes_total'), 50);
  assert.equal(valueOf(f, 'etcd_server_client_requests_total', { type: 'unary', client_api_version: '3.4' }), 1);
  assert.equal(valueOf(f, 'etcd_server_client_requests_total', { type: 'stream', client_api_version: 'unknown' }), 1);
});

test('mvcc: operations add up per store txn; a txn is one of more than one operation', async () => {
  const m = new ServerMetrics();
  m.mvcc.txnEnded({ ranges: 0, puts: 1, deletes: 0 });
  m.mvcc.txnEnded({ ranges: 1, puts: 1, deletes: 0 });
  m.mvcc.txnEnded({ ranges: 1, puts: 0, deletes: 0 });
  m.mvcc.txnEnded({ ranges: 0, puts: 0, deletes: 3 });
  const f = await scrape(m);
  assert.equal(valueOf(f, 'etcd_mvcc_put_total'), 2);
  assert.equal(valueOf(f, 'etcd_mvcc_range_total'), 2);
  assert.equal(valueOf(f, 'etcd_mvcc_delete_total'), 3);
  assert.equal(valueOf(f, 'etcd_mvcc_txn_total'), 2);
});

test('disk and network histograms use etcd\'s buckets', async () => {
  const m = new ServerMetrics();
  m.wal.fsyncSeconds(0.003);
  m.backend.commitSeconds(0.0005);
  m.observeRtt(0xan, 0.25);
  m.observeRtt(0xan, 2);
  const text = await m.registry.metrics();
  const f = parseMetrics(text);
  const wal = sample(f, 'etcd_disk_wal_fsync_duration_seconds')!;
  assert.deepEqual(Object.keys(wal.buckets!).filter((le) => le !== '+Inf').map(Number), exponentialBuckets(0.001, 2, 14));
  assert.equal(wal.count, '1');
  assert.equal(wal.buckets!['0.002'], '0');
  assert.equal(wal.buckets!['0.004'], '1');
  assert.equal(sample(f, 'etcd_disk_backend_commit_duration_seconds')!.buckets!['0.001'], '1');
  // Labelled histograms are read from the text: the parser folds their series together.
  const rtt = 'etcd_network_peer_round_trip_time_seconds';
  assert.equal(rawValue(text, `${rtt}_count`, { To: 'a' }), 2);
  assert.equal(rawValue(text, `${rtt}_bucket`, { To: 'a', le: '0.0002' }), 0);
  assert.equal(rawValue(text, `${rtt}_bucket`, { To: 'a', le: '0.0004' }), 1);
  assert.equal(rawValue(text, `${rtt}_bucket`, { To: 'a', le: '3.2768' }), 2);
});

test('health checks and slow applies are counted', async () => {
  const m = new ServerMetrics();
  m.healthChecked(true);
  m.healthChecked(false);
  m.healthChecked(false);
  m.slowApply();
  m.heartbeatSendFailure();
  const f = await scrape(m);
  assert.equal(valueOf(f, 'etcd_server_heartbeat_send_failures_total'), 1);
  assert.equal(valueOf(f, 'etcd_server_slow_apply_total'), 1);
  assert.equal(valueOf(f, 'etcd_server_health_success'), 1);
  assert.equal(valueOf(f, 'etcd_server_health_failures'), 2);
});

test('client API versions are counted apart up to a bound, then as "unknown"', async () => {
  const m = new ServerMetrics();
  const range = m.grpc.method({ service: 'etcdserverpb.KV', method: 'Range', type: 'unary' });
  for (let i = 0; i < 40; i++) range.started(`3.${i}`);
  const series = (await scrape(m)).get('etcd_server_client_requests_total')!.metrics;
  assert.equal(series.length, 32 + 1);
  assert.equal(series.find((s) => s.labels?.['client_api_version'] === 'unknown')?.value, '8');
});
