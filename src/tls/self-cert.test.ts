/**
 * The DER this directory writes and reads: a generated certificate that OpenSSL (and Node) parse and
 * verify, with etcd's fields; a CRL's revoked serials, empty or not.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TestPki } from '../../test/e2e/tls-certs.js';
import { revokedSerials } from './crl.js';
import { oid } from './der.js';
import { selfSignedDer } from './self-cert.js';

test('a generated certificate carries etcd\'s fields and verifies', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const now = new Date('2049-12-31T12:00:00Z');
  const der = selfSignedDer(key, ['127.0.0.1:2380', '[::1]:2380', 'node.example:2380', 'fe80::1'], now);
  const cert = new X509Certificate(der);
  assert.equal(cert.subject, 'O=etcd');
  assert.equal(cert.issuer, 'O=etcd');
  assert.equal(cert.subjectAltName, 'IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:node.example, IP Address:FE80:0:0:0:0:0:0:1');
  assert.equal(cert.ca, false);
  assert.ok(cert.verify(key.publicKey));
  // Not after crosses 2050: GeneralizedTime, which OpenSSL reads back as the right date.
  assert.equal(new Date(cert.validTo).toISOString(), '2050-12-31T12:00:00.000Z');
  const text = execFileSync('openssl', ['x509', '-inform', 'DER', '-noout', '-text'], { input: der }).toString();
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA512/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(text, /X509v3 Extended Key Usage: \s*TLS Web Server Authentication/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
});

test('OIDs encode multi-byte arcs', () => {
  assert.equal(oid('1.2.840.10045.4.3.4').toString('hex'), '06082a8648ce3d040304');
});

test('revoked serials of a CRL, none before a revocation', () => {
  const pki = TestPki.create();
  try {
    const a = pki.issue('a', { cn: 'a' });
    assert.equal(revokedSerials(readFileSync(pki.crl())).size, 0);
    pki.revoke(a);
    const serial = BigInt('0x' + new X509Certificate(readFileSync(a.cert)).serialNumber);
    assert.deepEqual([...revokedSerials(readFileSync(pki.crl()))], [serial]);
    const der = execFileSync('openssl', ['crl', '-in', pki.crl(), '-outform', 'DER']);
    assert.deepEqual([...revokedSerials(der)], [serial]);
  } finally {
    pki.remove();
  }
});
