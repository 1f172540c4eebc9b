/**
 * The etcd server: a client request becomes a raft proposal; the client is answered with the result of
 * applying it. Linearizable reads wait for a ReadIndex round, serializable reads use local state.
 * Not a god object: apply lives in Applier, reads in ReadIndexCoordinator, membership in Membership.
 */
import type { ConnectionOptions } from 'node:tls';
import { EtcdError } from '../base/errors.js';
import { clientDeadlineMs } from '../base/request-context.js';
import type { Logger } from '../base/logger.js';
import { clusterVersionShort, etcdApiVersion } from '../base/version.js';
import type { ClusterApi, KvApi, MaintenanceApi } from '../api/grpc/services.js';
import type { LeaseApi } from '../api/grpc/lease-service.js';
import { leaseLimits, type Lessor } from '../lease/lessor.js';
import { LeaseForwarder } from './lease-forward.js';
import type {
  AlarmRequest,
  AlarmResponse,
  CompactionRequest,
  CompactionResponse,
  DefragmentResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HashKVRequest,
  HashKVResponse,
  HashResponse,
  MemberAddRequest,
  LeaseCheckpoint,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  ResponseHeader,
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { RaftRequest } from '../gen/etcdts/internal.js';
import { ProposalDroppedError } from '../raft/contract.js';
import type { RaftNode } from '../raftnode/raft-node.js';
import type { KvStore } from './kv-store.js';
import type { BackendSnapshot } from '../storage/backend/backend-snapshot.js';
import { toPbMember, type Membership } from './membership.js';
import { ReadIndexCoordinator } from './read-index.js';
import { ClusterOps } from './cluster-ops.js';
import { RequestIdGenerator, WaitRegistry } from './wait.js';
import type { QuotaRequest } from './maintenance/quota.js';
import type { AuthServer } from '../auth/auth-server.js';
import { validateDeleteRange, validatePut, validateRange, validateTxn } from '../api/kv-validate.js';
import type { StreamedMessage } from '../api/h2/streamed-message.js';
import { defaultStreamBytesMin } from './apply/range-stream.js';

export interface EtcdServerOptions {
  readonly log: Logger;
  readonly memberId: bigint;
  readonly store: KvStore;
  readonly membership: Membership;
  readonly waits: WaitRegistry;
  readonly requestBytesMax: number;
  readonly maxTxnOps: number;
  readonly electionMs: number;
  readonly clusterToken: string;
  readonly strictReconfigCheck: boolean;
  readonly peerActiveSinceMs?: (id: bigint) => number | null;
  /** TLS for https:// peer URLs (requests this member makes to a peer's port), read per request. */
  readonly peerClientTls?: (() => ConnectionOptions) | undefined;
  readonly lessor: Lessor;
  /** Alarms, quota, defragment and hash; without it (tests) those RPCs are not capable. */
  readonly maintenance?: ServerMaintenance;
  /** Auth checks and request stamping; absent in tests that need no auth. */
  readonly auth?: AuthServer;
}

/** The maintenance side as the server uses it (implemented by src/server/maintenance). */
export interface ServerMaintenance {
  /** Throws NoSpace (after raising the alarm) when the request would pass the backend quota. */
  checkQuota(req: QuotaRequest): Promise<void>;
  statusErrors(): string[];
  defragment(): Promise<void>;
  hash(): Promise<{ hash: number; revision: number }>;
}

type RequestBody = NonNullable<RaftRequest['request']>;

/** etcd's limit on committed-but-not-applied entries before proposals are refused. */
const maxGapBetweenApplyAndCommitIndex = 5000;

export class EtcdServer implements KvApi, MaintenanceApi, ClusterApi, LeaseApi {
  readonly #o: EtcdServerOptions;
  readonly #ids: RequestIdGenerator;
  readonly #reads: ReadIndexCoordinator;
  readonly #requestTimeoutMs: number;
  #raft: RaftNode | null = null;
  #leaderWaiters: Array<() => void> = [];
  #stopped = false;
  #clusterOps: ClusterOps | null = null;
  #lastLead = 0n;
  #proposalsPending = 0;
  #proposalsFailed = 0;
  readonly #leaseForward: LeaseForwarder;

  constructor(options: EtcdServerOptions) {
    this.#o = options;
    this.#ids = new RequestIdGenerator(options.memberId, Date.now());
    // etcd's request timeout: 5 s plus two election timeouts.
    this.#requestTimeoutMs = 5000 + 2 * options.electionMs;
    this.#reads = new ReadIndexCoordinator(
      {
        requestReadIndex: (ctx) => this.#raftNode().readIndex(ctx),
        appliedIndex: () => this.#raftNode().appliedIndex,
      },
      { timeoutMs: this.#requestTimeoutMs },
    );
    this.#leaseForward = new LeaseForwarder({
      localId: options.memberId, lessor: options.lessor, electionMs: options.electionMs, log: options.log,
      leader: () => this.#raft?.lead ?? 0n,
      peerUrls: (id) => options.membership.get(id)?.peerUrls,
      peerClientTls: options.peerClientTls,
    });
  }

  /** Wired after construction: the raft node needs the applier, which needs this server's waiters. */
  attachRaft(raft: RaftNode): void {
    this.#raft = raft;
  }

  get reads(): ReadIndexCoordinator {
    return this.#reads;
  }

  onLeaderChange(lead: bigint): void {
    if (lead === this.#lastLead) return;
    const hadLeader = this.#lastLead !== 0n;
    this.#lastLead = lead;
    // Rounds sent to a leader that is gone may never be answered; the first leader changes nothing.
    if (hadLeader) this.#reads.onLeaderChanged();
    this.#leaseForward.onLeaderChange();
    if (lead !== 0n) {
      const waiters = this.#leaderWaiters;
      this.#leaderWaiters = [];
      for (const w of waiters) w();
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#leaseForward.close();
    this.#o.waits.failAll(new EtcdError('Stopped'));
    this.#reads.failAll(new EtcdError('Stopped'));
  }

  header(revision?: number): ResponseHeader {
    const raft = this.#raftNode();
    return {
      clusterId: this.#o.membership.clusterId,
      memberId: this.#o.memberId,
      revision: BigInt(revision ?? this.#o.store.rev()),
      raftTerm: BigInt(this.#reportedTerm(raft)),
    };
  }

  // ---- KV ----

  async range(req: RangeRequest): Promise<RangeResponse> {
    if (!req.serializable) this.#refuseOnLearner();
    validateRange(req);
    if (!req.serializable) await this.#reads.waitLinearizable();
    const auth = this.#o.auth;
    const res = auth ? await auth.guardRange(req, () => this.#o.store.range(req)) : this.#o.store.range(req);
    return { ...res, header: this.header(Number(res.header?.revision ?? this.#o.store.rev())) };
  }

  /**
   * range() for transports that can write a StreamedMessage: a response of streamBytesMin or more is
   * streamed with bounded memory instead of built whole (range-stream.ts). Same checks, same ReadIndex.
   */
  async rangeStreamed(req: RangeRequest): Promise<RangeResponse | StreamedMessage> {
    const store = this.#o.store;
    if (store.rangeForWire === undefined) return this.range(req);
    if (!req.serializable) this.#refuseOnLearner();
    validateRange(req);
    if (!req.serializable) await this.#reads.waitLinearizable();
    const forWire = store.rangeForWire.bind(store);
    const read = (): Promise<RangeResponse | StreamedMessage> => {
      const answer = forWire(req, { header: (rev) => this.header(rev), streamBytesMin: defaultStreamBytesMin });
      // guardRead may refuse after starting the read (auth revision moved): the answer is then dropped.
      answer.catch(() => {});
      return answer;
    };
    // The same permission check as range(): a streamed answer is no way around auth.
    const auth = this.#o.auth;
    return auth ? auth.guardRange(req, read) : read();
  }

  async put(req: PutRequest): Promise<PutResponse> {
    await this.#o.maintenance?.checkQuota({ $case: 'put', value: req });
    this.#refuseOnLearner();
    validatePut(req);
    return this.#withHeader(await this.#propose<PutResponse>({ $case: 'put', value: req }));
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    this.#refuseOnLearner();
    validateDeleteRange(req);
    return this.#withHeader(await this.#propose<DeleteRangeResponse>({ $case: 'deleteRange', value: req }));
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    await this.#o.maintenance?.checkQuota({ $case: 'txn', value: req });
    this.#refuseOnLearner();
    validateTxn(req, { maxTxnOps: this.#o.maxTxnOps });
    if (isTxnReadOnly(req)) {
      if (!isTxnSerializable(req)) await this.#reads.waitLinearizable();
      const auth = this.#o.auth;
      return this.#withHeader(auth ? await auth.guardTxn(req, () => this.#o.store.readTxn(req)) : this.#o.store.readTxn(req));
    }
    return this.#withHeader(await this.#propose<TxnResponse>({ $case: 'txn', value: req }));
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    this.#refuseOnLearner();
    const result = await this.#propose<{ response: CompactionResponse; physical: Promise<void> }>({ $case: 'compaction', value: req });
    if (req.physical) await result.physical;
    return this.#withHeader(result.response);
  }

  // ---- Maintenance ----

  async status(): Promise<StatusResponse> {
    const raft = this.#raftNode();
    const self = this.#o.membership.get(this.#o.memberId);
    return {
      header: this.header(),
      version: etcdApiVersion,
      dbSize: BigInt(this.#o.store.dbSizeBytes()),
      leader: raft.lead,
      raftIndex: BigInt(raft.rawNode.status().hardState.commit),
      raftTerm: BigInt(this.#reportedTerm(raft)),
      raftAppliedIndex: BigInt(raft.appliedIndex),
      errors: [...(raft.lead === 0n ? [new EtcdError('NoLeader').message] : []), ...(this.#o.maintenance?.statusErrors() ?? [])],
      dbSizeInUse: BigInt(this.#o.store.dbSizeInUseBytes()),
      isLearner: self?.isLearner ?? false,
    };
  }

  /** Every alarm request, GET included, goes through raft (as in etcd); the answer has no header. */
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    this.#refuseOnLearner();
    return this.#propose<AlarmResponse>({ $case: 'alarm', value: req });
  }

  /** Local to this member, not replicated (as in etcd); the answer has no header. */
  async defragment(): Promise<DefragmentResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdminUnmapped();
    if (!this.#o.maintenance) throw new EtcdError('NotCapable');
    await this.#o.maintenance.defragment();
    return { header: undefined };
  }

  async hash(): Promise<HashResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdminUnmapped();
    if (!this.#o.maintenance) throw new EtcdError('NotCapable');
    const h = await this.#o.maintenance.hash();
    return { header: this.header(h.revision), hash: h.hash };
  }

  async hashKV(req: HashKVRequest): Promise<HashKVResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdminUnmapped();
    const h = await this.#o.store.hashKV(Number(req.revision));
    return { header: this.header(), hash: h.hash, compactRevision: BigInt(h.compactRevision) };
  }

  /** A point-in-time copy of the backend for Maintenance.Snapshot (etcd refuses streams on a learner). */
  async snapshot(): Promise<BackendSnapshot> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdminUnmapped();
    return this.#o.store.openSnapshot();
  }

  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    this.#refuseOnLearner();
    return this.#cluster().moveLeader(req);
  }

  // ---- Cluster ----

  async memberList(): Promise<MemberListResponse> {
    this.#refuseOnLearner();
    const members = this.#o.membership.list().map(toPbMember);
    return { header: this.#clusterHeader(), members };
  }

  async memberAdd(req: MemberAddRequest): Promise<MemberAddResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdmin(); // etcd: membership changes need the root role
    return this.#cluster().memberAdd(req);
  }

  async memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdmin(); // etcd: membership changes need the root role
    return this.#cluster().memberRemove(req);
  }

  async memberUpdate(req: MemberUpdateRequest): Promise<MemberUpdateResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdmin(); // etcd: membership changes need the root role
    return this.#cluster().memberUpdate(req);
  }

  async memberPromote(req: MemberPromoteRequest): Promise<MemberPromoteResponse> {
    this.#refuseOnLearner();
    await this.#o.auth?.checkAdmin(); // etcd: membership changes need the root role
    return this.#cluster().memberPromote(req);
  }

  /** A follower forwarded a learner promotion to this member (the leader). */
  promoteForwarded(id: bigint): Promise<void> {
    if (!this.#raftNode().isLeader) return Promise.reject(new EtcdError('NotLeader'));
    return this.#cluster().promoteAsLeader(id);
  }

  #cluster(): ClusterOps {
    this.#clusterOps ??= new ClusterOps({
      localId: this.#o.memberId,
      clusterToken: this.#o.clusterToken,
      strictReconfigCheck: this.#o.strictReconfigCheck,
      membership: this.#o.membership,
      waits: this.#o.waits,
      nextRequestId: () => this.#ids.next(),
      raft: () => this.#raftNode(),
      header: () => this.#clusterHeader(),
      requestTimeoutMs: this.#requestTimeoutMs,
      peerActiveSinceMs: (id) => this.#o.peerActiveSinceMs?.(id) ?? null,
      peerClientTls: this.#o.peerClientTls,
    });
    return this.#clusterOps;
  }

  /** Cluster responses carry no revision in etcd. */
  #clusterHeader(): ResponseHeader {
    return { ...this.header(), revision: 0n };
  }

  // ---- Lease ----

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    await this.#o.maintenance?.checkQuota({ $case: 'leaseGrant', value: req });
    this.#refuseOnLearner();
    if (req.TTL > BigInt(leaseLimits.maxTtlSeconds)) throw new EtcdError('LeaseTTLTooLarge');
    let id = req.ID;
    // Server-chosen ids come from the request id generator: positive and unique across the cluster.
    while (id === 0n) id = this.#ids.next() & ((1n << 63n) - 1n);
    return this.#withHeader(await this.#propose<LeaseGrantResponse>({ $case: 'leaseGrant', value: { ...req, ID: id } }));
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    this.#refuseOnLearner();
    return this.#withHeader(await this.#propose<LeaseRevokeResponse>({ $case: 'leaseRevoke', value: req }));
  }

  /** The primary lessor's checkpoints of remaining TTLs, replicated so a new leader honours them. */
  async leaseCheckpoint(checkpoints: LeaseCheckpoint[]): Promise<void> {
    await this.#propose<unknown>({ $case: 'leaseCheckpoint', value: { checkpoints } });
  }

  /** Answered by the primary lessor: this member's, or the leader's over the peer port (lease-forward.ts). */
  async leaseRenew(id: bigint): Promise<bigint> {
    // etcd 3.4 refuses every stream on a learner; here the keep-alive stream fails at its first request.
    this.#refuseOnLearner();
    return this.#leaseForward.renew(id, { deadlineMs: this.#leaseDeadlineMs() });
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    this.#refuseOnLearner();
    const res = await this.#leaseForward.timeToLive(req, { deadlineMs: this.#leaseDeadlineMs() });
    return { header: this.header(), ...res };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    this.#refuseOnLearner();
    return { header: this.header(), leases: this.#o.lessor.leases().map((l) => ({ ID: l.id })) };
  }

  #leaseDeadlineMs(): number {
    return Math.min(Date.now() + this.#requestTimeoutMs, clientDeadlineMs());
  }

  /** Proposes an auth store request (the Auth service's writes) and resolves with its apply result. */
  proposeAuth<T>(body: RequestBody): Promise<T> {
    this.#refuseOnLearner();
    return this.#propose<T>(body);
  }

  // ---- server-internal proposals ----

  /** Makes this member's name and client URLs known to the cluster (etcd's "publish"). */
  async publishAttributes(attrs: { name: string; clientUrls: readonly string[] }): Promise<void> {
    await this.#propose<null>({
      $case: 'memberAttributes',
      value: { memberId: this.#o.memberId, name: attrs.name, clientUrls: [...attrs.clientUrls] },
    });
  }

  /** The leader of a new cluster records the version the cluster speaks. */
  async publishClusterVersion(version: string): Promise<void> {
    await this.#propose<null>({ $case: 'clusterVersion', value: { version } });
  }

  // ---- proposals ----

  /** Proposes `body` and resolves with the result of applying it on this member. */
  async #propose<T>(body: RequestBody): Promise<T> {
    if (this.#stopped) throw new EtcdError('Stopped');
    // The proposal lives no longer than its client waits: a proposal made after the client gave up could
    // still commit, and a write reported as failed must not appear later.
    const deadlineMs = Math.min(Date.now() + this.#requestTimeoutMs, clientDeadlineMs());
    const stamp = this.#o.auth ? await this.#o.auth.stamp() : { authUser: '', authRevision: 0n };
    const id = this.#ids.next();
    const data = RaftRequest.encode({ id, request: body, deadlineUnixMs: BigInt(Math.floor(deadlineMs)), ...stamp }).finish();
    if (data.length > this.#o.requestBytesMax) throw new EtcdError('RequestTooLarge');
    const raft = this.#raftNode();
    // etcd refuses new work while apply lags far behind commit, rather than queue without bound.
    if (raft.committedIndex - raft.appliedIndex > maxGapBetweenApplyAndCommitIndex) throw new EtcdError('TooManyRequests');
    this.#proposalsPending++;
    try {
      return await this.#proposeAndWait<T>(raft, { id, data, deadlineMs });
    } finally {
      this.#proposalsPending--;
    }
  }

  /** etcd counts a proposal failed when it cannot enter the log or its client's time runs out. */
  async #proposeAndWait<T>(raft: RaftNode, p: { id: bigint; data: Uint8Array; deadlineMs: number }): Promise<T> {
    const failed = (err: unknown): unknown => {
      this.#proposalsFailed++;
      return err;
    };
    if (raft.lead === 0n) await this.#waitForLeader(p.deadlineMs).catch((err: unknown) => Promise.reject(failed(err)));
    if (Date.now() >= p.deadlineMs) throw failed(new EtcdError('Timeout'));
    const result = this.#o.waits.register<T>(p.id);
    const timer = setTimeout(() => this.#o.waits.fail(p.id, failed(new EtcdError('Timeout'))), Math.max(0, p.deadlineMs - Date.now()));
    try {
      raft.propose(p.data);
    } catch (err) {
      this.#o.waits.fail(p.id, failed(err instanceof ProposalDroppedError ? new EtcdError('NoLeader') : err));
    }
    try {
      return await result;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Proposals waiting to be applied (etcd_server_proposals_pending). */
  get proposalsPending(): number {
    return this.#proposalsPending;
  }

  /** Proposals that never made it: no leader in time, dropped, timed out (etcd_server_proposals_failed_total). */
  get proposalsFailed(): number {
    return this.#proposalsFailed;
  }

  #waitForLeader(deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#leaderWaiters = this.#leaderWaiters.filter((w) => w !== done);
        reject(new EtcdError('Timeout'));
      }, Math.max(0, deadlineMs - Date.now()));
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.#leaderWaiters.push(done);
    });
  }

  #withHeader<T extends { header?: ResponseHeader | undefined }>(res: T): T {
    return { ...res, header: this.header(Number(res.header?.revision ?? this.#o.store.rev())) };
  }

  /**
   * The term in headers and Status: with a leader known, the current term (so a Status naming a new
   * leader names its term too); without one, the term of the last applied entry, which a member cut off
   * from the cluster does not raise by campaigning (as etcd reports it).
   */
  #reportedTerm(raft: RaftNode): number {
    return raft.lead !== 0n ? raft.term : raft.appliedTerm;
  }

  /** etcd 3.4: a learner serves only Status and serializable reads. */
  #refuseOnLearner(): void {
    if (this.#o.membership.get(this.#o.memberId)?.isLearner) throw new EtcdError('NotSupportedForLearner');
  }

  #raftNode(): RaftNode {
    if (!this.#raft) throw new EtcdError('NotCapable');
    return this.#raft;
  }

  /** Whether a proposal forwarded by a follower may still enter the log (its client is still waiting). */
  acceptForwardedProposal(data: Uint8Array): boolean {
    if (data.length === 0) return true;
    try {
      const deadline = RaftRequest.decode(data).deadlineUnixMs;
      return deadline === 0n || BigInt(Date.now()) <= deadline;
    } catch {
      return false;
    }
  }

  get clusterVersion(): string {
    return clusterVersionShort;
  }
}

/** A txn with only ranges in every branch (nested txns count as writes) needs no proposal. */
function isTxnReadOnly(req: TxnRequest): boolean {
  return [...req.success, ...req.failure].every((op) => op.request?.$case === 'requestRange');
}

/** A read-only txn whose ranges are all serializable may skip the ReadIndex round. */
function isTxnSerializable(req: TxnRequest): boolean {
  return [...req.success, ...req.failure].every((op) => op.request?.$case === 'requestRange' && op.request.value.serializable);
}
