import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterId, idToHex, memberId } from './ids.js';

test('member and cluster ids match what etcd 3.4 derives for the same flags', () => {
  // Observed from /usr/bin/etcd started with --initial-advertise-peer-urls http://127.0.0.1:23801
  // and the default token: "starting local member","local-member-id":"bdae9bbc11dd390d","cluster-id":"d1cfaf999eb97a2a".
  const id = memberId(['http://127.0.0.1:23801'], { clusterToken: 'etcd-cluster' });
  assert.equal(idToHex(id), 'bdae9bbc11dd390d');
  assert.equal(idToHex(clusterId([id])), 'd1cfaf999eb97a2a');
});

test('member id ignores peer URL order; cluster id ignores member order', () => {
  const a = memberId(['http://b:2380', 'http://a:2380'], { clusterToken: 't' });
  const b = memberId(['http://a:2380', 'http://b:2380'], { clusterToken: 't' });
  assert.equal(a, b);
  assert.equal(clusterId([1n, 2n, 3n]), clusterId([3n, 1n, 2n]));
  assert.notEqual(memberId(['http://a:2380'], { clusterToken: 't', nowUnixSeconds: 5 }), memberId(['http://a:2380'], { clusterToken: 't' }));
});
