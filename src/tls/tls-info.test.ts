/**
 * TlsProfile's Node options and checks, with real handshakes on loopback: Go cipher suite names, the
 * TLS version bounds, an allowed client hostname, a refused CA; and etcd's errors for bad settings.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../base/logger.js';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { TestPki, type Issued } from '../../test/e2e/tls-certs.js';
import { opensslCiphers } from './cipher-suites.js';
import { emptyTlsInfo, TlsProfile, type TlsInfo } from './tls-info.js';

let pki: TestPki;
let server: Issued;
let client: Issued;
let named: Issued;

before(() => {
  pki = TestPki.create();
  server = pki.issue('server', { cn: 'localhost', ips: ['127.0.0.1'] });
  client = pki.issue('client', { cn: 'client' });
  named = pki.issue('named', { cn: 'named', dns: ['localhost'] });
});

after(() => pki.remove());

/** Serves one profile; each dial resolves with the negotiated protocol and cipher, or the reason it failed. */
async function serve(info: Partial<TlsInfo>): Promise<{ dial: (o: tls.ConnectionOptions) => Promise<string>; close: () => Promise<void> }> {
  const profile = TlsProfile.load({ ...emptyTlsInfo, certFile: server.cert, keyFile: server.key, ...info });
  const refusals: string[] = [];
  const srv = tls.createServer(profile.serverOptions(), (socket) => {
    profile.checkIncoming(socket).then(() => socket.end('ok'), (err: Error) => {
      refusals.push(err.message);
      socket.destroy();
    });
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as { port: number }).port;
  const dial = (o: tls.ConnectionOptions): Promise<string> => new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), ...o });
    let text = '';
    let summary = '';
    socket.on('secureConnect', () => {
      summary = `${socket.getProtocol()} ${socket.getCipher().name}`;
    });
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    socket.on('close', () => resolve(text === 'ok' ? summary : `refused ${refusals.at(-1) ?? ''}`.trim()));
    socket.on('error', () => {});
  });
  return { dial, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

describe('TlsProfile', () => {
  it('maps Go cipher suite names to OpenSSL ones, keeps TLS 1.3 suites, refuses unknown names', () => {
    assert.equal(opensslCiphers([]), undefined);
    assert.equal(opensslCiphers(['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305']),
      'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256');
    assert.throws(() => opensslCiphers(['TLS_NOPE']), /^Error: unexpected TLS cipher suite "TLS_NOPE"$/);
  });

  it('offers only the configured TLS 1.2 suites', async () => {
    const s = await serve({ cipherSuites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], maxVersion: 'TLS1.2' });
    try {
      assert.equal(await s.dial({}), 'TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384');
      assert.match(await s.dial({ ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', maxVersion: 'TLSv1.2' }), /^refused/);
    } finally {
      await s.close();
    }
  });

  it('holds the minimum version (--tls-min-version)', async () => {
    const s = await serve({ minVersion: 'TLS1.3' });
    try {
      assert.match(await s.dial({}), /^TLSv1\.3 /);
      assert.match(await s.dial({ maxVersion: 'TLSv1.2' }), /^refused/);
    } finally {
      await s.close();
    }
  });

  it('accepts only a client certificate valid for the allowed hostname', async () => {
    const s = await serve({ trustedCaFile: pki.caCert, clientCertAuth: true, allowedHostname: 'localhost', skipClientSanVerify: true });
    try {
      const as = (who: Issued): tls.ConnectionOptions => ({ cert: readFileSync(who.cert), key: readFileSync(who.key) });
      assert.match(await s.dial(as(named)), /^TLSv1\.3 /);
      assert.equal(await s.dial(as(client)), 'refused client certificate authentication failed');
    } finally {
      await s.close();
    }
  });

  it('serves renewed certificate files without a restart, as etcd reloads them per handshake', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-reload-'));
    try {
      const [certFile, keyFile] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
      copyFileSync(server.cert, certFile);
      copyFileSync(server.key, keyFile);
      const profile = TlsProfile.load({ ...emptyTlsInfo, certFile, keyFile });
      const srv = tls.createServer(profile.serverOptions(), (socket) => socket.end());
      profile.keepCurrent(srv, silentLogger);
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      const port = (srv.address() as { port: number }).port;
      const servedCn = (): Promise<unknown> => new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
          resolve(socket.getPeerCertificate().subject.CN);
          socket.destroy();
        });
        socket.on('error', reject);
      });
      try {
        assert.equal(await servedCn(), 'localhost');
        const renewed = pki.issue('renewed', { cn: 'renewed', ips: ['127.0.0.1'] });
        copyFileSync(renewed.cert, certFile);
        copyFileSync(renewed.key, keyFile);
        const later = new Date(Date.now() + 5000);
        utimesSync(certFile, later, later);
        utimesSync(keyFile, later, later);
        assert.equal(await servedCn(), 'renewed');
      } finally {
        await new Promise((resolve) => srv.close(resolve));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports missing files and exclusive settings with etcd\'s words', () => {
    assert.throws(() => TlsProfile.load({ ...emptyTlsInfo, certFile: '/nope.pem', keyFile: server.key }), /^Error: open \/nope.pem: no such file or directory$/);
    assert.throws(() => TlsProfile.load({ ...emptyTlsInfo, certFile: server.cert }), /KeyFile and CertFile must both be present/);
    assert.throws(() => TlsProfile.load({ ...emptyTlsInfo, certFile: server.cert, keyFile: server.key, allowedCn: 'a', allowedHostname: 'b' }),
      /AllowedCN and AllowedHostname are mutually exclusive/);
  });
});
