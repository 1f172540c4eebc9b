/**
 * Corruption checks (etcd 3.4's corrupt.go): members compare HashKV over the peer port.
 *
 * - Initial (--experimental-initial-corrupt-check): before a restarted member serves, it compares its
 *   HashKV at its current revision with every peer's at that revision; a different hash at the same
 *   compact revision is a mismatch and the member refuses to start. Peers that cannot answer (down, behind,
 *   compacted past it) are logged and skipped.
 * - Periodic (--experimental-corrupt-check-time, leader only): the leader takes its hash, asks the
 *   followers, confirms leadership with a linearizable read, hashes again, and raises CORRUPT (member id 0,
 *   as etcd) when its own hash changed at the same revisions, when a follower reports a revision or compact
 *   revision above the leader's, or when a follower at the same compact revision has another hash.
 */
import type { ConnectionOptions } from 'node:tls';
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { EtcdError, isEtcdError, type ErrorKind } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { AlarmRequest_AlarmAction, AlarmType, type AlarmRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';

/** etcd's peer path for HashKV. */
export const peerHashKvPath = '/members/hashkv';

/** Bound on a peer's answer. */
const answerBytesMax = 4096;

export interface HashKvSource {
  hashKV(revision: number): Promise<{ hash: number; hashRevision: number; compactRevision: number }>;
  rev(): number;
}

export interface PeerHashKv {
  memberId: bigint;
  /** The peer's current revision when it answered. */
  revision: number;
  hash: number;
  compactRevision: number;
}

interface WireAnswer {
  memberId?: string;
  revision?: number;
  hash?: number;
  compactRevision?: number;
  error?: string;
}

/** Serves POST /members/hashkv ({"revision": n}) on the peer port; returns false for other requests. */
export function hashKvPeerHandler(opts: { localId: bigint; store: HashKvSource }): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean {
  return (stream, headers) => {
    if (headers[':path'] !== peerHashKvPath || headers[':method'] !== 'POST') return false;
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > answerBytesMax) stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    });
    stream.on('end', () => {
      const answer = (status: number, doc: WireAnswer): void => {
        if (stream.destroyed) return;
        stream.respond({ ':status': status, 'content-type': 'application/json' });
        stream.end(JSON.stringify(doc));
      };
      let revision = 0;
      try {
        revision = Number((JSON.parse(body) as { revision?: unknown }).revision ?? 0);
      } catch {
        answer(400, { error: 'bad request' });
        return;
      }
      if (!Number.isSafeInteger(revision) || revision < 0) return answer(400, { error: 'bad revision' });
      opts.store.hashKV(revision).then(
        (h) => answer(200, { memberId: opts.localId.toString(16), revision: opts.store.rev(), hash: h.hash, compactRevision: h.compactRevision }),
        (err: unknown) => answer(isEtcdError(err) ? 409 : 500, { error: isEtcdError(err) ? err.kind : String(err) }),
      );
    });
    return true;
  };
}

/** Asks one peer URL for its HashKV at revision; rejects with the peer's EtcdError (Compacted, FutureRev). */
export function fetchPeerHashKv(url: string, revision: number, opts: { timeoutMs: number; tls?: (() => ConnectionOptions) | undefined }): Promise<PeerHashKv> {
  return new Promise((resolve, reject) => {
    const tlsOptions = url.startsWith('https:') ? opts.tls?.() : undefined;
    const session = tlsOptions !== undefined ? http2.connect(url, tlsOptions) : http2.connect(url);
    const fail = (err: unknown): void => {
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new EtcdError('Timeout')), opts.timeoutMs);
    session.on('error', fail);
    const req = session.request({ ':path': peerHashKvPath, ':method': 'POST', 'content-type': 'application/json' });
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > answerBytesMax) fail(new Error(`answer from ${url} too large`));
    });
    req.on('error', fail);
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      try {
        const doc = JSON.parse(text) as WireAnswer;
        if (doc.error !== undefined) {
          const kind = doc.error as ErrorKind;
          reject(kind === 'Compacted' || kind === 'FutureRev' ? new EtcdError(kind) : new Error(doc.error));
          return;
        }
        resolve({ memberId: BigInt('0x' + doc.memberId), revision: doc.revision ?? 0, hash: doc.hash ?? 0, compactRevision: doc.compactRevision ?? 0 });
      } catch (err) {
        reject(new Error(`bad hashkv answer from ${url}: ${String(err)}`));
      }
    });
    req.end(JSON.stringify({ revision }));
  });
}

export interface Peer {
  readonly id: bigint;
  readonly peerUrls: readonly string[];
}

type PeerAnswer = { peer: Peer; answer: PeerHashKv } | { peer: Peer; error: unknown };

/** Every peer's HashKV at revision (first URL that answers), or the last error per peer. */
export async function peerHashKvs(peers: readonly Peer[], revision: number, opts: { timeoutMs: number; log: Logger; tls?: (() => ConnectionOptions) | undefined }): Promise<PeerAnswer[]> {
  return Promise.all(peers.filter((p) => p.peerUrls.length > 0).map(async (peer): Promise<PeerAnswer> => {
    let error: unknown = new Error('no peer URL');
    for (const url of peer.peerUrls) {
      try {
        return { peer, answer: await fetchPeerHashKv(url, revision, opts) };
      } catch (err) {
        error = err;
        opts.log.warn('failed hash kv request', { 'remote-peer-id': peer.id.toString(16), 'remote-peer-endpoint': url, error: String(err) });
      }
    }
    return { peer, error };
  }));
}

export interface InitialCheckOptions {
  readonly localId: bigint;
  readonly store: HashKvSource;
  readonly peers: readonly Peer[];
  readonly log: Logger;
  readonly timeoutMs: number;
  /** TLS for https:// peer URLs. */
  readonly tls?: (() => ConnectionOptions) | undefined;
}

/** The start-up check; throws when a peer at the same compact revision has another hash. */
export async function initialCorruptCheck(o: InitialCheckOptions): Promise<void> {
  o.log.info('starting initial corruption check', { 'local-member-id': o.localId.toString(16) });
  const mine = await o.store.hashKV(0);
  const revision = mine.hashRevision;
  let mismatches = 0;
  for (const r of await peerHashKvs(o.peers, revision, o)) {
    const fields = { 'local-member-id': o.localId.toString(16), 'remote-peer-id': r.peer.id.toString(16), revision };
    if ('error' in r) {
      if (isEtcdError(r.error, 'FutureRev')) o.log.warn('cannot fetch hash from slow remote peer', fields);
      else if (isEtcdError(r.error, 'Compacted')) o.log.warn('cannot fetch hash from remote peer; local member is behind', fields);
      continue;
    }
    if (r.answer.hash === mine.hash) continue;
    if (r.answer.compactRevision === mine.compactRevision) {
      o.log.warn('found different hash values from remote peer', { ...fields, 'local-member-hash': mine.hash, 'remote-peer-hash': r.answer.hash });
      mismatches++;
    } else {
      o.log.warn('found different compact revision values from remote peer', { ...fields, 'local-member-compact-revision': mine.compactRevision, 'remote-peer-compact-revision': r.answer.compactRevision });
    }
  }
  if (mismatches > 0) throw new Error(`${o.localId.toString(16)} found data inconsistency with peers`);
  o.log.info('initial corruption checking passed; no corruption', { 'local-member-id': o.localId.toString(16) });
}

export interface MonitorOptions {
  readonly localId: bigint;
  readonly store: HashKvSource;
  readonly peers: () => readonly Peer[];
  readonly log: Logger;
  readonly timeoutMs: number;
  /** TLS for https:// peer URLs. */
  readonly tls?: (() => ConnectionOptions) | undefined;
  readonly intervalMs: number;
  readonly isLeader: () => boolean;
  /** Confirms this member still leads and has applied everything committed before the call. */
  readonly linearizable: () => Promise<void>;
  readonly proposeAlarm: (req: AlarmRequest) => Promise<unknown>;
}

/** The leader's periodic check. */
export class CorruptMonitor {
  readonly #o: MonitorOptions;
  #timer: NodeJS.Timeout | null = null;
  #running = false;

  constructor(options: MonitorOptions) {
    this.#o = options;
  }

  start(): void {
    if (this.#o.intervalMs <= 0 || this.#timer) return;
    this.#o.log.info('enabled corruption checking', { 'local-member-id': this.#o.localId.toString(16), interval: `${this.#o.intervalMs}ms` });
    this.#timer = setInterval(() => {
      if (this.#running || !this.#o.isLeader()) return;
      this.#running = true;
      this.check().catch((err: unknown) => this.#o.log.warn('failed to check hash KV', { error: String(err) })).finally(() => (this.#running = false));
    }, this.#o.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One check; returns the member ids found inconsistent (the alarm is raised once for all). */
  async check(): Promise<bigint[]> {
    const o = this.#o;
    const first = await o.store.hashKV(0);
    const peers = await peerHashKvs(o.peers(), first.hashRevision, o);
    await o.linearizable();
    const second = await o.store.hashKV(0);
    const bad: bigint[] = [];
    if (second.hash !== first.hash && second.hashRevision === first.hashRevision && second.compactRevision === first.compactRevision) {
      o.log.warn('found hash mismatch', { revision: first.hashRevision });
      bad.push(o.localId);
    }
    for (const r of peers) {
      if ('error' in r) continue;
      const a = r.answer;
      const fields = { 'remote-peer-id': r.peer.id.toString(16), revision: a.revision, 'leader-revision': second.hashRevision };
      if (a.revision > second.hashRevision) o.log.warn("revision from follower must be less than or equal to leader's", fields);
      else if (a.compactRevision > second.compactRevision) o.log.warn("compact revision from follower must be less than or equal to leader's", fields);
      else if (a.compactRevision === first.compactRevision && a.hash !== first.hash) o.log.warn('same compact revision then hashes must match', fields);
      else continue;
      bad.push(r.peer.id);
    }
    if (bad.length > 0) {
      await o.proposeAlarm({ action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT });
    }
    return bad;
  }
}
