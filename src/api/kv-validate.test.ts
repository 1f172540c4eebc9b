import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { type ErrorKind, isEtcdError } from '../base/errors.js';
import {
  type Compare,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  type RangeRequest_SortOrder,
  type RangeRequest_SortTarget,
  type RequestOp,
  TxnRequest,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { validateDeleteRange, validatePut, validateRange, validateTxn } from './kv-validate.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const Z = Buffer.from([0]);
const range = (key: string, extra: Partial<RangeRequest> = {}): RequestOp => ({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: B(key), ...extra }) } });
const put = (key: string, extra: Partial<PutRequest> = {}): RequestOp => ({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: B(key), value: B('v'), ...extra }) } });
const del = (key: string, end?: Buffer): RequestOp => ({ request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: B(key), rangeEnd: end ?? Buffer.alloc(0) }) } });
const txn = (t: Partial<TxnRequest>): RequestOp => ({ request: { $case: 'requestTxn', value: TxnRequest.fromPartial(t) } });
const cmp = (key: string): Compare => ({ key: B(key), rangeEnd: Buffer.alloc(0), target: 0, result: 0, targetUnion: { $case: 'version', value: 0n } });
const T = (t: Partial<TxnRequest>) => TxnRequest.fromPartial(t);

function outcome(fn: () => void): ErrorKind | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    assert.ok(isEtcdError(e), `expected an EtcdError, got ${String(e)}`);
    return e.kind;
  }
}

// Every row was run against etcd 3.4.23 (its answer is the expected value).
const txnCases: Array<[string, TxnRequest, ErrorKind | 'ok']> = [
  ['dup put', T({ success: [put('s'), put('s')] }), 'DuplicateKey'],
  ['put in deleted range', T({ success: [del('a', B('m')), put('b')] }), 'DuplicateKey'],
  ['nested put of an outer put', T({ success: [put('q'), txn({ success: [put('q')] })] }), 'DuplicateKey'],
  ['nested then and else put one key', T({ success: [txn({ success: [put('q')], failure: [put('q')] })] }), 'ok'],
  ['two nested txns put one key', T({ success: [txn({ success: [put('q')] }), txn({ failure: [put('q')] })] }), 'DuplicateKey'],
  ['nested delete covers an outer put', T({ success: [put('q'), txn({ success: [del('p', B('r'))] })] }), 'DuplicateKey'],
  ['overlapping deletes', T({ success: [del('p', B('r')), del('q')] }), 'ok'],
  ['range and put of one key', T({ success: [range('q'), put('q')] }), 'ok'],
  ['129 ops', T({ success: Array.from({ length: 129 }, (_, i) => range(`k${i}`)) }), 'TooManyOps'],
  ['128 compares and a put', T({ compare: Array.from({ length: 128 }, (_, i) => cmp(`k${i}`)), success: [put('w')] }), 'ok'],
  ['nested txn gets what is left: 100 + 29', T({ compare: Array.from({ length: 100 }, (_, i) => cmp(`k${i}`)), success: [txn({ success: Array.from({ length: 29 }, (_, i) => range(`k${i}`)) })] }), 'TooManyOps'],
  ['nested txn gets what is left: 100 + 28', T({ compare: Array.from({ length: 100 }, (_, i) => cmp(`k${i}`)), success: [txn({ success: Array.from({ length: 28 }, (_, i) => range(`k${i}`)) })] }), 'ok'],
  ['compare with an empty key', T({ compare: [cmp('')] }), 'EmptyKey'],
  ['nested put after outer put', T({ success: [put('ne'), txn({ success: [put('ne', { ignoreValue: true, value: Buffer.alloc(0) })] })] }), 'DuplicateKey'],
  ['from-key delete and a put after it', T({ success: [del('a', Z), put('b')] }), 'ok'],
  ['from-key delete and a put of its key', T({ success: [del('a', Z), put('a')] }), 'ok'],
  ['delete [a,c) and put c', T({ success: [del('a', B('c')), put('c')] }), 'ok'],
  ['reversed delete range and a put inside', T({ success: [del('c', B('a')), put('b')] }), 'ok'],
  ['nested from-key delete and an outer put', T({ success: [put('b'), txn({ success: [del('a', Z)] })] }), 'ok'],
  ['dup put in failure', T({ failure: [put('x'), put('x')] }), 'DuplicateKey'],
  ['success and failure put one key', T({ success: [put('x')], failure: [put('x')] }), 'ok'],
  ['ignore_value with a value inside a txn', T({ success: [put('x', { ignoreValue: true })] }), 'ValueProvided'],
  ['delete of an empty key inside a txn', T({ success: [del('')] }), 'EmptyKey'],
  ['too many ops is checked before empty keys', T({ compare: [cmp('')], success: Array.from({ length: 129 }, (_, i) => range(`k${i}`)) }), 'TooManyOps'],
  ['empty keys are checked before duplicates', T({ success: [put('x'), put('x'), put('')] }), 'EmptyKey'],
  ['an empty RequestOp', T({ success: [{ request: undefined }] }), 'KeyNotFound'],
  ['an empty RequestOp in a nested txn', T({ success: [txn({ success: [{ request: undefined }] })] }), 'KeyNotFound'],
];

test('txn validation answers as etcd 3.4 does', () => {
  for (const [name, req, want] of txnCases) assert.equal(outcome(() => validateTxn(req)), want, name);
});

test('maxTxnOps is configurable', () => {
  const req = T({ success: [range('a'), range('b'), range('c')] });
  assert.equal(outcome(() => validateTxn(req, { maxTxnOps: 2 })), 'TooManyOps');
  assert.equal(outcome(() => validateTxn(req, { maxTxnOps: 3 })), 'ok');
});

test('single request checks: empty key, value/lease provided with ignore flags, sort options', () => {
  assert.equal(outcome(() => validateRange(RangeRequest.fromPartial({}))), 'EmptyKey');
  assert.equal(outcome(() => validateRange(RangeRequest.fromPartial({ key: B(''), rangeEnd: B('z') }))), 'EmptyKey');
  assert.equal(outcome(() => validatePut(PutRequest.fromPartial({ key: B(''), value: B('1'), ignoreValue: true }))), 'EmptyKey');
  assert.equal(outcome(() => validatePut(PutRequest.fromPartial({ key: B('k'), value: B('1'), ignoreValue: true }))), 'ValueProvided');
  assert.equal(outcome(() => validatePut(PutRequest.fromPartial({ key: B('k'), lease: 5n, ignoreLease: true }))), 'LeaseProvided');
  assert.equal(outcome(() => validatePut(PutRequest.fromPartial({ key: B('k'), value: B('1'), lease: 3n, ignoreValue: true, ignoreLease: true }))), 'ValueProvided');
  assert.equal(outcome(() => validatePut(PutRequest.fromPartial({ key: B('k'), ignoreValue: true, ignoreLease: true }))), 'ok');
  assert.equal(outcome(() => validateDeleteRange(DeleteRangeRequest.fromPartial({}))), 'EmptyKey');
  assert.equal(outcome(() => validateRange(RangeRequest.fromPartial({ key: B('k'), sortOrder: 5 as RangeRequest_SortOrder }))), 'ok', 'etcd 3.4: an unknown order means no sort');
  assert.equal(outcome(() => validateRange(RangeRequest.fromPartial({ key: B('k'), sortOrder: 1, sortTarget: 7 as RangeRequest_SortTarget }))), 'InvalidSortOption');
  assert.equal(outcome(() => validateRange(RangeRequest.fromPartial({ key: B('k'), sortOrder: 2, sortTarget: 4 }))), 'ok');
  assert.equal(outcome(() => validateTxn(T({ success: [range('k', { sortTarget: 9 as RangeRequest_SortTarget })] }))), 'InvalidSortOption');
});

test('any txn either passes or fails with one of the documented kinds', () => {
  const key = fc.constantFrom('', 'a', 'b', 'c');
  const leaf: fc.Arbitrary<RequestOp> = fc.oneof(
    key.map((k) => range(k)),
    fc.tuple(key, fc.boolean()).map(([k, iv]) => put(k, iv ? { ignoreValue: true } : {})),
    fc.tuple(key, fc.constantFrom(undefined, Z, B('b'), B('z'))).map(([k, e]) => del(k, e)),
    fc.constant({ request: undefined } as RequestOp),
  );
  const op = fc.letrec<{ op: RequestOp }>((tie) => ({
    op: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.record({ s: fc.array(tie('op'), { maxLength: 3 }), f: fc.array(tie('op'), { maxLength: 3 }) }).map(({ s, f }) => txn({ success: s, failure: f }))),
  })).op;
  fc.assert(
    fc.property(fc.array(op, { maxLength: 4 }), fc.array(op, { maxLength: 4 }), (s, f) => {
      const kind = outcome(() => validateTxn(T({ success: s, failure: f }), { maxTxnOps: 3 }));
      assert.ok(['ok', 'EmptyKey', 'KeyNotFound', 'ValueProvided', 'TooManyOps', 'DuplicateKey'].includes(kind), kind);
    }),
  );
});
