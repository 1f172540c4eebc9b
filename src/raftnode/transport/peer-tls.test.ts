/**
 * Peer links over TLS (https:// peer URLs): messages and snapshots flow as over h2c; a peer whose
 * certificate is not allowed (CN, CRL) or not signed by the trusted CA is refused at the handshake on
 * both ends, and the refusal is logged as etcd logs it ("rejected connection").
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { MessageType, type NodeId } from '../../raft/types.js';
import { TestPki, type Issued } from '../../../test/e2e/tls-certs.js';
import { emptyTlsInfo, peerTlsOf, TlsProfile, type TlsInfo } from '../../tls/tls-info.js';
import { appMessage, mesh, recordingLogger, snapMessage, startNode, waitFor, type LogRecord, type Node } from './test-support.js';

let pki: TestPki;
let otherPki: TestPki;
const certs = new Map<string, Issued>();
const open: Node[] = [];

before(() => {
  pki = TestPki.create();
  otherPki = TestPki.create();
  for (const cn of ['member', 'member2', 'intruder', 'revoked']) certs.set(cn, pki.issue(cn, { cn, ips: ['127.0.0.1'] }));
  certs.set('stranger', otherPki.issue('stranger', { cn: 'member', ips: ['127.0.0.1'] }));
  pki.revoke(certs.get('revoked')!);
});

after(() => {
  pki.remove();
  otherPki.remove();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((n) => n.t.close()));
});

async function tlsNode(id: NodeId, cert: string, extra: Partial<TlsInfo> = {}): Promise<Node & { records: LogRecord[] }> {
  const issued = certs.get(cert)!;
  const ca = cert === 'stranger' ? otherPki.caCert : pki.caCert;
  const profile = TlsProfile.load({ ...emptyTlsInfo, certFile: issued.cert, keyFile: issued.key, trustedCaFile: ca, clientCertAuth: true, ...extra });
  const { log, records } = recordingLogger();
  const n = await startNode(id, { tls: peerTlsOf(profile, log), log });
  open.push(n);
  return Object.assign(n, { records });
}

function rejections(n: { records: LogRecord[] }): string[] {
  return n.records.filter((r) => r.msg === 'rejected connection').map((r) => String(r.fields['error']));
}

describe('peer transport over TLS', () => {
  it('carries messages and a snapshot over https peer URLs', async () => {
    const [a, b] = [await tlsNode(1n, 'member'), await tlsNode(2n, 'member2')];
    assert.equal(a.url().protocol, 'https:');
    mesh([a, b]);
    a.t.send([appMessage({ from: 1n, to: 2n, index: 1, entryBytes: 100 })]);
    b.t.send([appMessage({ from: 2n, to: 1n, index: 7 })]);
    const data = new Uint8Array(3 * 1024 * 1024).fill(7);
    a.t.send([snapMessage({ from: 1n, to: 2n, index: 500, data })]);
    await waitFor('the snapshot', () => a.snapshots.length === 1);
    assert.deepEqual(a.snapshots, [{ peer: 2n, status: 'finish' }]);
    await waitFor('messages both ways', () => b.received.some((m) => m.type === MessageType.App) && a.received.length === 1);
    assert.equal(b.received.find((m) => m.type === MessageType.Snap)?.snapshot?.data.length, data.length);
    assert.deepEqual(rejections(a), []);
    assert.deepEqual(rejections(b), []);
  });

  it('refuses a peer whose certificate CN is not the allowed one, as server and as client, and logs it', async () => {
    const allowed = { allowedCn: 'member' };
    const [a, b, c] = [await tlsNode(1n, 'member', allowed), await tlsNode(2n, 'member', allowed), await tlsNode(3n, 'intruder', allowed)];
    mesh([a, b, c]);
    for (const from of [a, b, c]) {
      for (const to of [a, b, c]) if (from !== to) from.t.send([appMessage({ from: from.id, to: to.id, index: 1 })]);
    }
    await waitFor('a and b exchange messages', () => a.received.some((m) => m.from === 2n) && b.received.some((m) => m.from === 1n));
    await waitFor('a refusal by a', () => rejections(a).includes('client certificate authentication failed'));
    // a refuses c twice over: c's client certificate when c dials, c's server certificate when a dials.
    await waitFor('both refusals by a', () => a.records.filter((r) => r.msg === 'rejected connection' && r.fields['remote-addr'] === c.url().host).length > 0);
    assert.equal(a.received.filter((m) => m.from === 3n).length, 0);
    assert.equal(c.received.length, 0);
    assert.equal(a.t.peerStats(3n)?.streamingSinceMs ?? null, null);
  });

  it('refuses a revoked peer certificate by the CRL, and one from another CA', async () => {
    const crlFile = pki.crl();
    const a = await tlsNode(1n, 'member', { crlFile });
    const [revoked, stranger] = [await tlsNode(2n, 'revoked'), await tlsNode(3n, 'stranger')];
    revoked.t.addPeer(1n, [a.url()]);
    stranger.t.addPeer(1n, [a.url()]);
    revoked.t.send([appMessage({ from: 2n, to: 1n, index: 1 })]);
    stranger.t.send([appMessage({ from: 3n, to: 1n, index: 1 })]);
    await waitFor('the CRL refusal', () => rejections(a).some((e) => /^transport: certificate serial [0-9a-f]+ revoked$/.test(e)));
    await waitFor('the unknown-CA refusal', () => rejections(a).some((e) => !/revoked/.test(e)));
    assert.equal(a.received.length, 0);
  });
});
