/**
 * --auto-tls / --peer-auto-tls: a self-signed certificate made at start-up, as etcd 3.4's SelfCert makes
 * it: an ECDSA P-521 key, subject O=etcd, valid one year from now, key usage digital signature + key
 * encipherment, extended key usage server auth, not a CA, one SAN per listen URL host (IP or DNS name).
 * It is written to <data-dir>/fixtures/{client,peer}/{cert,key}.pem and reused when both files exist.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../base/logger.js';
import { explicit, implicitPrimitive, oid, seq, set, tlv, time, Tag, unsignedInteger } from './der.js';

const oids = {
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  subjectAltName: '2.5.29.17',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

const validityMs = 365 * 24 * 3600 * 1000;

export interface SelfCertFiles {
  readonly certFile: string;
  readonly keyFile: string;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [tlv(Tag.boolean, Buffer.from([0xff]))] : []), tlv(Tag.octetString, value));
}

/** IPv4 or IPv6 text to the 4 or 16 bytes of an iPAddress SAN. */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const words = (s: string): number[] => (s === '' ? [] : s.split(':').map((w) => parseInt(w, 16)));
  const h = words(head);
  const t = words(tail);
  const all = ip.includes('::') ? [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t] : h;
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

/** "host:port", "[v6]:port", "host" or a bare IPv6 address, to the host alone. */
function hostOnly(hostPort: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(hostPort);
  if (bracketed !== null) return bracketed[1]!;
  if (isIP(hostPort) === 6) return hostPort;
  return hostPort.replace(/:\d*$/, '');
}

/** The DER of the certificate for `hosts` (host or host:port), signed by `key`. */
export function selfSignedDer(key: { privateKey: KeyObject; publicKey: KeyObject }, hosts: readonly string[], now: Date): Buffer {
  const sans = hosts.map((h) => {
    const host = hostOnly(h);
    return isIP(host) !== 0 ? implicitPrimitive(7, ipBytes(host)) : implicitPrimitive(2, Buffer.from(host, 'latin1'));
  });
  const name = seq(set(seq(oid(oids.organization), tlv(Tag.printableString, Buffer.from('etcd')))));
  const algorithm = seq(oid(oids.ecdsaWithSha512));
  const extensions = [
    extension(oids.keyUsage, true, tlv(Tag.bitString, Buffer.from([0x05, 0xa0]))),
    extension(oids.extKeyUsage, false, seq(oid(oids.serverAuth))),
    extension(oids.basicConstraints, true, seq()),
    ...(sans.length > 0 ? [extension(oids.subjectAltName, false, seq(...sans))] : []),
  ];
  const serial = randomBytes(16);
  const tbs = seq(
    explicit(0, tlv(Tag.integer, Buffer.from([2]))),
    unsignedInteger(serial),
    algorithm,
    name,
    seq(time(now), time(new Date(now.getTime() + validityMs))),
    name,
    key.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha512', tbs, key.privateKey);
  return seq(tbs, algorithm, tlv(Tag.bitString, Buffer.concat([Buffer.from([0]), signature])));
}

function pem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Makes (or reuses) the certificate and key in `dir`; throws when they cannot be written. */
export function selfCert(dir: string, hosts: readonly string[], log: Logger): SelfCertFiles {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  if (existsSync(certFile) && existsSync(keyFile)) {
    // A key that does not parse fails here, at start-up, rather than at the first handshake.
    createPrivateKey(readFileSync(keyFile));
    return { certFile, keyFile };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  writeFileSync(certFile, pem('CERTIFICATE', selfSignedDer(key, hosts, new Date())));
  log.info('created cert file', { path: certFile });
  writeFileSync(keyFile, key.privateKey.export({ type: 'sec1', format: 'pem' }), { mode: 0o600 });
  log.info('created key file', { path: keyFile });
  return { certFile, keyFile };
}
