/**
 * The TLS flags: accepted and carried into the configuration, checked as etcd checks them, and resolved at
 * start-up (auto-TLS certificates in <data-dir>/fixtures/<side>, https URLs without certificates refused).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../base/logger.js';
import { ConfigError, loadConfig } from './config.js';
import { resolveTls } from './tls-config.js';

const urls = ['--listen-client-urls=https://127.0.0.1:2379,http://127.0.0.1:22379', '--advertise-client-urls=https://127.0.0.1:2379'];

test('client and peer TLS flags are taken from flags and the environment', () => {
  const cfg = loadConfig([...urls, '--cert-file=/c.pem', '--key-file=/k.pem', '--trusted-ca-file=/ca.pem', '--client-cert-auth',
    '--client-crl-file=/crl.pem', '--cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
    '--peer-cert-allowed-cn=peer'], { ETCD_PEER_AUTO_TLS: 'true', ETCD_PEER_CLIENT_CERT_AUTH: 'true' });
  assert.equal(cfg.listenClientUrls.map(String).join(','), 'https://127.0.0.1:2379/,http://127.0.0.1:22379/');
  assert.deepEqual(
    { cert: cfg.tls.client.certFile, key: cfg.tls.client.keyFile, ca: cfg.tls.client.trustedCaFile, auth: cfg.tls.client.clientCertAuth, crl: cfg.tls.client.crlFile },
    { cert: '/c.pem', key: '/k.pem', ca: '/ca.pem', auth: true, crl: '/crl.pem' });
  assert.deepEqual(cfg.tls.cipherSuites, ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256']);
  assert.equal(cfg.tls.peerAutoTls, true);
  assert.equal(cfg.tls.clientAutoTls, false);
  assert.equal(cfg.tls.peer.clientCertAuth, true);
  assert.equal(cfg.tls.peer.allowedCn, 'peer');
});

test('a config file sets TLS as etcd 3.4 reads it: client-transport-security, peer-transport-security, cipher-suites', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-yaml-'));
  try {
    const path = join(dir, 'etcd.yaml');
    writeFileSync(path, [
      'listen-client-urls: https://127.0.0.1:2379', 'advertise-client-urls: https://127.0.0.1:2379',
      'client-transport-security:', '  cert-file: /c.pem', '  key-file: /k.pem', '  client-cert-auth: true', '  trusted-ca-file: /ca.pem',
      'peer-transport-security:', '  auto-tls: true',
      'cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]', '',
    ].join('\n'));
    const cfg = loadConfig(['--config-file', path], {});
    assert.deepEqual([cfg.tls.client.certFile, cfg.tls.client.keyFile, cfg.tls.client.trustedCaFile, cfg.tls.client.clientCertAuth], ['/c.pem', '/k.pem', '/ca.pem', true]);
    assert.equal(cfg.tls.peerAutoTls, true);
    assert.deepEqual(cfg.tls.cipherSuites, ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384']);
    writeFileSync(path, 'client-transport-security:\n  crl-file: /x\n');
    assert.throws(() => loadConfig(['--config-file', path], {}), (e) => e instanceof ConfigError && /unknown key "crl-file" in "client-transport-security"/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('etcd 3.5 --tls-min-version / --tls-max-version are accepted and checked', () => {
  assert.equal(loadConfig(['--tls-min-version=TLS1.3'], {}).tls.client.minVersion, 'TLS1.3');
  assert.throws(() => loadConfig(['--tls-min-version=TLS1.1'], {}),
    (e) => e instanceof ConfigError && /unexpected TLS version "TLS1.1" \(must be one of: TLS1.2, TLS1.3\)/.test(e.message));
  assert.throws(() => loadConfig(['--tls-min-version=TLS1.3', '--tls-max-version=TLS1.2'], {}), /min version \(TLS1.3\) is greater than max version \(TLS1.2\)/);
  assert.throws(() => loadConfig(['--tls-min-version=TLS1.3', '--cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA'], {}), /cipher suites cannot be configured/);
  assert.throws(() => loadConfig(['--peer-cert-allowed-cn=a', '--peer-cert-allowed-hostname=b'], {}), /mutually exclusive/);
});

test('an https client URL needs a certificate unless --auto-tls; unknown cipher suites are refused even without TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-config-'));
  try {
    const plain = loadConfig([...urls, `--data-dir=${dir}`], {});
    const at = (cfg: typeof plain): ReturnType<typeof resolveTls> => resolveTls(cfg.tls, {
      dataDir: cfg.dataDir, log: silentLogger, listenClientUrls: cfg.listenClientUrls, listenPeerUrls: cfg.listenPeerUrls,
    });
    assert.throws(() => at(plain), /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127.0.0.1:2379\/ with HTTPS scheme/);
    const auto = loadConfig([...urls, `--data-dir=${dir}`, '--auto-tls'], {});
    const resolved = at(auto);
    assert.equal(resolved.peer, null);
    const certFile = join(dir, 'fixtures', 'client', 'cert.pem');
    assert.equal(resolved.client?.info.certFile, certFile);
    assert.equal(resolved.client?.info.selfCert, true);
    const cert = new X509Certificate(readFileSync(certFile));
    assert.equal(cert.subject, 'O=etcd');
    assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1, IP Address:127.0.0.1');
    assert.ok(cert.verify(cert.publicKey));
    assert.equal(statSync(join(dir, 'fixtures', 'client', 'key.pem')).mode & 0o777, 0o600);
    // A restart reuses the same certificate.
    at(auto);
    assert.equal(new X509Certificate(readFileSync(certFile)).serialNumber, cert.serialNumber);
    assert.throws(() => loadConfig(['--cipher-suites=TLS_NO_SUCH'], {}), (e) => e instanceof ConfigError && /unexpected TLS cipher suite "TLS_NO_SUCH"/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
