/**
 * Certificate revocation lists, checked as etcd 3.4 checks them: after the handshake, the CRL file is read
 * again for every connection (so a new CRL takes effect without a restart) and a certificate anywhere in
 * the peer's chain whose serial number is listed is refused. Like etcd, the CRL's own signature and dates
 * are not checked: the file is trusted as the operator's list.
 */
import { readFileSync } from 'node:fs';
import { children, Tag } from './der.js';

/** DER bytes from a PEM "X509 CRL" block, or the bytes themselves when they are DER already. */
function crlDer(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  return m === null ? bytes : Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

function magnitude(integer: Buffer): bigint {
  return integer.length === 0 ? 0n : BigInt('0x' + integer.toString('hex'));
}

/** The serial numbers a CRL revokes (RFC 5280 §5.1: TBSCertList.revokedCertificates). */
export function revokedSerials(crl: Buffer): Set<bigint> {
  const [list] = children(crlDer(crl));
  if (list === undefined || list.tag !== Tag.sequence) throw new Error('CRL: not a CertificateList');
  const [tbs] = children(list.content, 1);
  if (tbs === undefined || tbs.tag !== Tag.sequence) throw new Error('CRL: no TBSCertList');
  const fields = children(tbs.content, 2);
  let i = fields[0]?.tag === Tag.integer ? 1 : 0; // optional version
  i += 2; // signature algorithm, issuer
  while (fields[i]?.tag === Tag.utcTime || fields[i]?.tag === Tag.generalizedTime) i++; // thisUpdate, nextUpdate
  const out = new Set<bigint>();
  const revoked = fields[i];
  if (revoked === undefined || revoked.tag !== Tag.sequence) return out;
  for (const entry of children(revoked.content, 3)) {
    const [serial] = children(entry.content, 4);
    if (serial?.tag === Tag.integer) out.add(magnitude(serial.content));
  }
  return out;
}

/** Throws etcd's error when a serial of `chain` (hex strings, as Node prints them) is revoked by the CRL file. */
export function checkCrl(crlFile: string, chainSerialsHex: readonly string[]): void {
  const revoked = revokedSerials(readFileSync(crlFile));
  for (const hex of chainSerialsHex) {
    const serial = BigInt('0x' + hex);
    if (revoked.has(serial)) {
      let text = serial.toString(16);
      if (text.length % 2 === 1) text = '0' + text;
      throw new Error(`transport: certificate serial ${text} revoked`);
    }
  }
}
