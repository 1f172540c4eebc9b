/**
 * Membership changes (the Cluster service) and leader transfer (Maintenance.MoveLeader): checked as etcd
 * checks them (--strict-reconfig-check), proposed as raft conf changes, answered once applied.
 */
import { EtcdError } from '../base/errors.js';
import type {
  Member,
  MemberAddRequest,
  MemberAddResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  MemberUpdateRequest,
  MemberUpdateResponse,
  MoveLeaderRequest,
  MoveLeaderResponse,
  ResponseHeader,
} from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { MemberInfo } from '../gen/etcdts/internal.js';
import { ProposalDroppedError } from '../raft/contract.js';
import { ConfChangeTransition, ConfChangeType } from '../raft/types.js';
import type { RaftNode } from '../raftnode/raft-node.js';
import { memberId as deriveMemberId } from './ids.js';
import { toPbMember, type Membership } from './membership.js';
import type { WaitRegistry } from './wait.js';
import { forwardPromote } from './join.js';
import type { ConnectionOptions } from 'node:tls';

/** etcd allows one learner at a time. */
const learnersMax = 1;
/** A learner may be promoted once its log reaches this share of the leader's. */
const learnerReadyShare = 0.9;

export interface ClusterOpsOptions {
  readonly localId: bigint;
  readonly clusterToken: string;
  readonly strictReconfigCheck: boolean;
  readonly membership: Membership;
  readonly waits: WaitRegistry;
  readonly nextRequestId: () => bigint;
  readonly raft: () => RaftNode;
  readonly header: () => ResponseHeader;
  readonly requestTimeoutMs: number;
  /** Since when the peer transport has had a working stream to `id` (ms), or null. */
  readonly peerActiveSinceMs: (id: bigint) => number | null;
  /** TLS for https:// peer URLs when forwarding to the leader's peer port, read per request. */
  readonly peerClientTls?: (() => ConnectionOptions) | undefined;
}

/** etcd's health interval: a peer counts as connected once its stream has been up this long. */
const healthIntervalMs = 5000;

export class ClusterOps {
  readonly #o: ClusterOpsOptions;

  constructor(options: ClusterOpsOptions) {
    this.#o = options;
  }

  async memberAdd(req: MemberAddRequest): Promise<MemberAddResponse> {
    const urls = validUrls(req.peerURLs);
    const membership = this.#o.membership;
    const taken = new Set(membership.list().flatMap((m) => m.peerUrls));
    if (urls.some((u) => taken.has(u))) throw new EtcdError('PeerURLExist');
    if (req.isLearner && membership.list().filter((m) => m.isLearner).length >= learnersMax) {
      throw new EtcdError('TooManyLearners');
    }
    if (!req.isLearner) this.#checkVotersCanGrow();
    this.#checkConnectedToVoters();
    const id = deriveMemberId(urls, { clusterToken: this.#o.clusterToken, nowUnixSeconds: Math.floor(Date.now() / 1000) });
    if (membership.get(id)) throw new EtcdError('MemberExist');
    const type = req.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode;
    await this.#proposeChange(type, { id, name: '', peerUrls: urls, clientUrls: [], isLearner: req.isLearner });
    const member: Member = { ID: id, name: '', peerURLs: urls, clientURLs: [], isLearner: req.isLearner };
    return { header: this.#o.header(), member, members: membership.list().map(toPbMember) };
  }

  async memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    const m = this.#o.membership.get(req.ID);
    if (!m) throw new EtcdError('MemberNotFound');
    if (!m.isLearner) {
      this.#checkVotersCanShrink(req.ID);
      this.#checkQuorumStaysActive(req.ID);
    }
    await this.#proposeChange(ConfChangeType.RemoveNode, { ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] });
    return { header: this.#o.header(), members: this.#o.membership.list().map(toPbMember) };
  }

  async memberUpdate(req: MemberUpdateRequest): Promise<MemberUpdateResponse> {
    const m = this.#o.membership.get(req.ID);
    if (!m) throw new EtcdError('MemberNotFound');
    const urls = validUrls(req.peerURLs);
    const taken = new Set(this.#o.membership.list().filter((x) => x.id !== req.ID).flatMap((x) => x.peerUrls));
    if (urls.some((u) => taken.has(u))) throw new EtcdError('PeerURLExist');
    await this.#proposeChange(ConfChangeType.UpdateNode, { ...m, peerUrls: urls, clientUrls: [...m.clientUrls] });
    return { header: this.#o.header(), members: this.#o.membership.list().map(toPbMember) };
  }

  async memberPromote(req: MemberPromoteRequest): Promise<MemberPromoteResponse> {
    const raft = this.#o.raft();
    if (!raft.isLeader) {
      const leader = this.#o.membership.get(raft.lead);
      if (!leader) throw new EtcdError('NoLeader');
      await forwardPromote(leader.peerUrls, req.ID, { timeoutMs: this.#o.requestTimeoutMs, tls: this.#o.peerClientTls?.() });
      return { header: this.#o.header(), members: this.#o.membership.list().map(toPbMember) };
    }
    await this.promoteAsLeader(req.ID);
    return { header: this.#o.header(), members: this.#o.membership.list().map(toPbMember) };
  }

  /** The leader's half of a promotion: only it knows how far the learner's log has come. */
  async promoteAsLeader(id: bigint): Promise<void> {
    const m = this.#o.membership.get(id);
    if (!m) throw new EtcdError('MemberNotFound');
    // etcd checks progress first: a voter that never ran is "not in sync" rather than "not a learner".
    this.#checkLearnerReady(id);
    if (!m.isLearner) throw new EtcdError('MemberNotLearner');
    this.#checkVotersCanGrow();
    await this.#proposeChange(ConfChangeType.AddNode, { ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: false });
  }

  /** etcd answers MoveLeader without a header. */
  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    const raft = this.#o.raft();
    if (!raft.isLeader) throw new EtcdError('NotLeader');
    const target = this.#o.membership.get(req.targetID);
    if (!target || target.isLearner) throw new EtcdError('BadLeaderTransferee');
    if (req.targetID === this.#o.localId) return { header: undefined };
    raft.withRawNode((rn) => rn.transferLeader(req.targetID));
    await this.#waitFor(() => raft.lead === req.targetID, this.#o.requestTimeoutMs);
    return { header: undefined };
  }

  async #proposeChange(type: ConfChangeType, member: { id: bigint; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }): Promise<void> {
    const requestId = this.#o.nextRequestId();
    const context = MemberInfo.encode({ ...member, requestId }).finish();
    const applied = this.#o.waits.register<null>(requestId);
    const timer = setTimeout(() => this.#o.waits.fail(requestId, new EtcdError('Timeout')), this.#o.requestTimeoutMs);
    try {
      this.#o.raft().withRawNode((rn) => rn.proposeConfChange({
        transition: ConfChangeTransition.Auto,
        changes: [{ type, nodeId: member.id }],
        context,
      }));
    } catch (err) {
      this.#o.waits.fail(requestId, err instanceof ProposalDroppedError ? new EtcdError('Timeout') : err);
    }
    try {
      await applied;
    } finally {
      clearTimeout(timer);
    }
  }

  /** A started member is one that has published its name, as in etcd. */
  #startedVoters(except?: bigint): number {
    return this.#o.membership.list().filter((m) => !m.isLearner && m.name !== '' && m.id !== except).length;
  }

  #checkVotersCanGrow(): void {
    if (!this.#o.strictReconfigCheck) return;
    const voters = this.#o.membership.voterIds().length + 1;
    const started = this.#startedVoters();
    // A one-member cluster may always take a second voter, or it could never grow.
    if (started === 1 && voters === 2) return;
    if (started < Math.floor(voters / 2) + 1) throw new EtcdError('MemberNotEnoughStarted');
  }

  #activeVoters(sinceMs: number): number {
    return this.#o.membership.voterIds().filter((id) => {
      if (id === this.#o.localId) return true;
      const since = this.#o.peerActiveSinceMs(id);
      return since !== null && since <= sinceMs;
    }).length;
  }

  /** etcd refuses reconfiguration unless every voter has been reachable for the health interval. */
  #checkConnectedToVoters(): void {
    if (!this.#o.strictReconfigCheck) return;
    const voters = this.#o.membership.voterIds().length;
    if (this.#activeVoters(Date.now() - healthIntervalMs) < voters) throw new EtcdError('Unhealthy');
  }

  /** Removing an active voter must leave a quorum of active voters; a member already down is safe to drop. */
  #checkQuorumStaysActive(id: bigint): void {
    if (!this.#o.strictReconfigCheck) return;
    if (id !== this.#o.localId && this.#o.peerActiveSinceMs(id) === null) return;
    const voters = this.#o.membership.voterIds().length;
    const active = this.#activeVoters(Date.now() - healthIntervalMs);
    if (active - 1 < 1 + Math.floor((voters - 1) / 2)) throw new EtcdError('Unhealthy');
  }

  #checkVotersCanShrink(id: bigint): void {
    if (!this.#o.strictReconfigCheck) return;
    const voters = this.#o.membership.voterIds().filter((v) => v !== id).length;
    if (this.#startedVoters(id) < Math.floor(voters / 2) + 1) throw new EtcdError('MemberNotEnoughStarted');
  }

  #checkLearnerReady(id: bigint): void {
    const raft = this.#o.raft();
    if (!raft.isLeader) throw new EtcdError('NotLeader');
    const progress = raft.rawNode.status().progress;
    const leader = progress?.get(this.#o.localId);
    const learner = progress?.get(id);
    if (!leader || !learner || learner.match < leader.match * learnerReadyShare) throw new EtcdError('LearnerNotReady');
  }

  #waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + timeoutMs;
      const poll = (): void => {
        if (cond()) resolve();
        else if (Date.now() > deadline) reject(new EtcdError('Timeout'));
        else setTimeout(poll, 10);
      };
      poll();
    });
  }
}

function validUrls(urls: readonly string[]): string[] {
  if (urls.length === 0) throw new EtcdError('MemberBadURLs');
  return urls.map((u) => {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new EtcdError('MemberBadURLs');
    }
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.port === '') throw new EtcdError('MemberBadURLs');
    return u.replace(/\/$/, '');
  });
}
