import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseDurationMs } from './config.js';

test('defaults are etcd\'s: name default, data dir default.etcd, ports 2379/2380, 1.5 MiB, 128 ops', () => {
  const c = loadConfig([], {});
  assert.equal(c.name, 'default');
  assert.equal(c.dataDir, 'default.etcd');
  assert.deepEqual(c.listenClientUrls.map(String), ['http://localhost:2379/']);
  assert.deepEqual(c.advertiseClientUrls, ['http://localhost:2379']);
  assert.deepEqual(c.initialAdvertisePeerUrls, ['http://localhost:2380']);
  assert.deepEqual(c.initialCluster, [{ name: 'default', peerUrls: ['http://localhost:2380'] }]);
  assert.equal(c.requestBytesMax, 1572864);
  assert.equal(c.maxTxnOps, 128);
  assert.equal(c.snapshotCount, 100000);
  assert.equal(c.heartbeatMs, 100);
  assert.equal(c.electionMs, 1000);
  assert.equal(c.initialClusterToken, 'etcd-cluster');
});

test('flags in both --a=b and --a b forms; data dir follows --name', () => {
  const c = loadConfig(['--name', 'n1', '--max-txn-ops=4', '--pre-vote', '--listen-client-urls', 'http://127.0.0.1:5000', '--advertise-client-urls=http://127.0.0.1:5000'], {});
  assert.equal(c.name, 'n1');
  assert.equal(c.dataDir, 'n1.etcd');
  assert.equal(c.maxTxnOps, 4);
  assert.equal(c.preVote, true);
  assert.equal(c.listenClientUrls[0]?.port, '5000');
});

test('ETCD_* environment variables apply, and a flag wins over its variable', () => {
  const c = loadConfig(['--name', 'flag'], { ETCD_NAME: 'env', ETCD_MAX_REQUEST_BYTES: '1024' });
  assert.equal(c.name, 'flag');
  assert.equal(c.requestBytesMax, 1024);
  assert.equal(c.sources.get('max-request-bytes'), 'env');
});

test('--config-file replaces flags and environment, with etcd\'s YAML keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'etcd-ts-config-'));
  try {
    const path = join(dir, 'etcd.yml');
    writeFileSync(path, 'name: fromfile\ndata-dir: /tmp/x\nsnapshot-count: 7\nmax-txn-ops: 9\n');
    const c = loadConfig(['--config-file', path, '--name', 'ignored'], { ETCD_MAX_TXN_OPS: '1' });
    assert.equal(c.name, 'fromfile');
    assert.equal(c.dataDir, '/tmp/x');
    assert.equal(c.snapshotCount, 7);
    assert.equal(c.maxTxnOps, 9);
    writeFileSync(path, 'no-such-key: 1\n');
    assert.throws(() => loadConfig(['--config-file', path], {}), /unknown key "no-such-key"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown flags and variables are refused as etcd refuses them', () => {
  assert.throws(() => loadConfig(['--no-such-flag'], {}), (e) => e instanceof ConfigError && /flag provided but not defined: -no-such-flag/.test(e.message));
  assert.throws(() => loadConfig([], { ETCD_NO_SUCH: '1' }), /unrecognized environment variable ETCD_NO_SUCH=1/);
});

test('an etcd flag not implemented yet is refused by name unless given its default', () => {
  assert.throws(() => loadConfig(['--discovery-srv', 'example.com'], {}), /flag --discovery-srv is not implemented in etcd-ts yet/);
  assert.throws(() => loadConfig([], { ETCD_PROXY: 'on' }), /flag --proxy is not implemented/);
  assert.doesNotThrow(() => loadConfig(['--proxy=off'], {}));
});

test('timeouts are checked as etcd checks them', () => {
  assert.throws(() => loadConfig(['--heartbeat-interval', '300', '--election-timeout', '1000'], {}),
    /--election-timeout\[1000ms\] should be at least as 5 times as --heartbeat-interval\[300ms\]/);
  assert.throws(() => loadConfig(['--election-timeout', '60000'], {}), /too long/);
});

test('Go durations', () => {
  assert.equal(parseDurationMs('100ms'), 100);
  assert.equal(parseDurationMs('2h0m0s'), 7_200_000);
  assert.equal(parseDurationMs('1.5s'), 1500);
  assert.equal(parseDurationMs('0'), 0);
  assert.throws(() => parseDurationMs('10'), /invalid duration/);
});

test('--experimental-watch-progress-notify-interval is read as a duration (default 10m)', () => {
  assert.equal(loadConfig([], {}).watchProgressNotifyIntervalMs, 600_000);
  assert.equal(loadConfig(['--experimental-watch-progress-notify-interval=500ms'], {}).watchProgressNotifyIntervalMs, 500);
});

test('--listen-metrics-urls is accepted (http only) and defaults to none', () => {
  assert.deepEqual(loadConfig([], {}).listenMetricsUrls, []);
  const c = loadConfig(['--listen-metrics-urls=http://127.0.0.1:9101,http://localhost:9102'], {});
  assert.deepEqual(c.listenMetricsUrls.map(String), ['http://127.0.0.1:9101/', 'http://localhost:9102/']);
  assert.deepEqual(loadConfig([], { ETCD_LISTEN_METRICS_URLS: 'http://127.0.0.1:9103' }).listenMetricsUrls.map(String), ['http://127.0.0.1:9103/']);
  assert.throws(() => loadConfig(['--listen-metrics-urls=unix://metrics.sock'], {}), /metrics are served over http only/);
  assert.throws(() => loadConfig(['--listen-metrics-urls=ftp://x:1'], {}), /URL scheme must be http, https, unix, or unixs/);
});

test('--experimental-warning-apply-duration is read as a duration (default 100ms)', () => {
  assert.equal(loadConfig([], {}).warningApplyDurationMs, 100);
  assert.equal(loadConfig(['--experimental-warning-apply-duration=250ms'], {}).warningApplyDurationMs, 250);
  assert.equal(loadConfig(['--experimental-warning-apply-duration=1ns'], {}).warningApplyDurationMs, 1e-6);
});

test('maintenance flags: quota bytes, auto-compaction (etcd\'s retention parsing), corruption checks', async () => {
  const { parseAutoCompaction } = await import('./config.js');
  const d = loadConfig([], {});
  assert.equal(d.quotaBackendBytes, 0);
  assert.equal(d.autoCompaction, null);
  assert.equal(d.initialCorruptCheck, false);
  assert.equal(d.corruptCheckTimeMs, 0);
  const c = loadConfig([
    '--quota-backend-bytes', '1048576', '--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000',
    '--experimental-initial-corrupt-check', '--experimental-corrupt-check-time', '2m',
  ], {});
  assert.equal(c.quotaBackendBytes, 1048576);
  assert.deepEqual(c.autoCompaction, { mode: 'revision', retentionRevisions: 1000 });
  assert.equal(c.initialCorruptCheck, true);
  assert.equal(c.corruptCheckTimeMs, 120_000);
  assert.deepEqual(loadConfig(['--auto-compaction-retention', '1'], {}).autoCompaction, { mode: 'periodic', retentionMs: 3_600_000 });
  assert.deepEqual(parseAutoCompaction('periodic', '90m'), { mode: 'periodic', retentionMs: 5_400_000 });
  assert.deepEqual(parseAutoCompaction('periodic', '5s'), { mode: 'periodic', retentionMs: 5000 });
  assert.equal(parseAutoCompaction('periodic', '0'), null);
  assert.throws(() => parseAutoCompaction('periodic', 'soon'), /error parsing CompactionRetention/);
  assert.throws(() => loadConfig(['--auto-compaction-mode', 'daily', '--auto-compaction-retention', '1'], {}), ConfigError);
  assert.equal(loadConfig(['--quota-backend-bytes', '-1'], {}).quotaBackendBytes, -1);
});

test('auth flags: --auth-token, --bcrypt-cost and --auth-token-ttl are taken and checked', () => {
  const d = loadConfig([], {});
  assert.equal(d.authToken, 'simple');
  assert.equal(d.bcryptCost, 10);
  assert.equal(d.authTokenTtlSeconds, 300);
  const c = loadConfig(['--auth-token=jwt,pub-key=a.pem,priv-key=b.pem,sign-method=RS256', '--bcrypt-cost=4', '--auth-token-ttl=2'], {});
  assert.equal(c.authToken, 'jwt,pub-key=a.pem,priv-key=b.pem,sign-method=RS256');
  assert.equal(c.bcryptCost, 4);
  assert.equal(c.authTokenTtlSeconds, 2);
  assert.throws(() => loadConfig(['--auth-token=magic'], {}), ConfigError);
  assert.throws(() => loadConfig(['--bcrypt-cost=3'], {}), ConfigError);
});
