import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeKey, keyCapacity, LOAD_FLAGS, loadConfigFromFlags } from './load-config.js';
import { shareFor } from './load-engine.js';
import { parseFlags, UsageError } from './options.js';
import { OTHER_WORKLOADS, RUN_FLAGS, WORKLOAD_NAMES, workloadFor } from './workloads.js';

test('etcd benchmark-style flags: defaults, --name value, --name=value, bare booleans', () => {
  const { flags, positional } = parseFlags(
    ['put', '--conns', '10', '--clients=100', '--sequential-keys', '--total', '20k', '--consistency=s'],
    LOAD_FLAGS,
  );
  assert.deepEqual(positional, ['put']);
  assert.equal(flags.conns, 10);
  assert.equal(flags.clients, 100);
  assert.equal(flags.total, 20_000);
  assert.equal(flags['sequential-keys'], true);
  assert.equal(flags.consistency, 's');
  assert.equal(flags['key-size'], 8);
  assert.equal(flags['val-size'], 8);
  assert.equal(flags['key-space-size'], 1);
  assert.equal(parseFlags(['--sequential-keys=false'], LOAD_FLAGS).flags['sequential-keys'], false);
  assert.equal(parseFlags(['--mem-keys', '1M'], RUN_FLAGS).flags['mem-keys'], 1_000_000);
});

test('unknown flags, bad numbers, out-of-range values and bad choices are usage errors', () => {
  assert.throws(() => parseFlags(['--client', '5'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--clients', 'ten'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--clients', '0'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--clients', '-3'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--clients', '1.5'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--clients', '10001'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--consistency', 'x'], LOAD_FLAGS), UsageError);
  assert.throws(() => parseFlags(['--total'], LOAD_FLAGS), /needs a value/);
  assert.throws(() => parseFlags(['--only', 'put1,nope'], RUN_FLAGS), /unknown nope/);
});

test('the runner selects workloads and targets by list and enum', () => {
  const { flags } = parseFlags(['--only', 'put1, range-s', '--target-only', 'etcd', '--write-readme'], RUN_FLAGS);
  assert.deepEqual(flags.only, ['put1', 'range-s']);
  assert.equal(flags['target-only'], 'etcd');
  assert.equal(flags['write-readme'], true);
  assert.deepEqual(parseFlags([], RUN_FLAGS).flags.only, [...WORKLOAD_NAMES, ...OTHER_WORKLOADS]);
});

test('load configs are checked as a whole: conns <= clients, keys fit in key-size', () => {
  const flags = (argv: string[]) => parseFlags(argv, LOAD_FLAGS).flags;
  assert.throws(() => loadConfigFromFlags('put', flags(['--conns', '5', '--clients', '2'])), /--conns/);
  assert.throws(() => loadConfigFromFlags('put', flags(['--key-size', '1', '--key-space-size', '300'])), /cannot hold/);
  assert.throws(() => loadConfigFromFlags('txn-put', flags(['--txn-ops', '4', '--key-space-size', '3'])), /--txn-ops/);
  assert.throws(() => loadConfigFromFlags('put', flags(['--endpoint', 'http://x:1'])), /host:port/);
  const cfg = loadConfigFromFlags('range', flags(['--key-size', '2', '--key-space-size', '65000', '--consistency', 's']));
  assert.equal(cfg.consistency, 's');
  assert.equal(keyCapacity(2), 65_536);
});

test('keys are fixed-size big-endian indexes, so byte order is index order', () => {
  assert.deepEqual([...encodeKey(0, 4)], [0, 0, 0, 0]);
  assert.deepEqual([...encodeKey(258, 4)], [0, 0, 1, 2]);
  assert.deepEqual([...encodeKey(2 ** 40 + 5, 8)], [0, 0, 1, 0, 0, 0, 0, 5]);
  const keys = [0, 1, 255, 256, 65_535, 65_536, 1_000_000].map((i) => encodeKey(i, 8));
  for (let i = 1; i < keys.length; i++) assert.equal(Buffer.compare(keys[i - 1] as Buffer, keys[i] as Buffer), -1);
});

test('clients spread round-robin over conns, and threads take whole connections', () => {
  const cfg = { conns: 10, clients: 100 };
  const shares = [0, 1, 2].map((t) => shareFor(cfg, 3, t));
  assert.deepEqual(shares.map((s) => s.connIds), [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]);
  assert.equal(shares.reduce((n, s) => n + s.clientConn.length, 0), 100);
  // Client i uses connection i mod 10, wherever it runs: 10 clients per connection.
  const perConn = new Map<number, number>();
  for (const s of shares) for (const local of s.clientConn) {
    const id = s.connIds[local] as number;
    perConn.set(id, (perConn.get(id) ?? 0) + 1);
  }
  assert.deepEqual([...perConn.values()], Array(10).fill(10));
  assert.deepEqual(shareFor({ conns: 1, clients: 1 }, 1, 0), { connIds: [0], clientConn: [0] });
});

test('runner workloads map to load configs as documented', () => {
  const { flags } = parseFlags(['--total', '5000', '--warmup', '500', '--mem-keys', '1000', '--mem-batch', '10'], RUN_FLAGS);
  const put1 = workloadFor('put1', flags).load('127.0.0.1:1');
  assert.deepEqual([put1.op, put1.clients, put1.conns, put1.total, put1.warmup], ['put', 1, 1, 500, 50]);
  const rangeS = workloadFor('range-s', flags);
  assert.equal(rangeS.preloadKeys, 10_000);
  assert.deepEqual([rangeS.load('h:1').consistency, rangeS.load('h:1').clients], ['s', 100]);
  assert.equal(workloadFor('range-l', flags).load('h:1').consistency, 'l');
  const mem = workloadFor('mem', flags).load('h:1');
  assert.deepEqual([mem.op, mem.total, mem.opsPerTxn, mem.keySpaceSize, mem.sequentialKeys], ['txn-put', 100, 10, 1000, true]);
});
