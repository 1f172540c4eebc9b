/**
 * Client certificates on the client port: verified by the trusted CA, checked after the handshake against
 * the CRL (etcd's order), and handed to handlers through getAuthContext() as grpc-js does.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { credentials, Metadata, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { KVClient, KVService, PutRequest, PutResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { TestPki, type Issued } from '../../../test/e2e/tls-certs.js';
import { emptyTlsInfo, TlsProfile } from '../../tls/tls-info.js';
import { startServer, type Started } from './test-support.js';

let pki: TestPki;
let started: Started;
let alice: Issued;
let mallory: Issued;
let wrongSan: Issued;
const seen: Array<{ cn: string | undefined; type: string | undefined }> = [];
const rejected: string[] = [];

before(async () => {
  pki = TestPki.create();
  const server = pki.issue('server', { cn: 'localhost', ips: ['127.0.0.1'] });
  alice = pki.issue('alice', { cn: 'alice' });
  mallory = pki.issue('mallory', { cn: 'mallory' });
  wrongSan = pki.issue('elsewhere', { cn: 'bob', ips: ['10.9.9.9'] });
  pki.revoke(mallory);
  const profile = TlsProfile.load({
    ...emptyTlsInfo, certFile: server.cert, keyFile: server.key, trustedCaFile: pki.caCert, clientCertAuth: true, crlFile: pki.crl(),
  });
  started = await startServer([{
    definition: KVService,
    implementation: {
      put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
        const auth = call.getAuthContext();
        const cn = auth?.sslPeerCertificate?.subject.CN;
        seen.push({ cn: Array.isArray(cn) ? cn.join(',') : cn, type: auth?.transportSecurityType });
        cb(null, PutResponse.fromPartial({ header: { revision: 1n } }));
      },
    },
  }], {
    urls: [new URL('https://127.0.0.1:0')],
    tls: profile.serverOptions(),
    tlsCheck: (socket) => profile.checkIncoming(socket),
    onTlsReject: (_socket, err) => rejected.push(err.message),
  });
});

after(async () => {
  await started.server.close(1000);
  pki.remove();
});

function put(who: Issued | null): Promise<Error | null> {
  const ca = readFileSync(pki.caCert);
  const creds = who === null ? credentials.createSsl(ca) : credentials.createSsl(ca, readFileSync(who.key), readFileSync(who.cert));
  const client = new KVClient(started.target, creds);
  return new Promise<Error | null>((resolve) => {
    client.put(PutRequest.fromPartial({ key: Buffer.from('k') }), new Metadata(), { deadline: Date.now() + 5000 }, (err) => resolve(err));
  }).finally(() => client.close());
}

test('a verified client certificate reaches the handler through getAuthContext()', async () => {
  assert.equal(await put(alice), null);
  assert.deepEqual(seen.at(-1), { cn: 'alice', type: 'ssl' });
});

test('a client without a certificate is refused at the handshake', async () => {
  const before = seen.length;
  assert.notEqual(await put(null), null);
  assert.equal(seen.length, before);
  assert.ok(rejected.some((r) => /certificate/.test(r)), rejected.join('; '));
});

test('a revoked client certificate is refused by the CRL', async () => {
  const before = seen.length;
  assert.notEqual(await put(mallory), null);
  assert.equal(seen.length, before);
  assert.ok(rejected.some((r) => /^transport: certificate serial [0-9a-f]+ revoked$/.test(r)), rejected.join('; '));
});

test('a client certificate whose IP SANs do not name the client address is refused', async () => {
  assert.notEqual(await put(wrongSan), null);
  assert.ok(rejected.includes('x509: certificate is valid for 10.9.9.9, not 127.0.0.1'), rejected.join('; '));
});
