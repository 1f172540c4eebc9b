/**
 * The TLS flags: --cert-file and friends for clients, --peer-* for peers, --auto-tls / --peer-auto-tls,
 * --cipher-suites, and etcd 3.5's --tls-min-version / --tls-max-version (accepted as 3.5 does). At
 * start-up resolveTls() generates the self-signed certificates when asked, checks that every https URL
 * has a certificate, loads the files, and logs etcd's "starting with client/peer TLS" lines.
 */
import { join } from 'node:path';
import type { Logger } from '../base/logger.js';
import { opensslCiphers } from '../tls/cipher-suites.js';
import { selfCert } from '../tls/self-cert.js';
import { emptyTlsInfo, TlsProfile, tlsInfoEmpty, tlsInfoText, type TlsInfo, type TlsVersionName } from '../tls/tls-info.js';

export interface TlsConfig {
  readonly client: TlsInfo;
  readonly peer: TlsInfo;
  readonly clientAutoTls: boolean;
  readonly peerAutoTls: boolean;
  readonly cipherSuites: readonly string[];
}

export const noTls: TlsConfig = { client: emptyTlsInfo, peer: emptyTlsInfo, clientAutoTls: false, peerAutoTls: false, cipherSuites: [] };

function versionName(flag: string, text: string): TlsVersionName {
  if (text === '' || text === 'TLS1.2' || text === 'TLS1.3') return text;
  throw new Error(`--${flag}: unexpected TLS version "${text}" (must be one of: TLS1.2, TLS1.3)`);
}

/** Reads the TLS flags through `get` (a flag's normalised value) and checks what etcd checks up front. */
export function tlsConfigFrom(get: (flag: string) => string): TlsConfig {
  const cipherSuites = get('cipher-suites').split(',').filter((s) => s.length > 0);
  // etcd checks the names even when no listener uses TLS.
  opensslCiphers(cipherSuites);
  const minVersion = versionName('tls-min-version', get('tls-min-version'));
  const maxVersion = versionName('tls-max-version', get('tls-max-version'));
  if (minVersion === 'TLS1.3' && maxVersion === 'TLS1.2') {
    throw new Error(`min version (${minVersion}) is greater than max version (${maxVersion})`);
  }
  if (cipherSuites.length > 0 && minVersion === 'TLS1.3') {
    throw new Error('cipher suites cannot be configured when only TLS1.3 or greater is supported');
  }
  const shared = { cipherSuites, minVersion, maxVersion, selfCert: false };
  const client: TlsInfo = {
    ...shared,
    certFile: get('cert-file'), keyFile: get('key-file'), trustedCaFile: get('trusted-ca-file'),
    clientCertAuth: get('client-cert-auth') === 'true', crlFile: get('client-crl-file'),
    allowedCn: '', allowedHostname: get('client-cert-allowed-hostname'), skipClientSanVerify: false,
  };
  const peer: TlsInfo = {
    ...shared,
    certFile: get('peer-cert-file'), keyFile: get('peer-key-file'), trustedCaFile: get('peer-trusted-ca-file'),
    clientCertAuth: get('peer-client-cert-auth') === 'true', crlFile: get('peer-crl-file'),
    allowedCn: get('peer-cert-allowed-cn'), allowedHostname: get('peer-cert-allowed-hostname'),
    skipClientSanVerify: get('experimental-peer-skip-client-san-verification') === 'true',
  };
  if (peer.allowedCn !== '' && peer.allowedHostname !== '') {
    throw new Error(`AllowedCN and AllowedHostname are mutually exclusive (cn="${peer.allowedCn}", hostname="${peer.allowedHostname}")`);
  }
  return { client, peer, clientAutoTls: get('auto-tls') === 'true', peerAutoTls: get('peer-auto-tls') === 'true', cipherSuites };
}

/** etcd's YAML keys inside client-transport-security / peer-transport-security, and the flags they set. */
const securityKeys: Readonly<Record<string, string>> = {
  'cert-file': 'cert-file', 'key-file': 'key-file', 'client-cert-auth': 'client-cert-auth',
  'trusted-ca-file': 'trusted-ca-file', 'auto-tls': 'auto-tls',
};

/**
 * A config file's `client-transport-security: {cert-file: ..., ...}` (or the peer one) as flag values;
 * null for any other key. Throws for keys etcd 3.4 does not read there.
 */
export function yamlSecurityFlags(key: string, value: unknown): Array<[string, string]> | null {
  const prefix = key === 'client-transport-security' ? '' : key === 'peer-transport-security' ? 'peer-' : null;
  if (prefix === null) return null;
  if (value === null || value === undefined) return [];
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`"${key}" must be a mapping`);
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]): Array<[string, string]> => {
    const flag = securityKeys[k];
    if (flag === undefined) throw new Error(`unknown key "${k}" in "${key}"`);
    return v === null || v === undefined ? [] : [[prefix + flag, String(v)]];
  });
}

export interface ResolvedTls {
  /** Null when no client certificate is configured (nor generated). */
  readonly client: TlsProfile | null;
  /** Null when no peer certificate is configured (nor generated). */
  readonly peer: TlsProfile | null;
}

interface Side {
  readonly what: 'client' | 'peer';
  readonly info: TlsInfo;
  readonly auto: boolean;
  readonly listenUrls: readonly URL[];
}

function resolveSide(side: Side, o: { dataDir: string; log: Logger; cipherSuites: readonly string[] }): TlsProfile | null {
  let info = side.info;
  const flag = side.what === 'client' ? '' : 'peer-';
  if (side.auto && !tlsInfoEmpty(info)) o.log.warn(`ignoring ${side.what} auto TLS since certs given`);
  else if (side.auto) {
    const files = selfCert(join(o.dataDir, 'fixtures', side.what), side.listenUrls.map((u) => u.host), o.log);
    info = { ...info, ...files, selfCert: true };
  }
  for (const u of side.listenUrls) {
    if (u.protocol === 'http:' && !tlsInfoEmpty(info)) {
      o.log.warn('scheme is HTTP while key and cert files are present; ignoring key and cert files', { [`${side.what}-url`]: u.href });
    }
    if (u.protocol === 'http:' && info.clientCertAuth) {
      o.log.warn(`scheme is HTTP while --${flag}client-cert-auth is enabled; ignoring client cert auth for this URL`, { [`${side.what}-url`]: u.href });
    }
    if (u.protocol === 'https:' && tlsInfoEmpty(info)) {
      throw new Error(side.what === 'client'
        ? `TLS key/cert (--cert-file, --key-file) must be provided for client url ${u.href} with HTTPS scheme`
        : `cannot listen on TLS for ${u.host}: KeyFile and CertFile are not presented`);
    }
  }
  if (tlsInfoEmpty(info)) return null;
  const profile = TlsProfile.load(info);
  o.log.info(`starting with ${side.what} TLS`, { 'tls-info': tlsInfoText(info), 'cipher-suites': o.cipherSuites });
  return profile;
}

/** Generates auto-TLS certificates, checks https URLs have certificates, loads them; throws etcd's errors. */
export function resolveTls(tls: TlsConfig, o: {
  dataDir: string; log: Logger; listenClientUrls: readonly URL[]; listenPeerUrls: readonly URL[];
}): ResolvedTls {
  const common = { dataDir: o.dataDir, log: o.log, cipherSuites: tls.cipherSuites };
  const peer = resolveSide({ what: 'peer', info: tls.peer, auto: tls.peerAutoTls, listenUrls: o.listenPeerUrls}, common);
  const client = resolveSide({ what: 'client', info: tls.client, auto: tls.clientAutoTls, listenUrls: o.listenClientUrls}, common);
  return { client, peer };
}
