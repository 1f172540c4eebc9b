/**
 * The real etcdctl 3.4 (Go gRPC, clientv3) against our server with the real registrations from
 * src/api/grpc/services.ts over fake server APIs: unary calls, EtcdError texts, server streaming
 * (snapshot save), bidi streaming (lease keep-alive, watch) and a Go client disconnecting mid-stream.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import {
  DeleteRangeResponse, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseService, MaintenanceService,
  MemberListResponse, PutResponse, RangeResponse, SnapshotRequest, SnapshotResponse, StatusResponse, WatchRequest,
  WatchResponse, WatchService,
  type PutRequest, type RangeRequest,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import { clusterService, kvService, maintenanceService, type ClusterApi, type KvApi, type MaintenanceApi } from '../grpc/services.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { quietLog, recordingLog, startServer, waitFor, type Started } from './test-support.js';

const etcdctlPath = '/usr/bin/etcdctl';
const header = { clusterId: 0xcdf818194e3a8c32n, memberId: 0x8e9e05c52164694dn, revision: 5n, raftTerm: 2n };
const seen = { puts: [] as PutRequest[], ranges: [] as RangeRequest[], watchCancelled: false };

function unsupported(): never {
  throw new Error('not used by this test');
}

const kvApi: KvApi = {
  async put(r) {
    seen.puts.push(r);
    return PutResponse.fromPartial({ header, ...(r.prevKv ? { prevKv: { key: r.key, value: Buffer.from('before'), version: 1n } } : {}) });
  },
  async range(r) {
    seen.ranges.push(r);
    if (r.key.toString() === 'compacted') throw new EtcdError('Compacted');
    return RangeResponse.fromPartial({
      header, count: 1n,
      kvs: [{ key: r.key, value: Buffer.from(`value of ${r.key.toString()}`), createRevision: 4n, modRevision: 5n, version: 2n }],
    });
  },
  async deleteRange() {
    return DeleteRangeResponse.fromPartial({ header, deleted: 1n });
  },
  txn: unsupported,
  compact: unsupported,
};

const maintenanceApi: MaintenanceApi = {
  async status() {
    return StatusResponse.fromPartial({
      header, version: '3.4.23', dbSize: 24576n, leader: header.memberId, raftIndex: 10n, raftTerm: 2n, raftAppliedIndex: 10n,
    });
  },
  alarm: unsupported, defragment: unsupported, hash: unsupported, hashKV: unsupported, moveLeader: unsupported,
};

const clusterApi: ClusterApi = {
  async memberList() {
    return MemberListResponse.fromPartial({
      header, members: [{ ID: header.memberId, name: 'default', peerURLs: ['http://localhost:2380'], clientURLs: ['http://localhost:2379'] }],
    });
  },
  memberAdd: unsupported, memberRemove: unsupported, memberUpdate: unsupported, memberPromote: unsupported,
};

/** A snapshot whose size etcdctl accepts: 512-byte pages plus a 32-byte sha256 trailer. */
const snapshotBytes = Buffer.concat([Buffer.alloc(3 * 512, 0x5a), Buffer.alloc(32, 0x01)]);

function withSnapshot(registration: H2ServiceRegistration): H2ServiceRegistration {
  const snapshot = (call: ServerWritableStream<SnapshotRequest, SnapshotResponse>): void => {
    for (let at = 0; at < snapshotBytes.length; at += 500) {
      const blob = snapshotBytes.subarray(at, at + 500);
      call.write(SnapshotResponse.fromPartial({ header, remainingBytes: BigInt(snapshotBytes.length - at - blob.length), blob }));
    }
    call.end();
  };
  return { definition: MaintenanceService, implementation: { ...registration.implementation, snapshot } };
}

const lease: H2ServiceRegistration = {
  definition: LeaseService,
  implementation: {
    leaseKeepAlive: (call: ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
      call.on('data', (r: LeaseKeepAliveRequest) => call.write(LeaseKeepAliveResponse.fromPartial({ header, ID: r.ID, TTL: 42n })));
      call.on('end', () => call.end());
    },
  },
};

const watch: H2ServiceRegistration = {
  definition: WatchService,
  implementation: {
    watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
      call.on('cancelled', () => { seen.watchCancelled = true; });
      call.on('data', (r: WatchRequest) => {
        if (r.requestUnion?.$case !== 'createRequest') return;
        const key = r.requestUnion.value.key;
        call.write(WatchResponse.fromPartial({ header, watchId: 0n, created: true }));
        call.write(WatchResponse.fromPartial({
          header, watchId: 0n,
          events: [{ type: Event_EventType.PUT, kv: { key, value: Buffer.from('watched'), createRevision: 5n, modRevision: 5n, version: 1n } }],
        }));
      });
    },
  },
};

const log = recordingLog();
let started: Started;
let tmp: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'h2-etcdctl-'));
  started = await startServer([
    kvService(kvApi, quietLog), withSnapshot(maintenanceService(maintenanceApi, quietLog)), clusterService(clusterApi, quietLog), lease, watch,
  ], { log });
});

after(async () => {
  await started.server.close(1000);
  fs.rmSync(tmp, { recursive: true, force: true });
  assert.deepEqual(log.errors, []);
});

interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function etcdctl(...args: string[]): Promise<CtlResult> {
  return new Promise((resolve) => {
    execFile(etcdctlPath, ['--endpoints', started.target, '--command-timeout=10s', ...args], { env: { ETCDCTL_API: '3', PATH: process.env['PATH'] ?? '' } },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : Number(err.code ?? -1), stdout, stderr }));
  });
}

test('etcdctl put reaches the handler with the request it meant; --prev-kv prints what the handler returned', async () => {
  const r = await etcdctl('put', 'greeting', 'hello world');
  assert.deepEqual(r, { code: 0, stdout: 'OK\n', stderr: '' });
  const put = seen.puts.at(-1);
  assert.equal(put?.key.toString(), 'greeting');
  assert.equal(put?.value.toString(), 'hello world');
  assert.equal(put?.prevKv, false);
  const prev = await etcdctl('put', 'greeting', 'again', '--prev-kv');
  assert.equal(prev.stdout, 'OK\ngreeting\nbefore\n');
  assert.equal(seen.puts.at(-1)?.prevKv, true);
});

test('etcdctl get prints what the handler returned, in simple and json formats', async () => {
  const simple = await etcdctl('get', 'k1');
  assert.deepEqual(simple, { code: 0, stdout: 'k1\nvalue of k1\n', stderr: '' });
  const raw = (await etcdctl('-w', 'json', 'get', 'k2', '--prefix')).stdout;
  // 64-bit ids are printed as bare JSON numbers; read them as text, not through a double.
  assert.equal(/"cluster_id":(\d+)/.exec(raw)?.[1], header.clusterId.toString());
  assert.equal(/"member_id":(\d+)/.exec(raw)?.[1], header.memberId.toString());
  const json = JSON.parse(raw) as { header: { revision: number }; kvs: Array<{ key: string; value: string }> };
  assert.equal(json.header.revision, 5);
  assert.equal(Buffer.from(json.kvs[0]?.value ?? '', 'base64').toString(), 'value of k2');
  assert.equal(seen.ranges.at(-1)?.rangeEnd.toString(), 'k3'); // --prefix became range_end
});

test('an EtcdError reaches etcdctl as "Error: <etcd\'s text>"', async () => {
  const r = await etcdctl('get', 'compacted');
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /\nError: etcdserver: mvcc: required revision has been compacted\n$/);
});

test('etcdctl endpoint status and member list are served by the Maintenance and Cluster fakes', async () => {
  const status = await etcdctl('endpoint', 'status');
  assert.equal(status.code, 0, status.stderr);
  assert.equal(status.stdout, `${started.target}, 8e9e05c52164694d, 3.4.23, 25 kB, true, false, 2, 10, 10, \n`);
  const members = await etcdctl('member', 'list');
  assert.equal(members.stdout, '8e9e05c52164694d, started, default, http://localhost:2380, http://localhost:2379, false\n');
});

test('server streaming to Go: etcdctl snapshot save writes exactly the streamed bytes', async () => {
  const file = path.join(tmp, 'snap.db');
  const r = await etcdctl('snapshot', 'save', file);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Snapshot saved at /);
  assert.deepEqual(fs.readFileSync(file), snapshotBytes);
});

test('bidi streaming to Go: etcdctl lease keep-alive --once', async () => {
  const r = await etcdctl('lease', 'keep-alive', '--once', '694d7b8e5c2f1a3b');
  assert.deepEqual(r, { code: 0, stdout: 'lease 694d7b8e5c2f1a3b keepalived with TTL(42)\n', stderr: '' });
});

test('bidi streaming to Go: etcdctl watch prints the event; killing it cancels the handler', async () => {
  const child = spawn(etcdctlPath, ['--endpoints', started.target, 'watch', 'wkey'], { env: { ETCDCTL_API: '3' } });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    await waitFor(() => out === 'PUT\nwkey\nwatched\n', { what: 'etcdctl watch to print the event', timeoutMs: 10_000 });
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
  await waitFor(() => seen.watchCancelled, { what: 'the watch handler to see the client go' });
});
