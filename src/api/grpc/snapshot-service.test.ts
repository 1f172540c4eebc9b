import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { EtcdError } from '../../base/errors.js';
import { SnapshotResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { closeSession, connect, grpcFrame, quietLog, rawCall, startServer, waitFor } from '../h2/test-support.js';
import { maintenanceService, type MaintenanceApi } from './services.js';
import { snapshotChunkBytes, type SnapshotSource } from './snapshot-service.js';

const path = '/etcdserverpb.Maintenance/Snapshot';

/** A source over bytes in memory that records how far it has been read and whether it was closed. */
function memorySource(data: Buffer): SnapshotSource & { readBytes: number; closed: boolean } {
  const s = {
    sizeBytes: data.length,
    readBytes: 0,
    closed: false,
    read: async (buf: Buffer): Promise<number> => {
      const n = data.copy(buf, 0, s.readBytes, Math.min(data.length, s.readBytes + buf.length));
      s.readBytes += n;
      return n;
    },
    close: async (): Promise<void> => {
      s.closed = true;
    },
  };
  return s;
}

function api(snapshot: () => Promise<SnapshotSource>): MaintenanceApi {
  const no = async (): Promise<never> => {
    throw new EtcdError('NotCapable');
  };
  return { alarm: no, status: no, defragment: no, hash: no, hashKV: no, moveLeader: no, snapshot };
}

/** Splits a gRPC response body into its messages. */
function messages(body: Buffer): SnapshotResponse[] {
  const out: SnapshotResponse[] = [];
  for (let at = 0; at < body.length;) {
    const len = body.readUInt32BE(at + 1);
    out.push(SnapshotResponse.decode(body.subarray(at + 5, at + 5 + len)));
    at += 5 + len;
  }
  return out;
}

test('Snapshot streams the copy in 32 KiB chunks with the bytes remaining, then its sha256', async () => {
  const data = randomBytes(5 * snapshotChunkBytes + 1234);
  const source = memorySource(data);
  const { server, port } = await startServer([maintenanceService(api(async () => source), quietLog)]);
  const session = await connect(port);
  try {
    const r = await rawCall(session, { path, body: [grpcFrame(new Uint8Array(0))] });
    assert.equal(r.status, 0, r.message);
    const got = messages(r.body);
    assert.equal(got.length, 7);
    let remaining = data.length;
    for (const m of got.slice(0, -1)) {
      assert.ok(m.blob.length <= snapshotChunkBytes && m.blob.length > 0);
      remaining -= m.blob.length;
      assert.equal(m.remainingBytes, BigInt(remaining));
    }
    assert.equal(remaining, 0);
    assert.deepEqual(Buffer.concat(got.slice(0, -1).map((m) => m.blob)), data);
    const last = got.at(-1)!;
    assert.equal(last.remainingBytes, 0n);
    assert.deepEqual(last.blob, createHash('sha256').update(data).digest());
    assert.ok(source.closed);
  } finally {
    await closeSession(session);
    await server.close(1000);
  }
});

test('Snapshot reads no further than a client that stops reading lets it, and finishes when it reads again', async () => {
  const data = randomBytes(16 * 1024 * 1024);
  const source = memorySource(data);
  const { server, port } = await startServer([maintenanceService(api(async () => source), quietLog)]);
  const session = await connect(port);
  try {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    req.end(grpcFrame(new Uint8Array(0)));
    req.pause();
    await waitFor(() => source.readBytes > 0, { what: 'the first chunk' });
    // Nothing to wait for here but the absence of progress: give the server time to overrun if it would.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(source.readBytes < 2 * 1024 * 1024, `read ${source.readBytes} bytes for a client that reads nothing`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.resume();
    await once(req, 'close');
    const got = messages(Buffer.concat(chunks));
    assert.deepEqual(got.at(-1)!.blob, createHash('sha256').update(data).digest());
    assert.equal(source.readBytes, data.length);
  } finally {
    await closeSession(session);
    await server.close(1000);
  }
});

test('Snapshot stops reading and releases the copy when the client cancels', async () => {
  const source = memorySource(randomBytes(16 * 1024 * 1024));
  const { server, port } = await startServer([maintenanceService(api(async () => source), quietLog)]);
  const session = await connect(port);
  try {
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
    req.end(grpcFrame(new Uint8Array(0)));
    req.pause();
    await waitFor(() => source.readBytes > 0, { what: 'the first chunk' });
    req.close(0x8); // RST_STREAM CANCEL
    await waitFor(() => source.closed, { what: 'the copy to be released' });
    assert.ok(source.readBytes < 16 * 1024 * 1024);
  } finally {
    await closeSession(session);
    await server.close(1000);
  }
});

test('Snapshot answers a failure to make the copy with its etcd status', async () => {
  const { server, port } = await startServer([
    maintenanceService(api(async () => {
      throw new EtcdError('NotSupportedForLearner');
    }), quietLog),
  ]);
  const session = await connect(port);
  try {
    const r = await rawCall(session, { path, body: [grpcFrame(new Uint8Array(0))] });
    assert.equal(r.status, 14);
    assert.equal(r.message, 'etcdserver: rpc not supported for learner');
  } finally {
    await closeSession(session);
    await server.close(1000);
  }
});
