import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveProgressIntervalMs } from './limits.js';

test('progress interval as etcd reads it: 0 keeps 10 minutes, below 100 ms is raised to 100 ms', () => {
  assert.deepEqual(effectiveProgressIntervalMs(0), { intervalMs: 600_000, raised: false });
  assert.deepEqual(effectiveProgressIntervalMs(20), { intervalMs: 100, raised: true });
  assert.deepEqual(effectiveProgressIntervalMs(1500), { intervalMs: 1500, raised: false });
});
