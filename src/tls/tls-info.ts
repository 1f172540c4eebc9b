/**
 * One side's TLS settings (client or peer), as etcd's TLSInfo holds them, turned into Node's TLS options,
 * plus the checks etcd makes that OpenSSL does not: after the handshake the server checks the client
 * certificate's IP/DNS SANs against the connection's remote address, an allowed CN or hostname, and the
 * CRL file; a client checks the allowed CN or hostname of the server's certificate.
 *
 *   const profile = TlsProfile.load(info);               // reads the files; throws etcd-like errors
 *   tls.createServer(profile.serverOptions())             // then, per connection:
 *   await profile.checkIncoming(socket)                   // throws why the peer is refused
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions, DetailedPeerCertificate, SecureContextOptions, SecureVersion, Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import type { Logger } from '../base/logger.js';
import { opensslCiphers } from './cipher-suites.js';
import { checkCrl } from './crl.js';
import type { PeerTls } from '../raftnode/transport/connection.js';

export type TlsVersionName = '' | 'TLS1.2' | 'TLS1.3';

export interface TlsInfo {
  readonly certFile: string;
  readonly keyFile: string;
  readonly trustedCaFile: string;
  readonly clientCertAuth: boolean;
  readonly crlFile: string;
  /** Only a peer presenting a certificate with this CN is accepted (mutually exclusive with allowedHostname). */
  readonly allowedCn: string;
  readonly allowedHostname: string;
  /** Skip the client-SAN-versus-remote-address check (etcd's SkipClientSANVerify). */
  readonly skipClientSanVerify: boolean;
  /** Go cipher suite names (--cipher-suites). */
  readonly cipherSuites: readonly string[];
  readonly minVersion: TlsVersionName;
  readonly maxVersion: TlsVersionName;
  /** The certificate was generated (--auto-tls): clients do not verify it. */
  readonly selfCert: boolean;
}

export const emptyTlsInfo: TlsInfo = {
  certFile: '', keyFile: '', trustedCaFile: '', clientCertAuth: false, crlFile: '', allowedCn: '', allowedHostname: '',
  skipClientSanVerify: false, cipherSuites: [], minVersion: '', maxVersion: '', selfCert: false,
};

export function tlsInfoEmpty(info: TlsInfo): boolean {
  return info.certFile === '' && info.keyFile === '';
}

/** etcd's TLSInfo.String(), as its "starting with client TLS" line prints it. */
export function tlsInfoText(info: TlsInfo): string {
  return `cert = ${info.certFile}, key = ${info.keyFile}, trusted-ca = ${info.trustedCaFile}, ` +
    `client-cert-auth = ${info.clientCertAuth}, crl-file = ${info.crlFile}`;
}

function secureVersion(v: TlsVersionName): SecureVersion | undefined {
  return v === 'TLS1.2' ? 'TLSv1.2' : v === 'TLS1.3' ? 'TLSv1.3' : undefined;
}

function readOrThrow(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
}

function sanEntries(cert: X509Certificate): { ips: string[]; dns: string[] } {
  const ips: string[] = [];
  const dns: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) {
    if (part.startsWith('IP Address:')) ips.push(part.slice(11));
    else if (part.startsWith('DNS:')) dns.push(part.slice(4));
  }
  return { ips, dns };
}

function bareAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

/** Go's Certificate.VerifyHostname: an IP against IP SANs, a name against DNS SANs (no CN fallback). */
function matchesHostname(cert: X509Certificate, host: string): boolean {
  return isIP(host) !== 0 ? cert.checkIP(host) !== undefined : cert.checkHost(host, { subject: 'never' }) !== undefined;
}

/** The certificates the peer sent, leaf first, without a self-signed root at the end. */
function chainOf(socket: TLSSocket): DetailedPeerCertificate[] {
  const out: DetailedPeerCertificate[] = [];
  let cert = socket.getPeerCertificate(true);
  while (cert !== undefined && cert.raw !== undefined && out.length < 16) {
    const issuer = cert.issuerCertificate;
    if (out.length > 0 && (issuer === undefined || issuer === cert)) break;
    out.push(cert);
    if (issuer === undefined || issuer === cert) break;
    cert = issuer;
  }
  return out;
}

export class TlsProfile {
  readonly info: TlsInfo;
  #cert: Buffer;
  #key: Buffer;
  readonly #ca: Buffer | undefined;
  /** Modification times of the certificate and key as last read, to reload them when they change. */
  #stamp: string;
  readonly #ciphers: string | undefined;

  private constructor(info: TlsInfo) {
    this.info = info;
    if (info.keyFile === '' || info.certFile === '') {
      throw new Error(`KeyFile and CertFile must both be present[key: ${info.keyFile}, cert: ${info.certFile}]`);
    }
    if (info.allowedCn !== '' && info.allowedHostname !== '') {
      throw new Error(`AllowedCN and AllowedHostname are mutually exclusive (cn="${info.allowedCn}", hostname="${info.allowedHostname}")`);
    }
    this.#stamp = this.#fileStamp();
    this.#cert = readOrThrow(info.certFile);
    this.#key = readOrThrow(info.keyFile);
    this.#ca = info.trustedCaFile === '' ? undefined : readOrThrow(info.trustedCaFile);
    this.#ciphers = opensslCiphers(info.cipherSuites);
    if (info.crlFile !== '') readOrThrow(info.crlFile);
  }

  static load(info: TlsInfo): TlsProfile {
    return new TlsProfile(info);
  }

  #fileStamp(): string {
    try {
      return `${statSync(this.info.certFile).mtimeMs}/${statSync(this.info.keyFile).mtimeMs}`;
    } catch {
      return this.#stamp; // gone for a moment (being replaced): keep what we have
    }
  }

  /**
   * etcd reads the certificate and key again for every handshake, so renewed files take effect without a
   * restart; here they are read again when their modification time changed. Returns whether they did;
   * a pair that fails to load is logged by the caller and the previous one stays in use.
   */
  reloadIfChanged(): boolean {
    const stamp = this.#fileStamp();
    if (stamp === this.#stamp) return false;
    this.#stamp = stamp;
    const cert = readOrThrow(this.info.certFile);
    const key = readOrThrow(this.info.keyFile);
    createPrivateKey(key);
    this.#cert = cert;
    this.#key = key;
    return true;
  }

  /** Keeps a listening TLS server's certificate current (see reloadIfChanged), checked as each connection arrives. */
  keepCurrent(server: TlsServer, log: Logger): void {
    server.prependListener('connection', () => {
      try {
        if (this.reloadIfChanged()) server.setSecureContext(this.serverOptions());
      } catch (err) {
        log.warn('failed to create peer certificate', { 'cert-file': this.info.certFile, 'key-file': this.info.keyFile, error: (err as Error).message });
      }
    });
  }

  /** As etcd: a client certificate is required (and verified) once a trusted CA is given or client-cert-auth is on. */
  get requiresClientCert(): boolean {
    return this.info.trustedCaFile !== '' || this.info.clientCertAuth;
  }

  #common(): SecureContextOptions & { minVersion: SecureVersion; maxVersion?: SecureVersion } {
    const min = secureVersion(this.info.minVersion) ?? 'TLSv1.2';
    const max = secureVersion(this.info.maxVersion);
    return {
      cert: this.#cert, key: this.#key, minVersion: min,
      ...(max !== undefined ? { maxVersion: max } : {}),
      ...(this.#ciphers !== undefined ? { ciphers: this.#ciphers } : {}),
      ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
    };
  }

  serverOptions(): TlsOptions {
    const verify = this.requiresClientCert;
    return { ...this.#common(), requestCert: verify, rejectUnauthorized: verify };
  }

  /** For dialling: our certificate is offered to the server; a generated one means we do not verify the server's. */
  clientOptions(): ConnectionOptions {
    try {
      this.reloadIfChanged();
    } catch {
      // keep the pair already loaded; the listener side logs the failure
    }
    return { ...this.#common(), rejectUnauthorized: !this.info.selfCert };
  }

  /** The checks a server makes once a client's handshake is done; throws the reason to refuse it. */
  async checkIncoming(socket: TLSSocket): Promise<void> {
    const chain = chainOf(socket);
    const leaf = chain[0];
    if (leaf === undefined) return;
    const x509 = new X509Certificate(leaf.raw);
    if (!this.info.skipClientSanVerify) await checkClientSan(x509, bareAddress(socket.remoteAddress));
    if (socket.authorized) this.#checkAllowed(x509);
    if (this.info.crlFile !== '') checkCrl(this.info.crlFile, chain.map((c) => c.serialNumber));
  }

  /** The check a client makes on the server's certificate once connected; throws the reason to hang up. */
  checkOutgoing(socket: TLSSocket): void {
    if (this.info.allowedCn === '' && this.info.allowedHostname === '') return;
    const leaf = socket.getPeerCertificate();
    if (leaf?.raw === undefined || !socket.authorized) throw new Error('client certificate authentication failed');
    this.#checkAllowed(new X509Certificate(leaf.raw));
  }

  #checkAllowed(cert: X509Certificate): void {
    const { allowedCn, allowedHostname } = this.info;
    if (allowedCn !== '') {
      const cn = /^CN=(.*)$/m.exec(cert.subject)?.[1] ?? '';
      if (cn !== allowedCn) throw new Error('client certificate authentication failed');
    } else if (allowedHostname !== '' && !matchesHostname(cert, allowedHostname)) {
      throw new Error('client certificate authentication failed');
    }
  }
}

/** etcd's checkCertSAN: a client certificate naming IPs or DNS names must name the address it connects from. */
async function checkClientSan(cert: X509Certificate, remote: string): Promise<void> {
  const { ips, dns } = sanEntries(cert);
  if (ips.length === 0 && dns.length === 0) return;
  if (ips.length > 0) {
    if (cert.checkIP(remote) !== undefined) return;
    if (dns.length === 0) throw new Error(`x509: certificate is valid for ${ips.join(', ')}, not ${remote}`);
  }
  for (const name of dns.filter((n) => !n.startsWith('*.'))) {
    try {
      const addrs = await lookup(name, { all: true });
      if (addrs.some((a) => bareAddress(a.address) === remote)) return;
    } catch {
      // an unresolvable name simply does not match
    }
  }
  throw new Error(`tls: "${remote}" does not match any of DNSNames [${dns.map((n) => `"${n}"`).join(' ')}]`);
}

/** Go's words for the handshake failures OpenSSL reports in its own (etcd's logs are read by people and tools). */
function goHandshakeText(err: Error & { code?: string }): string {
  switch (err.code) {
    case 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE':
      return "tls: client didn't provide a certificate";
    case 'ERR_SSL_CERTIFICATE_VERIFY_FAILED':
      return "tls: failed to verify client's certificate: x509: certificate signed by unknown authority";
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_HTTP_REQUEST':
      return 'tls: first record does not look like a TLS handshake';
    default:
      // A client that hangs up mid-handshake: Go reads end of file.
      return err.message === 'socket hang up' || err.code === 'ECONNRESET' ? 'EOF' : err.message.trim();
  }
}

/** etcd's "rejected connection" warning, with what the refused certificate claims. */
export function logRejected(log: Logger, o: { err: Error; socket?: TLSSocket; remote?: string }): void {
  const socket = o.socket;
  const fields: Record<string, unknown> = {
    'remote-addr': socket !== undefined && socket.remoteAddress !== undefined
      ? `${bareAddress(socket.remoteAddress)}:${socket.remotePort ?? ''}` : o.remote ?? '',
    'server-name': (socket as (TLSSocket & { servername?: string | false }) | undefined)?.servername || '',
  };
  let leaf: ReturnType<TLSSocket['getPeerCertificate']> | undefined;
  try {
    leaf = socket?.getPeerCertificate();
  } catch {
    leaf = undefined; // the socket is already gone
  }
  if (leaf?.raw !== undefined) {
    const { ips, dns } = sanEntries(new X509Certificate(leaf.raw));
    fields['ip-addresses'] = ips;
    fields['dns-names'] = dns;
  }
  fields['error'] = goHandshakeText(o.err);
  log.warn('rejected connection', fields);
}

/** The peer transport's TLS settings from a profile; refusals are logged as etcd logs them. */
export function peerTlsOf(profile: TlsProfile, log: Logger): PeerTls {
  return {
    server: profile.serverOptions(),
    clientOptions: () => profile.clientOptions(),
    keepCurrent: (server) => profile.keepCurrent(server, log),
    checkIncoming: (socket) => profile.checkIncoming(socket),
    checkOutgoing: (socket) => profile.checkOutgoing(socket),
    onReject: (r) => logRejected(log, r),
  };
}
