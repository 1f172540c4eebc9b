/**
 * https:// client URLs: TLS with ALPN picks HTTP/2 (gRPC) or HTTP/1.1 on the same port, for grpc-js and
 * for etcdctl with --cacert.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { credentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import { KVClient, KVService, PutRequest, PutResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { startServer, type Started } from './test-support.js';

let tmp: string;
let ca: Buffer;
let started: Started;
const puts: string[] = [];

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2-tls-'));
  const key = path.join(tmp, 'key.pem');
  const cert = path.join(tmp, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
  { stdio: 'ignore' });
  ca = fs.readFileSync(cert);
  started = await startServer([{
    definition: KVService,
    implementation: {
      put: (call: ServerUnaryCall<PutRequest, PutResponse>, cb: sendUnaryData<PutResponse>) => {
        puts.push(call.request.key.toString());
        cb(null, PutResponse.fromPartial({ header: { revision: 1n } }));
      },
    },
  }], {
    urls: [new URL('https://127.0.0.1:0')],
    tls: { key: fs.readFileSync(key), cert: ca },
    httpHandler: (req, res) => res.end(`secure ${req.httpVersion} ${req.url}`),
  });
});

after(async () => {
  await started.server.close(1000);
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('grpc-js over TLS (ALPN h2) reaches the gRPC handler', async () => {
  const client = new KVClient(started.target, credentials.createSsl(ca));
  try {
    await new Promise<void>((resolve, reject) =>
      client.put(PutRequest.fromPartial({ key: Buffer.from('tls-key') }), (err) => (err !== null ? reject(err) : resolve())));
    assert.equal(puts.at(-1), 'tls-key');
  } finally {
    client.close();
  }
});

test('HTTPS/1.1 on the same port (ALPN http/1.1) reaches the HTTP handler', async () => {
  const body = await new Promise<string>((resolve, reject) => {
    https.get({ host: '127.0.0.1', port: started.port, path: '/health', ca }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => { text += d.toString(); });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  assert.equal(body, 'secure 1.1 /health');
});

test('etcdctl with --cacert talks gRPC over TLS', async () => {
  const cacert = path.join(tmp, 'cert.pem');
  const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile('/usr/bin/etcdctl', ['--endpoints', `https://${started.target}`, '--cacert', cacert, 'put', 'ctl-tls', 'v'],
      { env: { ETCDCTL_API: '3' } }, (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number(err.code ?? -1), stdout, stderr }));
  });
  assert.deepEqual(out, { code: 0, stdout: 'OK\n', stderr: '' });
  assert.equal(puts.at(-1), 'ctl-tls');
});
