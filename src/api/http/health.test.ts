import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry, Counter } from 'prom-client';
import { createLogger } from '../../base/logger.js';
import { EtcdError } from '../../base/errors.js';
import { createHttpHandler, createMetricsHandler } from './http-handler.js';
import type { HealthSource } from './health.js';
import { MetricsListener } from './metrics-listener.js';

interface FakeState {
  alarms: string[];
  leader: boolean;
  quorumOk: boolean;
  linearizableError: Error | null;
  serializableError: Error | null;
  learner: boolean;
  answers: boolean[];
}

function fakeSource(state: FakeState): HealthSource {
  return {
    alarms: async () => state.alarms,
    hasLeader: () => state.leader,
    quorumRead: () => (state.quorumOk ? Promise.resolve() : new Promise(() => {})),
    linearizableRead: async () => {
      if (state.linearizableError) throw state.linearizableError;
    },
    serializableRead: async () => {
      if (state.serializableError) throw state.serializableError;
    },
    isLearner: () => state.learner,
    onHealth: (healthy) => state.answers.push(healthy),
  };
}

function healthyState(): FakeState {
  return { alarms: [], leader: true, quorumOk: true, linearizableError: null, serializableError: null, learner: false, answers: [] };
}

const log = createLogger({ level: 'error' });

async function withListener(state: FakeState, body: (get: (path: string, method?: string) => Promise<{ status: number; body: string; headers: Headers }>) => Promise<void>): Promise<void> {
  const registry = new Registry();
  new Counter({ name: 'probe_total', help: 'A probe.', registers: [registry] }).inc();
  const listener = await MetricsListener.listen([new URL('http://127.0.0.1:0')], createMetricsHandler({ health: fakeSource(state), metrics: registry }), log);
  try {
    const port = listener.boundPorts[0]!;
    await body(async (path, method = 'GET') => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      return { status: res.status, body: await res.text(), headers: res.headers };
    });
  } finally {
    await listener.close();
  }
}

test('/health: 200 {"health":"true"} when there is a leader, no alarm and a quorum read', async () => {
  const state = healthyState();
  await withListener(state, async (get) => {
    const r = await get('/health');
    assert.equal(r.status, 200);
    assert.equal(r.body, '{"health":"true"}');
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.deepEqual(state.answers, [true]);
  });
});

test('/health: 503 {"health":"false"} without a leader, with an alarm, or when the quorum read hangs', async () => {
  const state = healthyState();
  await withListener(state, async (get) => {
    state.leader = false;
    let r = await get('/health');
    assert.equal(r.status, 503);
    assert.equal(r.body, '{"health":"false"}\n');
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    state.leader = true;
    state.alarms = ['NOSPACE'];
    assert.equal((await get('/health')).status, 503);
    // etcd's ?exclude= ignores the named alarms.
    assert.equal((await get('/health?exclude=NOSPACE')).status, 200);
    assert.equal((await get('/health?exclude=CORRUPT')).status, 503);
    state.alarms = [];
    state.quorumOk = false;
    r = await get('/health');
    assert.equal(r.status, 503);
    assert.deepEqual(state.answers, [false, false, true, false, false]);
  });
});

test('/health answers only GET, as etcd', async () => {
  await withListener(healthyState(), async (get) => {
    const r = await get('/health', 'POST');
    assert.equal(r.status, 405);
    assert.equal(r.body, 'Method Not Allowed\n');
    assert.equal(r.headers.get('allow'), 'GET');
  });
});

test('/livez and /readyz: "ok", the checks listed with ?verbose', async () => {
  await withListener(healthyState(), async (get) => {
    assert.deepEqual(await get('/livez').then((r) => [r.status, r.body]), [200, 'ok\n']);
    assert.equal((await get('/livez?verbose')).body, '[+]serializable_read ok\nok\n');
    assert.equal((await get('/readyz')).body, 'ok\n');
    assert.equal((await get('/readyz?verbose')).body,
      '[+]data_corruption ok\n[+]serializable_read ok\n[+]linearizable_read ok\n[+]non_learner ok\nok\n');
    assert.equal((await get('/readyz/linearizable_read?verbose')).body, '[+]linearizable_read ok\nok\n');
    assert.equal((await get('/readyz?verbose&exclude=non_learner&exclude=data_corruption')).body,
      '[+]serializable_read ok\n[+]linearizable_read ok\nok\n');
    assert.equal((await get('/readyz/no_such_check')).status, 404);
  });
});

test('/readyz fails with the reason of each failed check, verbose or not', async () => {
  const state = healthyState();
  await withListener(state, async (get) => {
    state.linearizableError = new EtcdError('Timeout');
    state.alarms = ['CORRUPT'];
    const r = await get('/readyz');
    assert.equal(r.status, 503);
    assert.equal(r.body, `[-]data_corruption failed: alarm activated: CORRUPT\n[-]linearizable_read failed: ${new EtcdError('Timeout').message}\n\n`);
    // A member without quorum is still alive.
    assert.equal((await get('/livez')).status, 200);
    state.serializableError = new Error('backend closed');
    assert.equal((await get('/livez')).body, '[-]serializable_read failed: backend closed\n\n');
    state.learner = true;
    assert.match((await get('/readyz/non_learner')).body, /\[-\]non_learner failed: not supported for learner/);
  });
});

test('the metrics listener serves /metrics and nothing of the client port (no /version, no CORS)', async () => {
  await withListener(healthyState(), async (get) => {
    const r = await get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.body, /^probe_total 1$/m);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
    assert.equal((await get('/version')).status, 404);
    assert.equal((await get('/metrics', 'POST')).status, 200);
  });
});

test('the client port handler adds CORS and serves /version, /metrics and the health endpoints', async () => {
  const registry = new Registry();
  const handler = createHttpHandler({ health: fakeSource(healthyState()), metrics: registry });
  const listener = await MetricsListener.listen([new URL('http://127.0.0.1:0')], handler, log);
  try {
    const base = `http://127.0.0.1:${listener.boundPorts[0]!}`;
    const health = await fetch(`${base}/health`);
    assert.equal(health.headers.get('access-control-allow-origin'), '*');
    assert.equal(await health.text(), '{"health":"true"}');
    assert.deepEqual(await (await fetch(`${base}/version`)).json(), { etcdserver: '3.4.23', etcdcluster: '3.4.0' });
    assert.equal(await (await fetch(`${base}/readyz`)).text(), 'ok\n');
    assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 200);
    assert.equal((await fetch(`${base}/version`, { method: 'POST' })).status, 405);
  } finally {
    await listener.close();
  }
});
