import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, isValidAuthority, repairAuthority } from './authority.js';

test('valid authorities are the ones nghttp2 accepts', () => {
  for (const ok of ['127.0.0.1:2379', 'localhost', 'etcd-0.etcd.svc:2379', '[::1]:2379', '[fe80::1%25eth0]:1', '']) {
    assert.equal(isValidAuthority(ok), true, ok);
  }
  for (const bad of ['http://127.0.0.1:2379', '#initially=[127.0.0.1:2379]', 'a b', 'user@host', 'hé', 'a\u0000']) {
    assert.equal(isValidAuthority(bad), false, bad);
  }
});

test('Go clients\' malformed authorities become the first endpoint\'s host:port', () => {
  const fallback = '10.0.0.1:2379';
  const cases: Array<[string, string]> = [
    ['127.0.0.1:2379', '127.0.0.1:2379'],
    ['http://127.0.0.1:2379', '127.0.0.1:2379'],
    ['https://etcd.example.com:2379/', 'etcd.example.com:2379'],
    ['#initially=[http://127.0.0.1:2379]', '127.0.0.1:2379'],
    ['#initially=[https://a.example:1;https://b.example:2]', 'a.example:1'],
    ['#initially=[http://[::1]:2379]', '[::1]:2379'],
    ['http://user:pw@127.0.0.1:2379', '127.0.0.1:2379'],
    ['127.0.0.1:2379/path', '127.0.0.1:2379'],
    ['unix:///var/run/etcd.sock', fallback],
    ['#initially=[]', fallback],
    ['\u00ff\u00fe', fallback],
  ];
  for (const [input, want] of cases) assert.equal(repairAuthority(input, fallback), want, input);
});

test('host:port formatting brackets IPv6', () => {
  assert.equal(formatHostPort('127.0.0.1', 2379), '127.0.0.1:2379');
  assert.equal(formatHostPort('::1', 2379), '[::1]:2379');
});
