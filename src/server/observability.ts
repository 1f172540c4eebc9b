/**
 * What /metrics and the health endpoints read from a running member, and how the member reports slow
 * applies and late heartbeats: gathered in one place so bootstrap only wires them.
 */
import type { HealthSource } from '../api/http/health.js';
import {
  alarmTypeToJSON, RangeRequest, type AlarmMember,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { Logger } from '../base/logger.js';
import type { RaftNode } from '../raftnode/raft-node.js';
import type { ApplierOptions } from './applier.js';
import { idToHex } from './ids.js';
import type { EtcdServer } from './etcd-server.js';
import type { KvStore } from './kv-store.js';
import type { Membership } from './membership.js';
import type { MetricSources, ServerMetrics } from './metrics.js';

interface MemberParts {
  readonly server: EtcdServer;
  readonly membership: Membership;
  /** Null until the raft node exists. */
  readonly raft: () => RaftNode | null;
  readonly memberId: bigint;
}

export function metricSources(m: MemberParts & { store: KvStore; clusterVersionDecided: () => boolean }): MetricSources {
  return {
    memberId: m.memberId,
    committedIndex: () => m.raft()?.committedIndex ?? 0,
    appliedIndex: () => m.raft()?.appliedIndex ?? 0,
    proposalsPending: () => m.server.proposalsPending,
    proposalsFailed: () => m.server.proposalsFailed,
    isLearner: () => m.membership.get(m.memberId)?.isLearner ?? false,
    clusterVersion: () => (m.clusterVersionDecided() ? m.server.clusterVersion : null),
    dbSizeBytes: () => m.store.dbSizeBytes(),
    dbSizeInUseBytes: () => m.store.dbSizeInUseBytes(),
    liveKeys: () => m.store.liveKeys(),
    revision: () => m.store.rev(),
    compactRevision: () => m.store.compactRev(),
  };
}

/** etcd 3.5's readiness reads are ordinary Range requests of one key, keys only. */
function probeRange(serializable: boolean): RangeRequest {
  return RangeRequest.fromPartial({ key: Buffer.from('health'), keysOnly: true, limit: 1n, serializable });
}

/**
 * /health reads this member's applied alarm list, as etcd 3.4 does (no raft round: a member without a
 * leader must still answer at once).
 */
export function healthSource(m: MemberParts & { metrics: ServerMetrics; alarms: () => readonly AlarmMember[] }): HealthSource {
  return {
    alarms: async () => m.alarms().map((a) => alarmTypeToJSON(a.alarm)),
    hasLeader: () => (m.raft()?.lead ?? 0n) !== 0n,
    quorumRead: () => m.server.reads.waitLinearizable(),
    linearizableRead: async () => void (await m.server.range(probeRange(false))),
    serializableRead: async () => void (await m.server.range(probeRange(true))),
    isLearner: () => m.membership.get(m.memberId)?.isLearner ?? false,
    onHealth: (healthy) => m.metrics.healthChecked(healthy),
  };
}

/** etcd's answer to an apply slower than --experimental-warning-apply-duration: a warning and a count. */
export function slowApplyReport(o: { metrics: ServerMetrics; log: Logger; thresholdMs: number }): NonNullable<ApplierOptions['slowApply']> {
  return {
    thresholdMs: o.thresholdMs,
    onSlow: (request, tookMs) => {
      o.metrics.slowApply();
      o.log.warn('apply request took too long', { took: `${tookMs.toFixed(3)}ms`, 'expected-duration': `${o.thresholdMs}ms`, request });
    },
  };
}

/** etcd's answer to a leader's late heartbeat: a warning and a count. */
export function lateHeartbeatReport(o: { metrics: ServerMetrics; log: Logger; heartbeatMs: number }): (peer: bigint, exceededMs: number) => void {
  return (peer, exceededMs) => {
    o.metrics.heartbeatSendFailure();
    o.log.warn('leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk', {
      to: idToHex(peer), 'heartbeat-interval': `${o.heartbeatMs}ms`, 'expected-duration': `${2 * o.heartbeatMs}ms`,
      'exceeded-duration': `${exceededMs.toFixed(3)}ms`,
    });
  };
}
