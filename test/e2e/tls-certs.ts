/**
 * Test certificates made with the openssl binary: one CA, then leaf certificates signed by it (server
 * and client usages both, so one certificate serves a peer on both ends of a link), and a CRL revoking
 * chosen ones. Everything lives in one temp dir; remove() deletes it.
 *
 *   const pki = TestPki.create();
 *   const server = pki.issue('server', { cn: 'localhost', ips: ['127.0.0.1'], dns: ['localhost'] });
 *   const alice = pki.issue('alice', { cn: 'alice' });
 *   pki.revoke(alice); const crl = pki.crl();
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  readonly name: string;
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  readonly cn: string;
  readonly ips?: readonly string[];
  readonly dns?: readonly string[];
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? String(err)}`);
  }
}

export class TestPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly #config: string;

  private constructor(dir: string) {
    this.dir = dir;
    this.caCert = join(dir, 'ca.pem');
    this.caKey = join(dir, 'ca-key.pem');
    this.#config = join(dir, 'ca.cnf');
  }

  static create(): TestPki {
    const pki = new TestPki(mkdtempSync(join(tmpdir(), 'e2e-pki-')));
    pki.#init();
    return pki;
  }

  #init(): void {
    writeFileSync(join(this.dir, 'index.txt'), '');
    writeFileSync(join(this.dir, 'crlnumber'), '01\n');
    writeFileSync(this.#config, [
      '[ca]', 'default_ca = test_ca',
      '[test_ca]', `database = ${join(this.dir, 'index.txt')}`, `crlnumber = ${join(this.dir, 'crlnumber')}`,
      `certificate = ${this.caCert}`, `private_key = ${this.caKey}`, 'default_md = sha256', 'default_crl_days = 1',
      '',
    ].join('\n'));
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', this.caKey,
      '-out', this.caCert, '-days', '2', '-subj', '/CN=e2e-test-ca',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], this.dir);
  }

  /** A leaf certificate signed by the CA, usable as a TLS server and as a TLS client. */
  issue(name: string, options: IssueOptions): Issued {
    const key = join(this.dir, `${name}-key.pem`);
    const csr = join(this.dir, `${name}.csr`);
    const cert = join(this.dir, `${name}.pem`);
    const ext = join(this.dir, `${name}.ext`);
    const sans = [...(options.ips ?? []).map((ip) => `IP:${ip}`), ...(options.dns ?? []).map((d) => `DNS:${d}`)];
    writeFileSync(ext, [
      'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth', ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []), '',
    ].join('\n'));
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr,
      '-subj', `/CN=${options.cn}`], this.dir);
    openssl(['x509', '-req', '-in', csr, '-CA', this.caCert, '-CAkey', this.caKey, '-CAcreateserial', '-out', cert,
      '-days', '1', '-extfile', ext], this.dir);
    return { name, cert, key };
  }

  /** Marks a certificate revoked in the CA's database; the next crl() lists it. */
  revoke(issued: Issued): void {
    openssl(['ca', '-config', this.#config, '-revoke', issued.cert], this.dir);
  }

  /** Writes a CRL of every revoked certificate so far and returns its path. */
  crl(): string {
    const out = join(this.dir, 'crl.pem');
    openssl(['ca', '-config', this.#config, '-gencrl', '-out', out], this.dir);
    return out;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
