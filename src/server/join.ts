/**
 * Joining a running cluster (--initial-cluster-state existing): the member list is served on the peer
 * port at GET /members, and a new member reads it from the peers named in --initial-cluster to learn the
 * cluster id and its own member id (given to it by `member add`).
 */
import http2, { type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Membership } from './membership.js';

export const membersPath = '/members';

interface MembersDoc {
  readonly clusterId: string;
  readonly members: ReadonlyArray<{ id: string; name: string; peerUrls: string[]; clientUrls: string[]; isLearner: boolean }>;
}

/** Serves GET /members on the peer port; returns false for any other request. */
export function membersHandler(membership: Membership): (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean {
  return (stream, headers) => {
    if (headers[':path'] !== membersPath || headers[':method'] !== 'GET') return false;
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

function fetchMembers(url: string, timeoutMs: number): Promise<RemoteCluster> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
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
export async function fetchRemoteCluster(peerUrls: readonly string[], options: { timeoutMs: number }): Promise<RemoteCluster> {
  const errors: string[] = [];
  for (const url of peerUrls) {
    try {
      return await fetchMembers(url, options.timeoutMs);
    } catch (err) {
      errors.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new Error(`could not retrieve cluster information from the given URLs (${errors.join('; ')})`);
}
