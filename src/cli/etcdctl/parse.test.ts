import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Compare_CompareResult, Compare_CompareTarget } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { findCommand, unknownCommandMessage } from './command.js';
import { FlagError, FlagSet, splitCsv, type FlagSpec } from './flags.js';
import { parseRequestOp } from './cmd-txn.js';
import { rootCommand } from './run.js';
import { GoPanic, TxnSyntaxError, argify, goUnquote, parseCompare } from './txn-parse.js';

const specs: FlagSpec[] = [
  { name: 'limit', kind: 'int64', defaultValue: '0', usage: '' },
  { name: 'prefix', kind: 'bool', defaultValue: 'false', usage: '' },
  { name: 'write-out', shorthand: 'w', kind: 'string', defaultValue: 'simple', usage: '' },
  { name: 'interactive', shorthand: 'i', kind: 'bool', defaultValue: 'false', usage: '' },
  { name: 'endpoints', kind: 'stringSlice', defaultValue: '127.0.0.1:2379', usage: '' },
  { name: 'dial-timeout', kind: 'duration', defaultValue: '2s', usage: '' },
];

test('FlagSet parses interspersed pflag-style flags and keeps positional arguments', () => {
  const flags = new FlagSet(specs);
  const args = flags.parse(['a', '--limit', '5', '-wjson', 'b', '--prefix', '-i', '--dial-timeout=300ms', '--', '--not-a-flag']);
  assert.deepEqual(args, ['a', 'b', '--not-a-flag']);
  assert.equal(flags.int64('limit'), 5n);
  assert.equal(flags.string('write-out'), 'json');
  assert.equal(flags.bool('prefix'), true);
  assert.equal(flags.bool('interactive'), true);
  assert.equal(flags.int64('dial-timeout'), 300_000_000n);
  assert.ok(flags.changed('limit') && !flags.changed('endpoints'));
});

test('FlagSet string slices split as CSV and accumulate when repeated', () => {
  const flags = new FlagSet(specs);
  assert.deepEqual(flags.stringSlice('endpoints'), ['127.0.0.1:2379']);
  flags.parse(['--endpoints', 'a:1,b:2', '--endpoints=c:3']);
  assert.deepEqual(flags.stringSlice('endpoints'), ['a:1', 'b:2', 'c:3']);
  assert.deepEqual(splitCsv('"x,y",z'), ['x,y', 'z']);
});

test('FlagSet reports errors with pflag texts', () => {
  const error = (args: string[]): string => {
    try {
      new FlagSet(specs).parse(args);
    } catch (err) {
      assert.ok(err instanceof FlagError);
      return err.message;
    }
    assert.fail('expected a flag error');
  };
  assert.equal(error(['--bogus']), 'unknown flag: --bogus');
  assert.equal(error(['-x']), "unknown shorthand flag: 'x' in -x");
  assert.equal(error(['--limit']), 'flag needs an argument: --limit');
  assert.equal(error(['-w']), "flag needs an argument: 'w' in -w");
  assert.equal(error(['---x']), 'bad flag syntax: ---x');
  assert.equal(error(['--limit=x']), 'invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax');
  assert.equal(error(['--prefix=maybe']), 'invalid argument "maybe" for "--prefix" flag: strconv.ParseBool: parsing "maybe": invalid syntax');
});

test('findCommand resolves unique prefixes, skips flag values, and leaves ambiguous words unresolved', () => {
  const root = rootCommand();
  assert.equal(findCommand(root, ['--endpoints', 'x', 'g', 'k']).command.path, 'etcdctl get');
  assert.deepEqual(findCommand(root, ['--endpoints', 'x', 'g', 'k']).args, ['--endpoints', 'x', 'k']);
  assert.equal(findCommand(root, ['endpoint', 'st']).command.path, 'etcdctl endpoint status');
  assert.equal(findCommand(root, ['comp', '1']).command.path, 'etcdctl');
  assert.equal(findCommand(root, ['--hex', 'member', 'list']).command.path, 'etcdctl member list');
  assert.equal(unknownCommandMessage(root, 'comp'), 'unknown command "comp" for "etcdctl"\n\nDid you mean this?\n\tcompaction\n\tcompletion\n');
});

test('parseCompare reads the four targets and result operators of etcdctl compares', () => {
  const c = parseCompare('mod("k") > "5"');
  assert.equal(c.target, Compare_CompareTarget.MOD);
  assert.equal(c.result, Compare_CompareResult.GREATER);
  assert.deepEqual(c.targetUnion, { $case: 'modRevision', value: 5n });
  assert.equal(c.key.toString(), 'k');
  const v = parseCompare('val("k") != "a\\tb"');
  assert.deepEqual(v.targetUnion, { $case: 'value', value: Buffer.from('a\tb') });
  assert.equal(v.result, Compare_CompareResult.NOT_EQUAL);
  assert.equal(parseCompare('ver("k") < "1"').target, Compare_CompareTarget.VERSION);
  assert.equal(parseCompare('c("k") = "0"').target, Compare_CompareTarget.CREATE);
  assert.throws(() => parseCompare('mod("k") > 5'), { message: 'malformed comparison: mod("k") > 5; got mod("k") > ""' });
  assert.throws(() => parseCompare('x("k") = "1"'), TxnSyntaxError);
  assert.throws(() => parseCompare('ver("k") = "one"'), { message: 'invalid txn compare request: ver("k") = "one"' });
  assert.throws(() => parseCompare('mod("k") == "1"'), GoPanic);
});

test('argify and goUnquote split request lines as etcdctl does, byte for byte', () => {
  assert.deepEqual(argify('put "a b" c --prev-kv'), ['put', 'a b', 'c', '--prev-kv']);
  assert.deepEqual(argify("put 'a b' c"), ['put', 'a', 'c']);
  assert.equal(goUnquote('"\\xff\\u00e9\\101"'), '\xff\xc3\xa9A');
  assert.equal(goUnquote('`raw\\n`'), 'raw\\n');
  assert.throws(() => goUnquote('"bad\\q"'));
});

test('parseRequestOp builds range, put and delete requests with the top-level flags', () => {
  const get = parseRequestOp('get a --prefix --limit 2');
  assert.equal(get.request?.$case, 'requestRange');
  if (get.request?.$case === 'requestRange') {
    assert.equal(get.request.value.rangeEnd.toString(), 'b');
    assert.equal(get.request.value.limit, 2n);
  }
  const put = parseRequestOp('put k v --prev-kv');
  assert.ok(put.request?.$case === 'requestPut' && put.request.value.prevKv && put.request.value.value.toString() === 'v');
  const del = parseRequestOp('del k --from-key');
  assert.ok(del.request?.$case === 'requestDeleteRange' && del.request.value.rangeEnd.equals(Buffer.from([0])));
  assert.throws(() => parseRequestOp('watch k'), { message: 'invalid txn request: watch k' });
  let usage = '';
  assert.throws(() => parseRequestOp('get k --bogus', (text) => (usage = text)), TxnSyntaxError);
  assert.match(usage, /^Usage:\n {3}get \[options\] <key> \[range_end\] \[flags\]\n\nFlags:\n {6}--consistency string {3}Linearizable/);
});
