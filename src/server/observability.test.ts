import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlarmRequest_AlarmAction, AlarmType, type AlarmRequest, type RangeRequest } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { RaftNode } from '../raftnode/raft-node.js';
import type { EtcdServer } from './etcd-server.js';
import type { Membership } from './membership.js';
import { ServerMetrics } from './metrics.js';
import { healthSource } from './observability.js';

test('the health source asks the server for its alarms (GET), its leader, and reads of one key', async () => {
  const asked: Array<AlarmRequest | undefined> = [];
  const ranges: RangeRequest[] = [];
  const server = {
    alarm: async (req?: AlarmRequest) => {
      asked.push(req);
      return { header: undefined, alarms: [{ memberID: 1n, alarm: AlarmType.NOSPACE }, { memberID: 2n, alarm: AlarmType.CORRUPT }] };
    },
    reads: { waitLinearizable: async () => {} },
    range: async (req: RangeRequest) => {
      ranges.push(req);
      return { header: undefined, kvs: [], more: false, count: 0n };
    },
  } as unknown as EtcdServer;
  const membership = { get: () => ({ isLearner: true }) } as unknown as Membership;
  let lead = 0n;
  const raft = { get lead() { return lead; } } as unknown as RaftNode;
  const alarms = [{ memberID: 1n, alarm: AlarmType.NOSPACE }, { memberID: 2n, alarm: AlarmType.CORRUPT }];
  const source = healthSource({ server, membership, raft: () => raft, memberId: 1n, metrics: new ServerMetrics(), alarms: () => alarms });
  assert.deepEqual(await source.alarms(), ['NOSPACE', 'CORRUPT']);
  assert.equal(asked.length, 0, '/health reads the applied alarms locally, without a raft round');
  assert.equal(source.hasLeader(), false);
  lead = 5n;
  assert.equal(source.hasLeader(), true);
  assert.equal(source.isLearner(), true);
  await source.linearizableRead();
  await source.serializableRead();
  assert.deepEqual(ranges.map((r) => [r.serializable, r.keysOnly, r.limit]), [[false, true, 1n], [true, true, 1n]]);
});
