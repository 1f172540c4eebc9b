/**
 * Client TLS end to end, against real etcd (the reference) and etcd-ts started with the same flags:
 * the real etcdctl over https with a CA, client certificates verified under --client-cert-auth, a CRL,
 * --auto-tls (its generated certificate compared too), http and https on one member, and plaintext gRPC
 * sent to a TLS port. Outputs (exit code, stdout, stderr) must match the reference after replacing the
 * member's ports and etcdctl's timestamped retry warnings (normalise.ts rule 3).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { etcdctl, Member, targetsFromEnv, withLogsOnFailure, type CtlResult } from './harness.js';
import { TestPki, type Issued } from './tls-certs.js';

const targets = targetsFromEnv();
const quick = ['--dial-timeout=2s', '--command-timeout=3s'];

let pki: TestPki;
let server: Issued;
let alice: Issued;
let mallory: Issued;
let rootCert: Issued;

before(() => {
  pki = TestPki.create();
  server = pki.issue('server', { cn: 'localhost', ips: ['127.0.0.1'], dns: ['localhost'] });
  alice = pki.issue('alice', { cn: 'alice' });
  mallory = pki.issue('mallory', { cn: 'mallory' });
  rootCert = pki.issue('root', { cn: 'root' });
  pki.revoke(mallory);
  pki.crl();
});

after(() => pki.remove());

/** Ports and etcdctl's retry warnings (timestamp, client UUID) vary per run; everything else must match. */
function normalised(r: CtlResult, m: Member): string {
  const clean = (text: string): string => text
    .split(String(m.clientPort)).join('<client-port>')
    .split(m.httpClientPort !== 0 ? String(m.httpClientPort) : '<no http port>').join('<http-port>')
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/endpoint:\/\/client-[0-9a-f-]+\//g, 'endpoint://client-<uuid>/');
  return `code=${r.code}\n--stdout--\n${clean(r.stdout)}--stderr--\n${clean(r.stderr)}`;
}

interface Outputs {
  readonly [step: string]: string;
}

async function clientTlsScript(m: Member): Promise<Outputs> {
  const ca = ['--cacert', pki.caCert];
  const as = (who: Issued): string[] => [...ca, '--cert', who.cert, '--key', who.key];
  const https = { endpoints: m.clientUrl };
  const out: Record<string, string> = {};
  const step = async (name: string, args: readonly string[], endpoints: string = https.endpoints): Promise<CtlResult> => {
    const r = await etcdctl(args, { endpoints });
    out[name] = normalised(r, m);
    return r;
  };
  assert.equal((await step('put', [...as(alice), 'put', 'foo', 'bar'])).stdout, 'OK\n');
  assert.equal((await step('get', [...as(alice), 'get', 'foo'])).stdout, 'foo\nbar\n');
  assert.notEqual((await step('no client certificate', [...ca, ...quick, 'get', 'foo'])).code, 0);
  assert.notEqual((await step('revoked certificate', [...as(mallory), ...quick, 'get', 'foo'])).code, 0);
  assert.equal((await step('plain http port', ['get', 'foo'], m.httpClientUrl)).stdout, 'foo\nbar\n');
  assert.notEqual((await step('plaintext gRPC to the TLS port', [...quick, 'get', 'foo'], `http://127.0.0.1:${m.clientPort}`)).code, 0);
  // The member keeps serving TLS clients after the refusals.
  assert.equal((await step('get after refusals', [...as(alice), 'get', 'foo'])).stdout, 'foo\nbar\n');
  return out;
}

describe('client TLS', () => {
  test('https with a CA, client certificates, a CRL, and http on the same member: same outputs as etcd', async () => {
    const results = new Map<string, Outputs>();
    for (const target of targets) {
      const m = await Member.start({
        target,
        flags: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, `--trusted-ca-file=${pki.caCert}`, '--client-cert-auth',
          `--client-crl-file=${join(pki.dir, 'crl.pem')}`],
        tls: { ctlArgs: ['--cacert', pki.caCert, '--cert', alice.cert, '--key', alice.key], alsoHttp: true },
      });
      try {
        results.set(target.label, await withLogsOnFailure([m], () => clientTlsScript(m)));
        const log = readFileSync(m.logPath, 'utf8');
        // etcd 3.4 logs with capnslog by default ("ClientTLS:"), etcd-ts as etcd's zap logger does.
        assert.match(log, /starting with client TLS|ClientTLS: /);
        assert.match(log, /^(?=.*rejected connection)(?=.*certificate serial [0-9a-f]+ revoked).*$/m);
        assert.match(log, /^(?=.*rejected connection)(?=.*tls: client didn't provide a certificate).*$/m);
      } finally {
        await m.destroy();
      }
    }
    const [reference, ...others] = [...results];
    for (const [label, outputs] of others) {
      for (const [stepName, text] of Object.entries(reference![1])) {
        assert.equal(outputs[stepName], text, `${label} differs from ${reference![0]} at "${stepName}"`);
      }
    }
  });

  test('under --client-cert-auth with auth enabled, the certificate CN is the user: same outputs as etcd', async () => {
    const results = new Map<string, Outputs>();
    for (const target of targets) {
      const m = await Member.start({
        target,
        flags: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, `--trusted-ca-file=${pki.caCert}`, '--client-cert-auth'],
        tls: { ctlArgs: ['--cacert', pki.caCert, '--cert', rootCert.cert, '--key', rootCert.key] },
      });
      try {
        results.set(target.label, await withLogsOnFailure([m], async () => {
          const out: Record<string, string> = {};
          const as = (who: Issued, ...args: string[]): Promise<CtlResult> =>
            etcdctl(['--cacert', pki.caCert, '--cert', who.cert, '--key', who.key, ...args], { endpoints: m.clientUrl });
          const step = async (name: string, who: Issued, ...args: string[]): Promise<CtlResult> => {
            const r = await as(who, ...args);
            out[name] = normalised(r, m);
            return r;
          };
          await step('add root', rootCert, 'user', 'add', 'root:rootpw', '--interactive=false');
          await step('grant root', rootCert, 'user', 'grant-role', 'root', 'root');
          await step('add alice', rootCert, 'user', 'add', 'alice:apw', '--interactive=false');
          await step('add role', rootCert, 'role', 'add', 'r');
          await step('grant foo', rootCert, 'role', 'grant-permission', 'r', 'readwrite', 'foo');
          await step('grant alice', rootCert, 'user', 'grant-role', 'alice', 'r');
          assert.equal((await step('enable', rootCert, 'auth', 'enable')).code, 0);
          assert.equal((await step('root writes by CN', rootCert, 'put', 'secret', 's')).stdout, 'OK\n');
          assert.equal((await step('alice writes foo by CN', alice, 'put', 'foo', 'bar')).stdout, 'OK\n');
          assert.notEqual((await step('alice refused secret', alice, 'put', 'secret', 'x')).code, 0);
          assert.notEqual((await step('alice refused user list', alice, 'user', 'list')).code, 0);
          assert.equal((await step('root lists users', rootCert, 'user', 'list')).stdout, 'alice\nroot\n');
          await step('root reads secret', rootCert, 'get', 'secret');
          return out;
        }));
      } finally {
        await m.destroy();
      }
    }
    const [reference, ...others] = [...results];
    for (const [label, outputs] of others) {
      for (const [stepName, text] of Object.entries(reference![1])) {
        assert.equal(outputs[stepName], text, `${label} differs from ${reference![0]} at "${stepName}"`);
      }
    }
  });

  test('--cipher-suites by Go name: the same handshakes succeed and fail as on etcd', async () => {
    const seen = new Map<string, string[]>();
    const suite = 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256';
    for (const target of targets) {
      const m = await Member.start({
        target, flags: [`--cert-file=${server.cert}`, `--key-file=${server.key}`, `--cipher-suites=${suite}`],
        tls: { ctlArgs: ['--cacert', pki.caCert] },
      });
      try {
        const handshake = (o: tls.ConnectionOptions): Promise<string> => new Promise((resolve) => {
          const socket = tls.connect({ host: '127.0.0.1', port: m.clientPort, ca: readFileSync(pki.caCert), ALPNProtocols: ['h2'], ...o }, () => {
            resolve(`${socket.getProtocol()} ${socket.getCipher().name}`);
            socket.destroy();
          });
          socket.on('error', (err: Error & { code?: string }) => resolve(`refused (${err.code ?? 'error'})`));
        });
        seen.set(target.label, [
          await handshake({}),
          await handshake({ maxVersion: 'TLSv1.2' }),
          await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }),
        ]);
      } finally {
        await m.destroy();
      }
    }
    const [reference, ...others] = [...seen];
    assert.equal(reference![1][1], 'TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256');
    for (const [label, value] of others) assert.deepEqual(value, reference![1], `${label} differs from ${reference![0]}`);
  });

  test('--auto-tls: a generated certificate like etcd\'s, reachable with --insecure-skip-tls-verify', async () => {
    const seen = new Map<string, { cert: Record<string, unknown>; put: string; get: string }>();
    for (const target of targets) {
      // etcdctl 3.4 only turns TLS on for a bare --insecure-skip-tls-verify with --insecure-transport=false.
      const skipVerify = ['--insecure-skip-tls-verify', '--insecure-transport=false'];
      const m = await Member.start({ target, flags: ['--auto-tls'], tls: { ctlArgs: skipVerify } });
      try {
        await withLogsOnFailure([m], async () => {
          const ctl = (args: string[]): Promise<CtlResult> => etcdctl([...skipVerify, ...args], { endpoints: m.endpoint });
          const put = normalised(await ctl(['put', 'a', '1']), m);
          const get = normalised(await ctl(['get', 'a']), m);
          const pem = readFileSync(join(m.dataDir, 'fixtures', 'client', 'cert.pem'));
          const x = new X509Certificate(pem);
          const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
          const key = x.publicKey.asymmetricKeyDetails;
          seen.set(target.label, {
            cert: { subject: x.subject, issuer: x.issuer, san: x.subjectAltName, days, ca: x.ca, keyType: x.publicKey.asymmetricKeyType, curve: key?.namedCurve, selfSigned: x.verify(x.publicKey) },
            put, get,
          });
          assert.equal(put.split('--stdout--\n')[1]?.startsWith('OK\n'), true, put);
        });
      } finally {
        await m.destroy();
      }
    }
    const [reference, ...others] = [...seen];
    for (const [label, value] of others) assert.deepEqual(value, reference![1], `${label} differs from ${reference![0]}`);
  });
});
