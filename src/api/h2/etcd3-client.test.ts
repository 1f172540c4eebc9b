/**
 * The npm etcd3 client (grpc-js underneath, its own error mapping) against our server with the real
 * services.ts KV registration over a fake, plus a fake Watch: unary calls, an etcd error the client maps
 * to its own type, and a watch stream.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { Etcd3, GRPCInvalidArgumentError } from 'etcd3';
import { EtcdError } from '../../base/errors.js';
import {
  PutResponse, RangeResponse, WatchResponse, WatchService, type PutRequest, type WatchRequest,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { Event_EventType } from '../../gen/etcd/mvcc/mvccpb/kv.js';
import { kvService, type KvApi } from '../grpc/services.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { quietLog, recordingLog, startServer, type Started } from './test-support.js';

const header = { clusterId: 1n, memberId: 2n, revision: 9n, raftTerm: 3n };
const store = new Map<string, Buffer>();

function unsupported(): never {
  throw new Error('not used by this test');
}

const kvApi: KvApi = {
  async put(r: PutRequest) {
    if (r.key.length === 0) throw new EtcdError('EmptyKey');
    store.set(r.key.toString(), r.value);
    return PutResponse.fromPartial({ header });
  },
  async range(r) {
    const value = store.get(r.key.toString());
    const kvs = value === undefined ? [] : [{ key: r.key, value, createRevision: 9n, modRevision: 9n, version: 1n }];
    return RangeResponse.fromPartial({ header, kvs, count: BigInt(kvs.length) });
  },
  deleteRange: unsupported, txn: unsupported, compact: unsupported,
};

const watch: H2ServiceRegistration = {
  definition: WatchService,
  implementation: {
    watch: (call: ServerDuplexStream<WatchRequest, WatchResponse>) => {
      call.on('data', (r: WatchRequest) => {
        if (r.requestUnion?.$case === 'cancelRequest') {
          call.write(WatchResponse.fromPartial({ header, watchId: r.requestUnion.value.watchId, canceled: true }));
          return;
        }
        if (r.requestUnion?.$case !== 'createRequest') return;
        const key = r.requestUnion.value.key;
        call.write(WatchResponse.fromPartial({ header, watchId: 0n, created: true }));
        for (const v of ['one', 'two']) {
          call.write(WatchResponse.fromPartial({
            header, watchId: 0n,
            events: [{ type: Event_EventType.PUT, kv: { key, value: Buffer.from(v), createRevision: 9n, modRevision: 9n, version: 1n } }],
          }));
        }
      });
    },
  },
};

const log = recordingLog();
let started: Started;
let client: Etcd3;

before(async () => {
  started = await startServer([kvService(kvApi, quietLog), watch], { log });
  client = new Etcd3({ hosts: `http://${started.target}` });
});

after(async () => {
  client.close();
  await started.server.close(1000);
  assert.deepEqual(log.errors, []);
});

test('etcd3: put then get strings and bytes', async () => {
  await client.put('a').value('hello');
  await client.put('b').value(Buffer.from([0, 1, 255]));
  assert.equal(await client.get('a').string(), 'hello');
  assert.deepEqual(await client.get('b').buffer(), Buffer.from([0, 1, 255]));
  assert.equal(await client.get('missing').string(), null);
});

test('etcd3: an etcd error arrives as the client\'s typed error with etcd\'s text', async () => {
  await assert.rejects(client.put('').value('x').exec(), (e: unknown) => {
    assert.ok(e instanceof GRPCInvalidArgumentError, String(e));
    assert.match(e.message, /etcdserver: key is not provided$/);
    return true;
  });
});

test('etcd3: a watch receives the events the stream sends', async () => {
  const watcher = await client.watch().key('w').create();
  try {
    const values: string[] = [];
    await new Promise<void>((resolve) => {
      watcher.on('put', (kv) => {
        values.push(kv.value.toString());
        if (values.length === 2) resolve();
      });
    });
    assert.deepEqual(values, ['one', 'two']);
  } finally {
    await watcher.cancel();
  }
});
