import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcCode } from '../base/errors.js';
import { parseEndpoint, EndpointError } from './endpoints.js';
import { ClientError, grpcCodeName, isClientError } from './errors.js';
import { fromKeyRangeEnd, prefixRangeEnd } from './ranges.js';

test('parseEndpoint accepts the endpoint forms etcd clients accept', () => {
  assert.deepEqual(parseEndpoint('127.0.0.1:2379'), { raw: '127.0.0.1:2379', target: '127.0.0.1:2379', secure: false });
  assert.deepEqual(parseEndpoint('http://10.0.0.1:2379'), { raw: 'http://10.0.0.1:2379', target: '10.0.0.1:2379', secure: false });
  assert.deepEqual(parseEndpoint('https://etcd.example:2379/'), { raw: 'https://etcd.example:2379/', target: 'etcd.example:2379', secure: true });
  assert.equal(parseEndpoint('unix:///run/etcd.sock').target, 'unix:/run/etcd.sock');
  assert.equal(parseEndpoint('[::1]:2379').target, '[::1]:2379');
  assert.throws(() => parseEndpoint(''), EndpointError);
  assert.throws(() => parseEndpoint('ftp://x:1'), EndpointError);
  assert.throws(() => parseEndpoint('http://'), EndpointError);
});

test('prefixRangeEnd increments the last byte below 0xff; an all-0xff prefix means every key from it', () => {
  assert.deepEqual(prefixRangeEnd(Buffer.from('abc')), Buffer.from('abd'));
  assert.deepEqual(prefixRangeEnd(Buffer.from([0x61, 0xff, 0xff])), Buffer.from([0x62]));
  assert.deepEqual(prefixRangeEnd(Buffer.from([0xff])), fromKeyRangeEnd());
  const input = Buffer.from('k');
  prefixRangeEnd(input);
  assert.equal(input.toString(), 'k', 'the prefix itself is not modified');
});

test('ClientError carries the gRPC code and recognises etcd error table entries by message', () => {
  const e = new ClientError(GrpcCode.InvalidArgument, 'etcdserver: key is not provided', { endpoint: 'a:1' });
  assert.equal(e.kind, 'EmptyKey');
  assert.equal(e.codeName, 'InvalidArgument');
  assert.equal(e.message, 'etcdserver: key is not provided');
  assert.ok(isClientError(e, 'EmptyKey') && !isClientError(e, 'Compacted'));
  assert.equal(new ClientError(GrpcCode.Unknown, 'something else').kind, undefined);
  assert.equal(grpcCodeName(14), 'Unavailable');
  assert.equal(grpcCodeName(99), 'Code(99)');
});
