import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import type { LeaseKeepAliveRequest, LeaseKeepAliveResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { leaseService, type LeaseApi } from './lease-service.js';

const silent = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => silent } as unknown as Logger;

/** A keep-alive call: what the handler writes, whether it ended, the error it emitted. */
class FakeCall extends EventEmitter {
  readonly written: LeaseKeepAliveResponse[] = [];
  ended = false;
  failure: unknown;
  constructor() {
    super();
    this.on('error', (e: unknown) => {
      this.failure ??= e;
    });
  }
  write(r: LeaseKeepAliveResponse): boolean {
    this.written.push(r);
    return true;
  }
  end(): void {
    this.ended = true;
  }
}

/** Renewals that finish when the test says, in any order. */
function slowApi(): { api: LeaseApi; finish: (id: bigint, ttl: bigint | Error) => void; started: bigint[] } {
  const pending = new Map<bigint, { ok: (v: bigint) => void; fail: (e: Error) => void }>();
  const started: bigint[] = [];
  let revision = 0n;
  const api = {
    header: () => ({ clusterId: 1n, memberId: 1n, revision: ++revision, raftTerm: 1n }),
    leaseRenew: (id: bigint) => new Promise<bigint>((ok, fail) => {
      started.push(id);
      pending.set(id, { ok, fail });
    }),
  } as unknown as LeaseApi;
  return { api, started, finish: (id, v) => (v instanceof Error ? pending.get(id)?.fail(v) : pending.get(id)?.ok(v)) };
}

const tick = (): Promise<void> => new Promise((ok) => setImmediate(ok));

function open(api: LeaseApi): FakeCall {
  const call = new FakeCall();
  const impl = leaseService(api, silent).implementation as { leaseKeepAlive: (c: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => void };
  impl.leaseKeepAlive(call as unknown as ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>);
  return call;
}

test('keep-alives of one stream are renewed together and answered in request order', async () => {
  const { api, finish, started } = slowApi();
  const call = open(api);
  for (const id of [1n, 2n, 3n]) call.emit('data', { ID: id });
  call.emit('end');
  await tick();
  assert.deepEqual(started, [1n, 2n, 3n], 'all three renewals run at once');
  finish(3n, 30n);
  finish(2n, new EtcdError('LeaseNotFound'));
  await tick();
  assert.equal(call.written.length, 0, 'nothing is answered before the first request');
  finish(1n, 10n);
  await tick();
  assert.deepEqual(call.written.map((r) => [r.ID, r.TTL]), [[1n, 10n], [2n, 0n], [3n, 30n]]);
  // Each header was taken when its renewal started: revisions in request order.
  assert.deepEqual(call.written.map((r) => r.header?.revision), [1n, 2n, 3n]);
  assert.equal(call.ended, true);
});

test('a failed renewal fails the stream after the answers before it', async () => {
  const { api, finish } = slowApi();
  const call = open(api);
  for (const id of [1n, 2n, 3n]) call.emit('data', { ID: id });
  await tick();
  finish(2n, new EtcdError('NoLeader'));
  finish(3n, 30n);
  finish(1n, 10n);
  await tick();
  assert.deepEqual(call.written.map((r) => r.ID), [1n]);
  assert.match(String((call.failure as { details?: string }).details), /no leader/);
});
