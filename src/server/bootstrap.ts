/**
 * Starting a member: lay out or reopen the data dir, recover raft state from the snapshot and the WAL,
 * open the backend, build the raft node and the server, and start serving clients.
 *
 * A new cluster is bootstrapped as etcd does it: the log starts with one committed conf change per
 * initial member at term 1, so every member derives the same configuration from the same flags.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from '../base/logger.js';
import { clusterVersion, etcdApiVersion } from '../base/version.js';
import { clusterService, kvService, maintenanceService } from '../api/grpc/services.js';
import { leaseService } from '../api/grpc/lease-service.js';
import { Lessor } from '../lease/lessor.js';
import { LeaseApplier } from './apply/lease-apply.js';
import { H2Server } from '../api/h2/h2-server.js';
import { createHttpHandler, createMetricsHandler } from '../api/http/http-handler.js';
import { MetricsListener } from '../api/http/metrics-listener.js';
import { createGateway } from '../api/gateway/gateway.js';
import { ServerMetrics } from './metrics.js';
import { healthSource, lateHeartbeatReport, metricSources, slowApplyReport } from './observability.js';
import { watchService } from '../api/grpc/watch-service.js';
import { concurrencyServices } from '../concurrency/services.js';
import { effectiveProgressIntervalMs } from '../watch/limits.js';
import { WatchableStore } from '../watch/watchable-store.js';
import { MemberInfo } from '../gen/etcdts/internal.js';
import { RawNode } from '../raft/raw-node.js';
import { MemoryStorage } from '../raft/memory-storage.js';
import { StateRole, type Rng } from '../raft/contract.js';
import type { Snapshot } from '../raft/types.js';
import { RaftNode } from '../raftnode/raft-node.js';
import { PeerTransport } from '../raftnode/transport/peer-transport.js';
import { HeartbeatWatch } from '../raftnode/heartbeat-watch.js';
import { Wal } from '../storage/wal/wal.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { Applier } from './applier.js';
import type { ServerConfig } from './config.js';
import { EtcdServer } from './etcd-server.js';
import { clusterId as deriveClusterId, idToHex, memberId as deriveMemberId } from './ids.js';
import { openKvStore } from './kv-store-impl.js';
import { Membership } from './membership.js';
import { WaitRegistry } from './wait.js';
import { Maintenance } from './maintenance/maintenance.js';
import { AutoCompactor } from './maintenance/auto-compactor.js';
import { CorruptMonitor, hashKvPeerHandler, initialCorruptCheck } from './maintenance/corrupt-check.js';
import type { AlarmResponse } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { fetchRemoteCluster, membersHandler } from './join.js';
import { resolveTls } from './tls-config.js';
import { logRejected, peerTlsOf } from '../tls/tls-info.js';
import type { PeerTls } from '../raftnode/transport/peer-transport.js';
import { leaseHandler, peerRequests } from './lease-forward.js';
import { authService } from '../api/grpc/auth-service.js';
import { requestContext } from '../base/request-context.js';
import { AuthApplier } from './apply/auth-apply.js';
import { wireAuth } from '../auth/wire.js';

export interface RunningMember {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly server: EtcdServer;
  readonly clientPorts: readonly number[];
  /** One per --listen-metrics-urls URL. */
  readonly metricsPorts: readonly number[];
  /** Settles when the member must end on its own (removed from the cluster, or its state is unusable). */
  readonly ended: Promise<{ code: number; reason: string }>;
  stop(): Promise<void>;
}

/** Limits named in one place. */
const limits = {
  waitersMax: 100_000,
  maxSizePerMsgBytes: 1024 * 1024,
  maxInflightMsgs: 4096 / 8,
  maxInflightBytes: 64 * 1024 * 1024,
  maxUncommittedEntriesBytes: 1 << 30,
};

/** The WAL and snapshotter log in pino's (fields, message) order. */
function pinoShaped(log: Logger): { info(f: Record<string, unknown>, m: string): void; warn(f: Record<string, unknown>, m: string): void } {
  return { info: (f, m) => log.info(m, f), warn: (f, m) => log.warn(m, f) };
}

/** etcd lets a gRPC request exceed --max-request-bytes by this much (the gateway's requests too). */
const grpcOverheadBytes = 512 * 1024;

const cryptoRng: Rng = { intn: (n) => randomInt(n) };

interface Recovered {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly wal: Wal;
  readonly storage: MemoryStorage;
  readonly snapshot: Snapshot | null;
  readonly fresh: boolean;
  /** Set for a brand-new cluster: the members its log starts with. */
  readonly bootstrapPeers?: ReadonlyArray<{ id: bigint; context: Uint8Array }>;
  readonly bootstrapMembers?: ReadonlyArray<{ id: bigint; peerUrls: readonly string[] }>;
}

function dirs(cfg: ServerConfig): { member: string; wal: string; snap: string; db: string } {
  const member = join(cfg.dataDir, 'member');
  const snap = join(member, 'snap');
  return { member, wal: cfg.walDir || join(member, 'wal'), snap, db: join(snap, 'db') };
}

async function joinExisting(cfg: ServerConfig, log: Logger, peerTls: PeerTls | undefined): Promise<Recovered> {
  const self = cfg.initialCluster.find((m) => m.name === cfg.name);
  if (!self) throw new Error(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  const others = cfg.initialCluster.filter((m) => m.name !== cfg.name).flatMap((m) => m.peerUrls);
  const remote = await fetchRemoteCluster(others, { timeoutMs: 5000, tls: peerTls?.clientOptions() });
  const mine = [...cfg.initialAdvertisePeerUrls].sort().join(',');
  const me = remote.members.find((m) => [...m.peerUrls].sort().join(',') === mine);
  if (!me) {
    throw new Error(`no member with peer URLs ${mine} in the existing cluster ${idToHex(remote.clusterId)}; add it first with 'etcdctl member add'`);
  }
  const d = dirs(cfg);
  mkdirSync(d.snap, { recursive: true });
  const wal = Wal.create(d.wal, { metadata: { memberId: me.id, clusterId: remote.clusterId }, segmentFilesMax: cfg.maxWals || Infinity, logger: pinoShaped(log) });
  log.info('joining an existing cluster', { 'local-member-id': idToHex(me.id), 'cluster-id': idToHex(remote.clusterId) });
  return {
    memberId: me.id, clusterId: remote.clusterId, wal, storage: new MemoryStorage(), snapshot: null, fresh: false,
    bootstrapMembers: remote.members,
  };
}

function bootstrapNew(cfg: ServerConfig, log: Logger): Recovered {
  const self = cfg.initialCluster.find((m) => m.name === cfg.name);
  if (!self) throw new Error(`couldn't find local name "${cfg.name}" in the initial cluster configuration`);
  const advertised = [...cfg.initialAdvertisePeerUrls].sort().join(',');
  if ([...self.peerUrls].map((u) => u.replace(/\/$/, '')).sort().join(',') !== advertised) {
    throw new Error(`--initial-cluster has ${cfg.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${cfg.initialAdvertisePeerUrls.join(',')}`);
  }
  const members = cfg.initialCluster.map((m) => ({
    ...m,
    id: deriveMemberId(m.peerUrls, { clusterToken: cfg.initialClusterToken }),
  })).sort((a, b) => (a.id < b.id ? -1 : 1));
  const memberId = deriveMemberId(self.peerUrls, { clusterToken: cfg.initialClusterToken });
  const clusterId = deriveClusterId(members.map((m) => m.id));
  const d = dirs(cfg);
  mkdirSync(d.snap, { recursive: true });
  const wal = Wal.create(d.wal, { metadata: { memberId, clusterId }, segmentFilesMax: cfg.maxWals || Infinity, logger: pinoShaped(log) });
  const bootstrapPeers = members.map((m) => ({
    id: m.id,
    context: MemberInfo.encode({ id: m.id, name: m.name, peerUrls: [...m.peerUrls], clientUrls: [], isLearner: false, requestId: 0n }).finish(),
  }));
  const storage = new MemoryStorage();
  log.info('starting local member', { 'local-member-id': idToHex(memberId), 'cluster-id': idToHex(clusterId) });
  return { memberId, clusterId, wal, storage, snapshot: null, fresh: true, bootstrapPeers, bootstrapMembers: members };
}

function recoverExisting(cfg: ServerConfig, log: Logger, snapshotter: Snapshotter): Recovered {
  const d = dirs(cfg);
  const snapshot = snapshotter.loadNewestAvailable(Wal.readSnapshotMarkers(d.wal));
  const opened = Wal.open(d.wal, {
    snapshot: snapshot ? { index: snapshot.metadata.index, term: snapshot.metadata.term } : { index: 0, term: 0 },
    segmentFilesMax: cfg.maxWals || Infinity,
    logger: pinoShaped(log),
  });
  const storage = new MemoryStorage();
  if (snapshot) storage.applySnapshot(snapshot);
  storage.setHardState(opened.hardState);
  storage.append(opened.entries);
  const { memberId, clusterId } = opened.metadata;
  log.info('restarting local member', {
    'local-member-id': idToHex(memberId),
    'cluster-id': idToHex(clusterId),
    'commit-index': opened.hardState.commit,
  });
  return { memberId, clusterId, wal: opened.wal, storage, snapshot, fresh: false };
}

/**
 * The lessor, with etcd's minimum TTL (1.5 election timeouts, whole ticks, rounded up to seconds). Its
 * proposals go through the server, which exists only after the store the lessor must be recovered into.
 */
function newLessor(o: { electionTicks: number; heartbeatMs: number; log: Logger; server: () => EtcdServer }): Lessor {
  const minTtlMs = Math.floor((3 * o.electionTicks) / 2) * o.heartbeatMs;
  return new Lessor({
    minTtlSeconds: Math.ceil(minTtlMs / 1000),
    clock: () => performance.now(),
    log: o.log,
    proposer: {
      // Expiry is the server's own act: with auth on it revokes with root's rights (etcd's WithRoot).
      revoke: (id) => requestContext.run({ deadlineMs: Infinity, internal: true }, async () => void (await o.server().leaseRevoke({ ID: id }))),
      checkpoint: (checkpoints) => o.server().leaseCheckpoint(checkpoints),
    },
  });
}

/** Starts a member and serves clients; resolves once it listens. */
export async function startMember(cfg: ServerConfig, rootLog: Logger): Promise<RunningMember> {
  const log = rootLog.child('etcdserver');
  log.info('starting an etcd server', {
    'etcd-version': etcdApiVersion, 'node-version': process.version, name: cfg.name, 'data-dir': cfg.dataDir,
    'initial-cluster-state': cfg.initialClusterState, 'snapshot-count': cfg.snapshotCount,
  });
  const d = dirs(cfg);
  const embedLog = rootLog.child('embed');
  const tls = resolveTls(cfg.tls, { dataDir: cfg.dataDir, log: embedLog, listenClientUrls: cfg.listenClientUrls, listenPeerUrls: cfg.listenPeerUrls });
  const peerTls = tls.peer === null ? undefined : peerTlsOf(tls.peer, embedLog);
  mkdirSync(d.snap, { recursive: true });
  const snapshotter = new Snapshotter(d.snap, { logger: pinoShaped(log) });
  const rec = existsSync(d.wal) && Wal.exists(d.wal)
    ? recoverExisting(cfg, log, snapshotter)
    : cfg.initialClusterState === 'existing' ? await joinExisting(cfg, log, peerTls) : bootstrapNew(cfg, log);
  let watchable: WatchableStore | null = null;
  const metrics = new ServerMetrics();
  rec.wal.reportTo(metrics.wal);
  let lastLead = 0n;
  let transportRef: PeerTransport | null = null;
  let endMember: (outcome: { code: number; reason: string }) => void = () => {};
  const ended = new Promise<{ code: number; reason: string }>((resolve) => {
    endMember = resolve;
  });
  const electionTicks = Math.max(1, Math.round(cfg.electionMs / cfg.heartbeatMs));
  const lessor = newLessor({ electionTicks, heartbeatMs: cfg.heartbeatMs, log: rootLog.child('lease'), server: () => server });
  const store = await openKvStore(d.db, {
    log: rootLog.child('mvcc'), batchIntervalMs: cfg.backendBatchIntervalMs, batchLimit: cfg.backendBatchLimit,
    compactionBatchLimit: cfg.compactionBatchLimit, leases: lessor,
    onEvents: (events, revision) => watchable?.notify(events, revision),
    metrics: { backend: metrics.backend, mvcc: metrics.mvcc },
  });
  watchable = new WatchableStore({ history: store.watchHistory(), log: rootLog.child('mvcc') });
  const membership = new Membership(store, { clusterId: rec.clusterId });
  const waits = new WaitRegistry({ waitersMax: limits.waitersMax });
  const maintenance: Maintenance = new Maintenance({
    log: rootLog.child('etcdserver'), localId: rec.memberId, store, quotaBackendBytes: cfg.quotaBackendBytes,
    proposeAlarm: (req): Promise<AlarmResponse> => server.alarm(req),
  });
  const auth = wireAuth({ ...cfg, clientCertAuth: cfg.tls.client.clientCertAuth }, {
    backend: () => store.authBackend(), log: rootLog.child('auth'),
    applied: () => raftNode?.appliedIndex ?? 0, requestTimeoutMs: 5000 + 2 * cfg.electionMs,
    propose: (body) => server.proposeAuth(body), waitLinearizable: () => server.reads.waitLinearizable(),
    header: () => server.header(),
  });
  const server = new EtcdServer({
    maintenance,
    log, memberId: rec.memberId, store, membership, waits, lessor,
    requestBytesMax: cfg.requestBytesMax, maxTxnOps: cfg.maxTxnOps, electionMs: cfg.electionMs,
    clusterToken: cfg.initialClusterToken, strictReconfigCheck: cfg.strictReconfigCheck,
    peerActiveSinceMs: (id) => transportRef?.peerStats(id)?.streamingSinceMs ?? null,
    peerClientTls: peerTls?.clientOptions,
    auth: auth.server,
  });
  const snapshotIndex = rec.snapshot?.metadata.index ?? 0;
  const rawNode = new RawNode({
    id: rec.memberId, storage: rec.storage, rng: cryptoRng, electionTicks, heartbeatTicks: 1,
    appliedIndex: snapshotIndex,
    maxSizePerMsgBytes: limits.maxSizePerMsgBytes, maxInflightMsgs: limits.maxInflightMsgs,
    maxInflightBytes: limits.maxInflightBytes, maxUncommittedEntriesBytes: limits.maxUncommittedEntriesBytes,
    preVote: cfg.preVote, checkQuorum: true, readOnlyOption: 'safe', disableProposalForwarding: false,
  });
  if (rec.bootstrapPeers) rawNode.bootstrap(rec.bootstrapPeers);
  let raftNode: RaftNode | null = null;
  let clusterVersionDecided = false;
  const applier = new Applier({
    store, membership, waits, log, localId: rec.memberId,
    rawNode: () => rawNode,
    term: () => raftNode?.term ?? 0,
    onClusterVersion: (v) => {
      clusterVersionDecided = true;
      log.info('cluster version is updated', { 'cluster-version': v });
    },
    onRemovedSelf: () => {
      log.warn('the member has been permanently removed from the cluster');
      endMember({ code: 0, reason: 'removed from the cluster' });
    },
    snapDir: d.snap,
    // Watchers catch up at once from the replaced store's history rather than at the next write.
    onRestored: () => {
      maintenance.reload();
      auth.store.reload();
      watchable?.resync();
      metrics.snapshotReceived.inc({ From: idToHex(raftNode?.lead ?? 0n) });
    },
    leases: new LeaseApplier({ lessor, store }),
    stages: [new AuthApplier({ store: auth.store, tokens: auth.tokens, leases: lessor }).asStage(), maintenance.applyStage],
    // etcd promotes the lessor once the leader has applied everything up to its own first entry.
    onEmptyEntry: (e) => {
      if (raftNode?.isLeader && e.term === raftNode.term) lessor.promote(electionTicks * cfg.heartbeatMs);
    },
    slowApply: slowApplyReport({ metrics, log, thresholdMs: cfg.warningApplyDurationMs }),
  }, { confState: rec.snapshot?.metadata.confState ?? rawNode.status().config });
  const transport: PeerTransport = new PeerTransport({
    localId: rec.memberId,
    clusterId: rec.clusterId,
    listenUrls: cfg.listenPeerUrls,
    log: rootLog.child('rafthttp'),
    onMessage: (m) => raftNode?.step(m),
    onUnreachable: (peer) => raftNode?.withRawNode((rn) => rn.reportUnreachable(peer)),
    onSnapshotStatus: (peer, status) => {
      if (status === 'finish') metrics.snapshotSent.inc({ To: idToHex(peer) });
      raftNode?.withRawNode((rn) => rn.reportSnapshot(peer, status));
    },
    onRemoved: (byPeer) => {
      log.warn('the member has been permanently removed from the cluster', { 'reported-by': idToHex(byPeer) });
      endMember({ code: 0, reason: 'removed from the cluster' });
    },
    otherRequest: peerRequests([
      hashKvPeerHandler({ localId: rec.memberId, store }),
      membersHandler(membership, (id) => server.promoteForwarded(id)),
      leaseHandler({ lessor, isLeader: () => raftNode?.isLeader ?? false, log: rootLog.child('lease') }),
    ]),
    ...(peerTls !== undefined ? { tls: peerTls } : {}),
    onRtt: (peer, rttMs) => metrics.observeRtt(peer, rttMs),
  });
  transportRef = transport;
  await transport.start();
  const peerUrlsById = new Map<bigint, readonly string[]>(
    (rec.bootstrapMembers ?? membership.list()).map((m) => [m.id, m.peerUrls]),
  );
  for (const [id, urls] of peerUrlsById) if (id !== rec.memberId) transport.addPeer(id, urls);
  membership.observe({
    onUpsert: (m) => {
      if (m.id !== rec.memberId) transport.addPeer(m.id, m.peerUrls);
    },
    onRemove: (id) => {
      if (id !== rec.memberId) transport.removePeer(id);
    },
  });
  if (cfg.initialCorruptCheck && !rec.fresh && !rec.bootstrapMembers) {
    // etcd checks a restarted member before it takes part in raft; a new or joining member has nothing to compare.
    await initialCorruptCheck({
      localId: rec.memberId, store, log, timeoutMs: 5000 + 2 * cfg.electionMs, tls: peerTls?.clientOptions,
      peers: membership.list().filter((m) => m.id !== rec.memberId),
    });
  }
  const compactor = cfg.autoCompaction === null ? null : new AutoCompactor(cfg.autoCompaction, {
    log: rootLog.child('compactor'), rev: () => store.rev(),
    compact: async (rev) => void (await server.compact({ revision: BigInt(rev), physical: false })),
  });
  let published = false;
  const heartbeats = new HeartbeatWatch(transport, {
    heartbeatMs: cfg.heartbeatMs, now: () => performance.now(), onLate: lateHeartbeatReport({ metrics, log, heartbeatMs: cfg.heartbeatMs }),
  });
  raftNode = new RaftNode({
    id: rec.memberId, rawNode, logStore: rec.storage, wal: rec.wal, snapshotter, transport: heartbeats,
    stateMachine: applier, log: rootLog.child('raft'), tickMs: cfg.heartbeatMs,
    snapshotCount: cfg.snapshotCount, catchUpEntries: cfg.snapshotCatchUpEntries,
    appliedIndex: snapshotIndex, snapshotIndex, snapshotTerm: rec.snapshot?.metadata.term ?? 0, maxSnapshots: cfg.maxSnapshots, unsafeNoFsync: cfg.unsafeNoFsync,
    acceptForwardedProposal: (data) => server.acceptForwardedProposal(data),
    events: {
      onSoftState: (ss, term) => {
        metrics.hasLeader.set(ss.lead === 0n ? 0 : 1);
        // A restarted member's cluster already has its version, whether or not its entry is replayed.
        if (ss.lead !== 0n && !rec.fresh) clusterVersionDecided = true;
        metrics.isLeader.set(ss.role === StateRole.Leader ? 1 : 0);
        if (ss.lead !== 0n && ss.lead !== lastLead) metrics.leaderChanges.inc();
        if (ss.lead !== lastLead) heartbeats.reset();
        lastLead = ss.lead;
        server.onLeaderChange(ss.lead);
        if (ss.role !== StateRole.Leader) lessor.demote();
        compactor?.setLeader(ss.role === StateRole.Leader);
        if (ss.lead !== 0n) rootLog.child('raft').info(`raft.node: ${idToHex(rec.memberId)} elected leader ${idToHex(ss.lead)} at term ${term}`);
        if (ss.role === StateRole.Leader && rec.fresh) void server.publishClusterVersion(clusterVersion).catch(() => {});
        if (ss.lead !== 0n && !published) {
          published = true;
          void server.publishAttributes({ name: cfg.name, clientUrls: cfg.advertiseClientUrls }).catch((err: unknown) => {
            published = false;
            log.warn('failed to publish local member to cluster through raft', { error: String(err) });
          });
        }
      },
      onReadStates: (states) => server.reads.onReadStates(states),
      onApplied: (index) => {
        server.reads.onApplied(index);
        auth.onApplied(index);
      },
      onFatal: (err) => endMember({ code: 1, reason: String(err) }),
    },
  });
  server.attachRaft(raftNode);
  raftNode.start();
  lessor.start();
  compactor?.start();
  const corruptMonitor = new CorruptMonitor({
    localId: rec.memberId, store, log, timeoutMs: 5000 + 2 * cfg.electionMs, intervalMs: cfg.corruptCheckTimeMs, tls: peerTls?.clientOptions,
    peers: () => membership.list().filter((m) => m.id !== rec.memberId),
    isLeader: () => raftNode?.isLeader ?? false,
    linearizable: () => server.reads.waitLinearizable(),
    proposeAlarm: (req) => server.alarm(req),
  });
  corruptMonitor.start();
  if (cfg.initialElectionTickAdvance && rec.fresh && cfg.initialCluster.length === 1) {
    // A single member need not wait a whole election timeout for peers that do not exist.
    log.info('started as single-node; fast-forwarding election ticks', { 'local-member-id': idToHex(rec.memberId), 'forward-ticks': electionTicks - 1 });
    setImmediate(() => raftNode?.fastForwardTicks(electionTicks - 1));
  }
  const progress = effectiveProgressIntervalMs(cfg.watchProgressNotifyIntervalMs);
  if (progress.raised) log.warn('adjusting watch progress notify interval to minimum period', { 'min-watch-progress-notify-interval': `${progress.intervalMs}ms` });
  const watch = watchService({
    store: watchable, header: (rev) => server.header(rev), requestBytesMax: cfg.requestBytesMax,
    progressIntervalMs: progress.intervalMs, log: rootLog.child('v3rpc'),
    authorizeCreate: (credentials, range) => auth.server.checkWatch(credentials, range),
  });
  metrics.attach(metricSources({ server, store, membership, raft: () => raftNode, memberId: rec.memberId, clusterVersionDecided: () => clusterVersionDecided }));
  const health = healthSource({ server, membership, raft: () => raftNode, memberId: rec.memberId, metrics, alarms: () => maintenance.alarms.get() });
  // One list for gRPC and the HTTP/JSON gateway: a service registered here is served by both.
  const services = [
    kvService(server, rootLog.child('v3rpc')), maintenanceService(server, rootLog.child('v3rpc')),
    clusterService(server, rootLog.child('v3rpc')), leaseService(server, rootLog.child('v3rpc')), watch,
    ...concurrencyServices({ kv: server, watches: watchable, header: (rev) => server.header(rev) }, rootLog.child('v3rpc')),
    authService(auth.server, rootLog.child('v3rpc')),
  ];
  const httpHandler = createHttpHandler({
    gateway: createGateway({ services, receiveBytesMax: cfg.requestBytesMax + grpcOverheadBytes, log: rootLog.child('v3rpc') }),
    metrics: metrics.registry,
    health,
  });
  const clientTls = tls.client;
  const grpc = new H2Server(
    services,
    {
      urls: cfg.listenClientUrls, requestBytesMax: cfg.requestBytesMax, maxConcurrentStreams: cfg.maxConcurrentStreams,
      keepaliveMinTimeMs: cfg.grpcKeepaliveMinTimeMs, keepaliveIntervalMs: cfg.grpcKeepaliveIntervalMs,
      keepaliveTimeoutMs: cfg.grpcKeepaliveTimeoutMs, log: embedLog, httpHandler, authorityFront: true,
      ...(clientTls !== null ? {
        tls: clientTls.serverOptions(),
        tlsCheck: (socket: TLSSocket) => clientTls.checkIncoming(socket),
        onTlsReject: (socket: TLSSocket, err: Error) => logRejected(embedLog, { socket, err }),
        onTlsServer: (server: TlsServer) => clientTls.keepCurrent(server, embedLog),
      } : {}),
      metrics: metrics.grpc,
    },
  );
  await grpc.listen(cfg.listenClientUrls);
  const metricsListener = await MetricsListener.listen(cfg.listenMetricsUrls, createMetricsHandler({ metrics: metrics.registry, health }), rootLog.child('embed'));
  log.info('now serving peer/client/metrics', {
    'local-member-id': idToHex(rec.memberId),
    'advertise-client-urls': cfg.advertiseClientUrls,
    'listen-client-urls': cfg.listenClientUrls.map(String),
  });
  return {
    memberId: rec.memberId,
    clusterId: rec.clusterId,
    server,
    clientPorts: grpc.boundPorts,
    metricsPorts: metricsListener.boundPorts,
    ended,
    stop: async () => {
      const embed = rootLog.child('embed');
      embed.info('closing etcd server', { name: cfg.name, 'data-dir': cfg.dataDir });
      watchable?.close();
      await grpc.close(2000);
      await metricsListener.close();
      lessor.stop();
      compactor?.stop();
      corruptMonitor.stop();
      auth.tokens.close();
      raftNode?.stop();
      await transport.close();
      server.stop();
      await store.forceCommit();
      rec.wal.close();
      await store.close();
      embed.info('closed etcd server', { name: cfg.name, 'data-dir': cfg.dataDir });
    },
  };
}
