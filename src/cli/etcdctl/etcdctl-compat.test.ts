/**
 * etcdctl-ts against the real etcdctl 3.4: the same commands, the same server state, byte-identical stdout,
 * stderr (after normalising timestamps and measured durations) and exit codes.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { haveRealEtcd } from '../../client/testing-real-etcd.js';
import { EtcdClient } from '../../client/index.js';
import { compareAll, normalizeTook, startTwins, type Step, type Twins } from './compat-harness.js';

const skip = haveRealEtcd() ? false : 'the real etcd and etcdctl (/usr/bin/etcd, /usr/bin/etcdctl) are not installed';
const formats = ['simple', 'json', 'fields', 'protobuf', 'table'] as const;

let twins: Twins;

before(async () => {
  if (skip === false) twins = await startTwins();
});

after(async () => {
  if (skip === false) await Promise.all([twins.real.stop(), twins.ours.stop()]);
});

async function expectSame(steps: readonly Step[]): Promise<void> {
  const failures = await compareAll(twins, steps);
  assert.equal(failures.length, 0, `${failures.length} of ${steps.length} commands differ:\n${failures.join('\n')}`);
}

/** A Go panic's trace names goroutines and addresses; its first line and the exit code must match. */
const firstLine = (text: string): string => text.split('\n')[0] ?? '';

const inAllFormats = (args: readonly string[]): Step[] => formats.map((f) => ({ args: [...args, '-w', f] }));

test('put: every flag and format, value from stdin, errors', { skip }, async () => {
  await expectSame([
    { args: ['put', 'foo', 'bar'] },
    { args: ['put', 'foo', 'bar2', '--prev-kv'] },
    ...formats.map((f, i) => ({ args: ['put', 'foo', `v${i}`, '--prev-kv', '-w', f] })),
    { args: ['put', 'fromstdin'], stdin: 'value from stdin\nwith two lines\n' },
    { args: ['put', 'fromstdin'] },
    { args: ['put', 'foo', '--ignore-value', '--prev-kv', '-w', 'json'] },
    { args: ['put', 'missing', '--ignore-value'] },
    { args: ['put', 'foo', 'x', '--ignore-lease'] },
    { args: ['put', 'foo', 'x', '--lease', '1234'] },
    { args: ['put', 'foo', 'x', '--lease=zz'] },
    { args: ['put', 'foo', 'x', '--ignore-value'] },
    { args: ['put', '', 'x'] },
    { args: ['put'] },
    { args: ['put', '--', 'dash', '-value'] },
    { args: ['put', 'ключ', 'значение ✓', '-w', 'fields'] },
    { args: ['put', 'ctl', 'tab\there\nnewline\u0001\u007f', '-w', 'fields', '--prev-kv'] },
    { args: ['put', 'ctl', 'html <&> "q"', '-w', 'json', '--prev-kv'] },
    { args: ['put', 'hexkey', 'hexvalue', '--prev-kv', '--hex'] },
  ]);
});

const rangeKeys: Step[] = ['a1', 'a2', 'a3', 'a4', 'a5', 'b1', 'b2', 'c'].map((k, i) => ({ args: ['put', k, `${'zyxwvuts'[i]}${k}`] }));

test('get: ranges, prefixes, sorting, limits, revisions, formats and errors', { skip }, async () => {
  await expectSame([
    ...rangeKeys,
    { args: ['put', 'a2', 'again'] },
    ...inAllFormats(['get', 'a1']),
    ...inAllFormats(['get', 'a', '--prefix', '--limit', '2']),
    { args: ['get', 'a1', 'a4'] },
    { args: ['get', 'a1', 'a4', '-w', 'fields'] },
    { args: ['get', 'a3', '--from-key'] },
    { args: ['get', '', '--prefix', '--keys-only'] },
    { args: ['get', '', '--from-key', '-w', 'json', '--keys-only'] },
    { args: ['get', 'a', '--prefix', '--sort-by=VALUE', '--order=DESCEND'] },
    { args: ['get', 'a', '--prefix', '--sort-by', 'create', '--order', 'ascend'] },
    { args: ['get', 'a', '--prefix', '--sort-by=MODIFY', '--order=DESCEND', '-w', 'json'] },
    { args: ['get', 'a', '--prefix', '--sort-by=VERSION', '--order=DESCEND', '--limit=3'] },
    { args: ['get', 'a', '--prefix', '--sort-by=KEY', '--order=ASCEND'] },
    { args: ['get', 'a', '--prefix', '--order=DESCEND'] },
    { args: ['get', 'a2', '--rev', '3', '-w', 'json'] },
    { args: ['get', 'a', '--prefix', '--rev=4'] },
    { args: ['get', 'a2', '--rev', '100000'] },
    { args: ['get', 'a', '--prefix', '--print-value-only'] },
    { args: ['get', 'a1', '--print-value-only', '-w', 'json'] },
    { args: ['get', 'a', '--prefix', '--consistency=s', '--hex'] },
    { args: ['get', 'a1', '--hex', '-w', 'json'] },
    { args: ['get', 'nothing-here'] },
    { args: ['get', 'nothing-here', '-w', 'json'] },
    { args: ['get', 'nothing-here', '-w', 'fields'] },
    { args: ['get', 'a1', '--consistency', 'x'] },
    { args: ['get', 'a1', '--order', 'x'] },
    { args: ['get', 'a1', '--sort-by', 'x'] },
    { args: ['get'] },
    { args: ['get', 'a', '--prefix', '--from-key'] },
    { args: ['get', 'a', 'b', '--prefix'] },
    { args: ['get', ''] },
    { args: ['get', 'a1', '-w', 'bogus'] },
    { args: ['get', 'a', '--prefix', '--limit=-1'] },
    { args: ['get', 'a', '--prefix', '--rev=-5', '-w', 'json'] },
    { args: ['get', 'a', '--prefix', '--limit=0x2'] },
    { args: ['get', 'a3', '--hex', '-w', 'fields'] },
    { args: ['put', 'big'], stdin: 'x'.repeat(100_000) },
    { args: ['get', 'big', '--print-value-only'] },
  ]);
});

test('del: ranges, prefixes, previous values, formats and errors', { skip }, async () => {
  await expectSame([
    { args: ['del', 'a1'] },
    { args: ['del', 'a2', 'a4', '--prev-kv'] },
    { args: ['del', 'b', '--prefix', '--prev-kv', '-w', 'json'] },
    { args: ['del', 'nothing', '-w', 'fields'] },
    { args: ['put', 'd1', '1'] },
    { args: ['put', 'd2', '2'] },
    { args: ['del', 'd', '--prefix', '--prev-kv', '-w', 'fields'] },
    { args: ['put', 'd3', '3'] },
    { args: ['del', 'd3', '-w', 'protobuf', '--prev-kv'] },
    { args: ['put', 'e1', '1'] },
    { args: ['del', 'e1', '-w', 'table'] },
    { args: ['put', 'z1', '1'] },
    { args: ['del', 'z', '--from-key', '--prev-kv'] },
    { args: ['del'] },
    { args: ['del', 'a', 'b', 'c'] },
    { args: ['del', 'a', '--prefix', '--from-key'] },
    { args: ['del', 'a', 'b', '--from-key'] },
    { args: ['del', ''] },
  ]);
});

const txnInput = 'mod("foo") > "0"\nval("c") = "sc"\n\nput t1 v1\nget foo\ndel a5 --prev-kv\nget a --prefix --keys-only\n\nget z\n\n';

test('txn: compares, success and failure branches, interactive prompts, formats and errors', { skip }, async () => {
  await expectSame([
    { args: ['put', 'a5', 'five'] },
    { args: ['txn'], stdin: txnInput },
    { args: ['put', 'a5', 'five'] },
    ...formats.map((f) => ({ args: ['txn', '-w', f], stdin: txnInput })),
    { args: ['txn', '-i'], stdin: 'ver("foo") = "999"\n\nput never x\n\nput t2 "quoted value"\nget t\n\n' },
    { args: ['txn', '--interactive', '-w', 'json'], stdin: 'c("t1") < "1"\nm("t1") != "0"\nversion("t1") > "0"\n\nput t3 v3 --prev-kv\n\n\n' },
    { args: ['txn'], stdin: 'create("nope") = "0"\nvalue("nope") != "x"\n\nput "t\\x41" "\\u00e9\\t"\n\n\n' },
    { args: ['txn'], stdin: '\n\n\n' },
    { args: ['txn'], stdin: 'mod("foo") > 0\n\n\n\n' },
    { args: ['txn'], stdin: 'bogus("foo") > "0"\n\n\n\n' },
    { args: ['txn'], stdin: 'no paren here\n\n\n\n' },
    { args: ['txn'], stdin: 'ver("foo") = "x"\n\n\n\n' },
    { args: ['txn'], stdin: '\nfoo bar\n\n\n' },
    { args: ['txn'], stdin: '\nget\n\n\n' },
    { args: ['txn'], stdin: '\nget a --bogus\n\n\n' },
    { args: ['txn'], stdin: '\nget --prefix\n\n\n' },
    { args: ['txn'], stdin: '\nput "bad\\q" x\n\n\n' },
    { args: ['txn'], stdin: '\nput a b\n' },
    { args: ['txn'], stdin: '' },
    { args: ['txn', 'extra'] },
    { args: ['txn'], stdin: '\nput "" x\n\n\n' },
    { args: ['txn'], stdin: "\nput 'a b' c\nput 'xyz' y z\n\n\n" },
    { args: ['txn'], stdin: "\nput 'x' y z w\n\n\n", normalize: firstLine },
    { args: ['txn'], stdin: "\nput 'q' r\n\n\n", normalize: firstLine },
    { args: ['txn'], stdin: 'mod("foo") ~ "1"\n\n\n\n', normalize: firstLine },
    { args: ['txn'], stdin: 'lease("foo") = "1"\n\n\n\n', normalize: firstLine },
    { args: ['txn'], stdin: '\nput bin "\\xff\\xfe\\x00\\x01 \\u2028"\n\n\n' },
    ...formats.map((f) => ({ args: ['get', 'bin', '-w', f] })),
    { args: ['get', 'bin', '--hex'] },
    { args: ['get', 'bin', '--hex', '-w', 'fields'] },
  ]);
});

test('compaction and reads of compacted revisions', { skip }, async () => {
  await expectSame([
    { args: ['compaction', '3'] },
    { args: ['compaction', '3'] },
    { args: ['compaction', '2', '-w', 'json'] },
    { args: ['get', 'foo', '--rev', '2'] },
    { args: ['compaction', '100000'] },
    { args: ['compaction', 'x'] },
    { args: ['compaction'] },
    { args: ['compaction', '--physical', '5'] },
    { args: ['compaction', '6', '-w', 'bogus'] },
  ]);
});

test('endpoint status, hashkv and health, with --cluster and dead endpoints', { skip }, async () => {
  await expectSame([
    ...inAllFormats(['endpoint', 'status']).map((step) => ({ ...step, sameServer: true })),
    ...inAllFormats(['endpoint', 'hashkv']),
    { args: ['endpoint', 'hashkv', '--rev', '5', '-w', 'json'] },
    ...formats.map((f) => ({ args: ['endpoint', 'health', '-w', f], normalize: normalizeTook })),
    { args: ['endpoint', 'status', '--cluster', '-w', 'json'] },
    { args: ['endpoint', 'hashkv', '--cluster'] },
    { args: ['endpoint', 'health', '--cluster'], normalize: normalizeTook },
    { args: ['--command-timeout=1s', 'get', 'foo'], endpoints: '{DEAD}' },
    { args: ['--command-timeout=1s', 'endpoint', 'status'], endpoints: '{DEAD},{EP}', sameServer: true },
    { args: ['--command-timeout=1s', 'endpoint', 'health'], endpoints: '{DEAD}', normalize: normalizeTook },
    { args: ['get', 'foo'], endpoints: '{DEAD},{EP}' },
  ]);
});

test('member list, add, update, promote, remove', { skip }, async () => {
  // A new member's id is random, so each side's new id is learned after the add and mapped to the other's.
  const learnIds = async (): Promise<void> => {
    twins.newMember = { real: await learnerId(twins.real.endpoint), ours: await learnerId(twins.ours.endpoint) };
  };
  const sameIds = (text: string): string => {
    const { real, ours } = twins.newMember;
    return text.replaceAll(ours, real).replaceAll(BigInt(`0x${ours}`).toString(), BigInt(`0x${real}`).toString());
  };
  await expectSame([
    ...inAllFormats(['member', 'list']),
    { args: ['member', 'add', 'learner1', '--peer-urls=http://127.0.0.1:1', '--learner'], afterRun: learnIds, normalize: sameIds },
    { args: ['member', 'list'], normalize: sameIds },
    { args: ['member', 'list', '-w', 'json'], normalize: sameIds },
    { args: ['member', 'list', '-w', 'fields'], normalize: sameIds },
    { args: ['member', 'update', '{NEW}', '--peer-urls=http://127.0.0.1:2,http://127.0.0.1:5'], normalize: sameIds },
    { args: ['member', 'list', '-w', 'table'], normalize: sameIds },
    { args: ['member', 'promote', '{NEW}'] },
    { args: ['member', 'remove', '{NEW}', '-w', 'json'], normalize: sameIds },
    { args: ['member', 'remove', '{NEW}'], normalize: sameIds },
    { args: ['member', 'add', 'learner2', '--peer-urls=http://127.0.0.1:6', '--learner', '-w', 'json'], afterRun: learnIds, normalize: sameIds },
    { args: ['member', 'update', '{NEW}', '--peer-urls=http://127.0.0.1:7', '-w', 'json'], normalize: sameIds },
    { args: ['member', 'remove', '{NEW}', '-w', 'fields'], normalize: sameIds },
    { args: ['member', 'add', 'x'] },
    { args: ['member', 'add', 'x', 'http://127.0.0.1:3'] },
    { args: ['member', 'add'] },
    { args: ['member', 'add', 'dup', '--peer-urls={PEER}'] },
    { args: ['member', 'remove'] },
    { args: ['member', 'remove', 'xyz'] },
    { args: ['member', 'update', '1234'] },
    { args: ['member', 'promote', '1234'] },
  ]);
});

async function learnerId(endpoint: string): Promise<string> {
  const client = new EtcdClient({ endpoints: [endpoint] });
  try {
    const { members } = await client.cluster.memberList();
    const learner = members.find((m) => m.isLearner);
    assert.ok(learner !== undefined, 'member add --learner left no learner');
    return learner.ID.toString(16);
  } finally {
    client.close();
  }
}

test('global flags, ETCDCTL_* variables, help, version and usage errors', { skip }, async () => {
  await expectSame([
    { args: ['version'], endpoints: false },
    { args: ['get', 'foo'], env: { ETCDCTL_WRITE_OUT: 'json' } },
    { args: ['get', 'foo'], env: { ETCDCTL_HEX: 'true', ETCDCTL_DIAL_TIMEOUT: 'xx' } },
    { args: ['get', 'foo'], env: { ETCDCTL_BOGUS_SETTING: 'bar' } },
    { args: ['get', 'foo'], env: { ETCDCTL_ENDPOINTS: '127.0.0.1:1' } },
    { args: ['get', 'foo', '-w', 'json'], env: { ETCDCTL_WRITE_OUT: 'fields', ETCDCTL_OTHER: 'x' } },
    { args: ['get', 'foo'], env: { ETCDCTL_COMMAND_TIMEOUT: '3s', ETCDCTL_KEEPALIVE_TIME: '10s' } },
    { args: ['get', 'foo'], endpoints: '{DEAD}, {EP}' },
    { args: ['--endpoints', '{DEAD}', 'get', 'foo'] },
    { args: ['get', 'foo'], endpoints: false, env: { ETCDCTL_ENDPOINTS: '{EP}'.replace('{EP}', twins.real.endpoint) } },
    { args: ['g', 'foo'] },
    { args: ['gett', 'foo'] },
    { args: ['comp', '1'] },
    { args: ['e', 'status'] },
    { args: ['endpoint', 'st'], sameServer: true },
    { args: ['get', 'foo', '--bogus'] },
    { args: ['get', 'foo', '-x'] },
    { args: ['get', 'foo', '--limit'] },
    { args: ['get', 'foo', '--limit=99999999999999999999'] },
    { args: ['get', 'foo', '--prefix=x'] },
    { args: ['get', 'foo', '---x'] },
    { args: ['--dial-timeout=x', 'get', 'foo'] },
    { args: ['-w=json', 'get', 'foo'] },
    { args: ['-wjson', 'get', 'foo'] },
    { args: ['--endpoints', '{EP}', '--hex', 'get', 'foo'], endpoints: false },
    ...[['get'], ['put'], ['del'], ['txn'], ['compaction'], ['version'], ['endpoint'], ['endpoint', 'status'], ['endpoint', 'hashkv'], ['endpoint', 'health'], ['member'], ['member', 'add'], ['member', 'list'], ['member', 'promote']].map(
      (path) => ({ args: [...path, '--help'], endpoints: false as const }),
    ),
    { args: ['endpoint'], endpoints: false },
    { args: ['member', 'list', '-h'], endpoints: false },
    { args: ['help', 'get'], endpoints: false },
  ]);
});
