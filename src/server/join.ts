/**
 * Joining a running cluster (--initial-cluster-state existing): the member list is served on the peer
 * port at GET /members, and a new member reads it from the peers named in --initial-cluster to learn the
 * cluster id and its own member id (given to it by `member add`).
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { EtcdError, errorTable, type ErrorKind } from '../base/errors.js';
import type { Membership } from './membership.js';

export const membersPath = '/members';

interface MembersDoc {
  readonly clusterId: string;
  readonly members: ReadonlyArray<{ id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }>;
}

export const promotePathPrefix = '/members/promote/';

/** Answers a learner promotion forwarded by a follower: resolves to null, or rejects with an EtcdError. */
export type PromoteHandler = (id: bigint) => Promise<void>;

/**
 * Serves GET /members and POST /members/promote/<hex id> on the peer port; returns false for any other
 * request. A promotion is only decided by the leader, which alone sees how far the learner has come.
 */
export function membersHandler(membership: Membership, promote?: PromoteHandler): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean {
  return (stream, headers) => {
    const path = String(headers[':path'] ?? '');
    if (path.startsWith(promotePathPrefix) && headers[':method'] === 'POST' && promote) {
      const id = BigInt('0x' + (path.slice(promotePathPrefix.length).match(/^[0-9a-f]{1,16}$/)?.[0] ?? '0'));
      stream.resume();
      promote(id).then(
        () => {
          stream.respond({ ':status': 200, 'content-type': 'application/json' });
          stream.end('{}');
        },
        (err: unknown) => {
          stream.respond({ ':status': 409, 'content-type': 'application/json' });
          stream.end(JSON.stringify({ kind: err instanceof EtcdError ? err.kind : 'Unknown', message: String((err as Error)?.message ?? err) }));
        },
      );
      return true;
    }
    if (path !== membersPath || headers[':method'] !== 'GET') return false;
    const doc: MembersDoc = {
      clusterId: membership.clusterId.toString(16),
      members: membership.list().map((m) => ({
        id: m.id.toString(16), name: m.name, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls], isLearner: m.isLearner,
      })),
    };
    stream.respond({ ':status': 200, 'content-type': 'application/json' });
    stream.end(JSON.stringify(doc));
    return true;
  };
}

export interface RemoteCluster {
  readonly clusterId: bigint;
  readonly members: ReadonlyArray<{ id: bigint; name: string; peerUrls: readonly string[]; isLearner: boolean }>;
}

/** Peer TLS for https:// peer URLs (our certificate, the trusted CA); plain http URLs ignore it. */
export interface PeerRequestOptions {
  readonly timeoutMs: number;
  readonly tls?: ConnectionOptions | undefined;
}

function connectPeer(url: string, tls: ConnectionOptions | undefined): http2.ClientHttp2Session {
  return tls !== undefined && url.startsWith('https:') ? http2.connect(url, tls) : http2.connect(url);
}

function fetchMembers(url: string, options: PeerRequestOptions): Promise<RemoteCluster> {
  const timeoutMs = options.timeoutMs;
  return new Promise((resolve, reject) => {
    const session = connectPeer(url, options.tls);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`timed out asking ${url} for the member list`));
    }, timeoutMs);
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const req = session.request({ ':path': membersPath, ':method': 'GET' });
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      try {
        const doc = JSON.parse(body) as MembersDoc;
        resolve({
          clusterId: BigInt('0x' + doc.clusterId),
          members: doc.members.map((m) => ({ id: BigInt('0x' + m.id), name: m.name, peerUrls: m.peerUrls, isLearner: m.isLearner })),
        });
      } catch (err) {
        reject(new Error(`bad member list from ${url}: ${(err as Error).message}`));
      }
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
}

/** Asks each peer URL in turn; the first answer wins. */
export async function fetchRemoteCluster(peerUrls: readonly string[], options: PeerRequestOptions): Promise<RemoteCluster> {
  const errors: string[] = [];
  for (const url of peerUrls) {
    try {
      return await fetchMembers(url, options);
    } catch (err) {
      errors.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new Error(`could not retrieve cluster information from the given URLs (${errors.join('; ')})`);
}

/** Asks the leader (at one of its peer URLs) to promote a learner; rethrows the leader's EtcdError. */
export async function forwardPromote(leaderPeerUrls: readonly string[], id: bigint, options: PeerRequestOptions): Promise<void> {
  const url = leaderPeerUrls[0];
  if (url === undefined) throw new EtcdError('NoLeader');
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const session = connectPeer(url, options.tls);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new EtcdError('Timeout'));
    }, options.timeoutMs);
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const req = session.request({ ':path': promotePathPrefix + id.toString(16), ':method': 'POST' });
    let code = 0;
    let text = '';
    req.on('response', (h) => {
      code = Number(h[':status']);
    });
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      text += c;
    });
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status: code, body: text });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end();
  });
  if (status === 200) return;
  const kind = (JSON.parse(body || '{}') as { kind?: string }).kind;
  if (kind !== undefined && kind in errorTable) throw new EtcdError(kind as ErrorKind);
  throw new Error(`leader refused the promotion: ${body}`);
}
