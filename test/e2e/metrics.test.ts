/**
 * Issue 7 (metrics and health): /metrics on the client port and on --listen-metrics-urls, parsed as the
 * Prometheus text format; the metrics etcd exports exist with etcd's type, help and labels (real etcd, the
 * first target, is the reference); a put, a canceled watch and a WAL fsync move the counters they should;
 * /health is etcd 3.4's, true with a leader and false once the member loses quorum; /livez and /readyz
 * follow etcd 3.5 (3.4 has neither: real etcd answers 404, which the test checks so the gap stays known).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdRpc } from './grpc-client.js';
import { freePorts, Member, targetsFromEnv, waitFor, withLogsOnFailure, type Target } from './harness.js';
import { RawWatch } from './watch-tools.js';
import { withCluster, timing, timingFlags } from './cluster/cluster.js';
import { parseMetrics, rawValue, valueOf, type Family } from '../../src/server/metrics-test-support.js';

interface Side {
  target: Target;
  member: Member;
  metricsPort: number;
  rpc: EtcdRpc;
}

const targets = targetsFromEnv();
const sides: Side[] = [];

/** Present on a single member once it has served a put (peer round trips need peers: see the cluster test). */
const expectedTypes: Readonly<Record<string, string>> = {
  etcd_server_has_leader: 'GAUGE',
  etcd_server_is_leader: 'GAUGE',
  etcd_server_leader_changes_seen_total: 'COUNTER',
  etcd_server_proposals_committed_total: 'GAUGE',
  etcd_server_proposals_applied_total: 'GAUGE',
  etcd_server_proposals_pending: 'GAUGE',
  etcd_server_proposals_failed_total: 'COUNTER',
  etcd_server_version: 'GAUGE',
  etcd_cluster_version: 'GAUGE',
  etcd_server_id: 'GAUGE',
  etcd_server_is_learner: 'GAUGE',
  etcd_server_slow_apply_total: 'COUNTER',
  etcd_server_heartbeat_send_failures_total: 'COUNTER',
  etcd_mvcc_db_total_size_in_bytes: 'GAUGE',
  etcd_mvcc_db_total_size_in_use_in_bytes: 'GAUGE',
  etcd_mvcc_put_total: 'COUNTER',
  etcd_mvcc_delete_total: 'COUNTER',
  etcd_mvcc_range_total: 'COUNTER',
  etcd_mvcc_txn_total: 'COUNTER',
  etcd_debugging_mvcc_keys_total: 'GAUGE',
  etcd_disk_wal_fsync_duration_seconds: 'HISTOGRAM',
  etcd_disk_backend_commit_duration_seconds: 'HISTOGRAM',
  grpc_server_handled_total: 'COUNTER',
  grpc_server_started_total: 'COUNTER',
  grpc_server_msg_received_total: 'COUNTER',
  grpc_server_msg_sent_total: 'COUNTER',
  etcd_network_client_grpc_sent_bytes_total: 'COUNTER',
  etcd_network_client_grpc_received_bytes_total: 'COUNTER',
  etcd_server_client_requests_total: 'COUNTER',
  process_cpu_seconds_total: 'COUNTER',
  process_resident_memory_bytes: 'GAUGE',
  process_open_fds: 'GAUGE',
  process_max_fds: 'GAUGE',
  process_start_time_seconds: 'GAUGE',
};

/** etcd-ts's runtime is Node.js: prom-client's default metrics stand where Go's go_* are. */
const nodeRuntimeMetrics = ['nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds'];

const putLabels = { grpc_code: 'OK', grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' };
const watchCanceled = { grpc_code: 'Canceled', grpc_method: 'Watch', grpc_service: 'etcdserverpb.Watch', grpc_type: 'bidi_stream' };

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, body: await res.text() };
}

async function scrapeText(port: number): Promise<string> {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  return r.body;
}

async function scrape(port: number): Promise<Map<string, Family>> {
  return parseMetrics(await scrapeText(port));
}

before(async () => {
  for (const target of targets) {
    const [metricsPort] = await freePorts(1);
    // Every apply is "slow" at 1ns, so etcd_server_slow_apply_total moves with each write.
    const flags = [`--listen-metrics-urls=http://127.0.0.1:${metricsPort!}`, '--experimental-warning-apply-duration=1ns'];
    const member = await Member.start({ target, flags });
    sides.push({ target, member, metricsPort: metricsPort!, rpc: new EtcdRpc(member.endpoint) });
  }
  // Every counter below needs at least one put behind it.
  for (const side of sides) await side.rpc.put({ key: Buffer.from('warm'), value: Buffer.from('up') });
});

after(async () => {
  for (const side of sides) side.rpc.close();
  await Promise.all(sides.map((s) => s.member.destroy()));
});

test('every metric named in issue 7 is served, on both ports, with etcd\'s type, help and labels', async () => {
  const scraped = await Promise.all(sides.map(async (s) => ({ side: s, client: await scrape(s.member.clientPort), metrics: await scrape(s.metricsPort) })));
  const reference = scraped[0]!.client;
  for (const { side, client, metrics } of scraped) {
    await withLogsOnFailure([side.member], async () => {
      for (const [name, type] of Object.entries(expectedTypes)) {
        for (const [port, families] of [['client', client], ['metrics', metrics]] as const) {
          const f = families.get(name);
          assert.equal(f?.type, type, `${side.target.label} ${port} port: ${name}`);
          assert.ok(f.metrics.length > 0, `${side.target.label} ${port} port: ${name} has a series`);
        }
        const ref = reference.get(name)!;
        const mine = client.get(name)!;
        assert.equal(mine.help, ref.help, `${side.target.label}: help of ${name}`);
        const labelNames = (f: Family): string[] => Object.keys(f.metrics[0]?.labels ?? {}).filter((l) => l !== 'le').sort();
        assert.deepEqual(labelNames(mine), labelNames(ref), `${side.target.label}: labels of ${name}`);
      }
      assert.equal(valueOf(client, 'etcd_server_has_leader'), 1);
      assert.equal(valueOf(client, 'etcd_cluster_version', { cluster_version: '3.4' }), 1);
      assert.equal(valueOf(client, 'etcd_server_version', { server_version: '3.4.23' }), 1);
      // Every code of every method exists from the start, as go-grpc-prometheus pre-registers them.
      assert.equal(valueOf(client, 'grpc_server_handled_total', { ...putLabels, grpc_code: 'DataLoss' }), 0);
      assert.ok(client.get('grpc_server_handled_total')!.metrics.some((m) => m.labels?.['grpc_code'] === 'DataLoss' && m.labels['grpc_method'] === 'LeaseKeepAlive'));
      if (side.target.name === 'ours') {
        for (const name of nodeRuntimeMetrics) assert.ok(client.has(name), `Node.js runtime metric ${name}`);
      }
    });
  }
});

test('histogram buckets are etcd\'s', async () => {
  const texts = await Promise.all(sides.map((s) => scrapeText(s.member.clientPort)));
  const les = (text: string, name: string): string[] =>
    [...text.matchAll(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} `, 'gm'))].map((m) => m[1]!);
  for (const name of ['etcd_disk_wal_fsync_duration_seconds', 'etcd_disk_backend_commit_duration_seconds']) {
    for (const text of texts) assert.deepEqual(les(text, name), les(texts[0]!, name), name);
  }
});

test('a put counts one mvcc put, one Put handled OK, its bytes and client request; its WAL fsync is timed', async () => {
  for (const side of sides) {
    const before = await scrape(side.metricsPort);
    await side.rpc.put({ key: Buffer.from('k'), value: Buffer.from('v') });
    const after = await scrape(side.metricsPort);
    const delta = (name: string, labels: Record<string, string> = {}): number => valueOf(after, name, labels) - valueOf(before, name, labels);
    assert.equal(delta('etcd_mvcc_put_total'), 1, side.target.label);
    assert.equal(delta('grpc_server_handled_total', putLabels), 1, side.target.label);
    assert.equal(delta('grpc_server_started_total', { grpc_method: 'Put', grpc_service: 'etcdserverpb.KV', grpc_type: 'unary' }), 1, side.target.label);
    assert.ok(delta('etcd_disk_wal_fsync_duration_seconds') >= 1, `${side.target.label}: WAL fsync count grows`);
    assert.ok(delta('etcd_server_slow_apply_total') >= 1, `${side.target.label}: a slow apply is counted`);
    // Our client sends no client-api-version metadata (etcdctl does: "3.4").
    assert.equal(delta('etcd_server_client_requests_total', { type: 'unary', client_api_version: 'unknown' }), 1, side.target.label);
    assert.ok(delta('etcd_network_client_grpc_received_bytes_total') >= 4, `${side.target.label}: request bytes`);
    assert.ok(delta('etcd_network_client_grpc_sent_bytes_total') > 0, `${side.target.label}: response bytes`);
    assert.ok(valueOf(after, 'etcd_server_proposals_applied_total') > valueOf(before, 'etcd_server_proposals_applied_total'));
    assert.ok(valueOf(after, 'etcd_debugging_mvcc_keys_total') >= 2);
  }
});

test('a watch stream the client cancels is handled with code Canceled', async () => {
  for (const side of sides) {
    const before = valueOf(await scrape(side.metricsPort), 'grpc_server_handled_total', watchCanceled);
    const watch = new RawWatch(side.member.endpoint);
    try {
      watch.create({ key: Buffer.from('w') });
      await waitFor(() => watch.responses.some((r) => r.created), { what: `${side.target.label}: watch created` });
      watch.stream.cancel();
      await waitFor(async () => valueOf(await scrape(side.metricsPort), 'grpc_server_handled_total', watchCanceled) === before + 1,
        { what: `${side.target.label}: Watch handled Canceled`, timeoutMs: 10_000, intervalMs: 100 });
    } finally {
      watch.client.close();
    }
  }
});

test('/health is etcd 3.4\'s on both ports; /livez and /readyz exist on etcd-ts only', async () => {
  for (const side of sides) {
    for (const port of [side.member.clientPort, side.metricsPort]) {
      assert.deepEqual(await get(port, '/health'), { status: 200, body: '{"health":"true"}' }, side.target.label);
    }
    const livez = await get(side.metricsPort, '/livez');
    const readyz = await get(side.member.clientPort, '/readyz?verbose');
    if (side.target.name === 'etcd') {
      assert.equal(livez.status, 404);
      assert.equal(readyz.status, 404);
      continue;
    }
    assert.deepEqual(livez, { status: 200, body: 'ok\n' });
    assert.deepEqual(readyz, {
      status: 200,
      body: '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n',
    });
  }
});

test('a member that loses quorum: /health false (503), has_leader 0; etcd-ts: /readyz fails, /livez holds', async () => {
  for (const target of targets) {
    await withCluster({ target, names: ['m1', 'm2', 'm3'], flags: [...timingFlags] }, async (cluster) => {
      const m1 = cluster.member('m1');
      assert.deepEqual(await get(m1.clientPort, '/health'), { status: 200, body: '{"health":"true"}' });
      if (target.name === 'ours') {
        // Peers ping each other every second: the round-trip histogram has a series per peer.
        const ids = await cluster.ids();
        await waitFor(async () => rawValue(await scrapeText(m1.clientPort), 'etcd_network_peer_round_trip_time_seconds_count', { To: ids.get('m2')!.toString(16) }) !== undefined,
          { what: 'a round trip to m2', timeoutMs: 10_000, intervalMs: 200 });
      }
      await cluster.member('m2').kill();
      await cluster.member('m3').kill();
      await waitFor(async () => (await get(m1.clientPort, '/health')).status === 503,
        { what: `${target.label}: /health false`, timeoutMs: 20 * timing.electionMs + 10_000, intervalMs: 200 });
      assert.deepEqual(await get(m1.clientPort, '/health'), { status: 503, body: '{"health":"false"}\n' });
      assert.equal(valueOf(await scrape(m1.clientPort), 'etcd_server_has_leader'), 0);
      assert.ok(valueOf(await scrape(m1.clientPort), 'etcd_server_health_failures') >= 1);
      if (target.name === 'ours') {
        const readyz = await get(m1.clientPort, '/readyz');
        assert.equal(readyz.status, 503);
        assert.match(readyz.body, /^\[-\]linearizable_read failed: etcdserver: /m);
        assert.deepEqual(await get(m1.clientPort, '/livez'), { status: 200, body: 'ok\n' });
      }
    });
  }
});
