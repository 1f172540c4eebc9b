/**
 * The member's Prometheus metrics, under etcd's names and labels. Only what etcd-ts measures today is
 * exported; the rest of etcd's set comes with the operations work.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { etcdApiVersion } from '../base/version.js';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly hasLeader = new Gauge({ name: 'etcd_server_has_leader', help: 'Whether or not a leader exists. 1 is existence, 0 is not.', registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'etcd_server_is_leader', help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.', registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.', registers: [this.registry] });
  readonly snapshotReceived = new Counter({
    name: 'etcd_network_snapshot_receive_success', help: 'Total number of successful snapshot receives', labelNames: ['From'], registers: [this.registry],
  });
  readonly snapshotSent = new Counter({
    name: 'etcd_network_snapshot_send_success', help: 'Total number of successful snapshot sends', labelNames: ['To'], registers: [this.registry],
  });

  constructor() {
    new Gauge({ name: 'etcd_server_version', help: 'Which version is running. 1 for \'server_version\' label with current version.', labelNames: ['server_version'], registers: [this.registry] })
      .set({ server_version: etcdApiVersion }, 1);
    collectDefaultMetrics({ register: this.registry });
  }
}
