/**
 * Shutdown, alone in its process so that "no handle left" means exactly ours: in-flight calls and HTTP/1
 * requests finish within the grace period, streams past it are cut, and the handlers hear about it.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { credentials, status, type ServerDuplexStream, type ServerUnaryCall, type ServiceError, type sendUnaryData } from '@grpc/grpc-js';
import {
  KVClient, KVService, RangeRequest, RangeResponse, WatchClient, WatchRequest, WatchResponse, WatchService,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { startServer, waitFor } from './test-support.js';

test('graceful close: in-flight work finishes, a stream past the grace is cut, new connections are refused, no handle is left', async () => {
  let answerRange: (() => void) | undefined;
  let watchCancelled = false;
  let answerHttp: (() => void) | undefined;
  const kv: H2ServiceRegistration = {
    definition: KVService,
    implementation: {
      range: (_call: ServerUnaryCall<RangeRequest, RangeResponse>, cb: sendUnaryData<RangeResponse>) => {
        answerRange = () => cb(null, RangeResponse.fromPartial({ count: 7n }));
      },
    },
  };
  const watch: H2ServiceRegistration = {
    definition: WatchService,
    implementation: {
      watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
        call.on('cancelled', () => { watchCancelled = true; });
        call.on('data', () => call.write(WatchResponse.fromPartial({ created: true })));
      },
    },
  };
  const s = await startServer([kv, watch], {
    httpHandler: (_req, res) => {
      answerHttp = () => res.end('late but whole');
    },
  });
  const client = new KVClient(s.target, credentials.createInsecure());
  const watcher = new WatchClient(s.target, credentials.createInsecure());

  const pending = new Promise<RangeResponse>((resolve, reject) =>
    client.range(RangeRequest.fromPartial({ key: Buffer.from('k') }), (err, r) => (err !== null ? reject(err) : resolve(r))));
  const stream = watcher.watch();
  const streamEnded = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
  stream.write(WatchRequest.fromPartial({ requestUnion: { $case: 'createRequest', value: { key: Buffer.from('w') } } }));
  await new Promise((resolve) => stream.once('data', resolve));
  const httpBody = new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: s.port, path: '/slow' }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  await waitFor(() => answerRange !== undefined && answerHttp !== undefined, { what: 'both requests to reach their handlers' });

  const closing = s.server.close(400);
  answerRange?.();
  answerHttp?.();
  assert.equal((await pending).count, 7n);
  assert.equal(await httpBody, 'late but whole');
  await closing;
  assert.equal((await streamEnded).code, status.UNAVAILABLE);
  assert.equal(watchCancelled, true);

  const refused = await new Promise<string>((resolve) => {
    http.get({ host: '127.0.0.1', port: s.port, path: '/' }, () => resolve('served')).on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  client.close();
  watcher.close();
  // Handles finish closing in the event loop's close phase, a moment after close() resolves.
  await waitFor(() => !process.getActiveResourcesInfo().some((r) => r.startsWith('TCP')), { what: 'no TCP handle left' });
});
