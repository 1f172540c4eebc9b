/**
 * Responses written as StreamedMessages by our H2 server: framing and trailers of a whole one, Go's
 * ResourceExhausted for one over the send limit, a reset stream when producing a chunk fails half-way,
 * and the message closed (its pinned revision released) in every case.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kvService, type KvApi } from '../grpc/services.js';
import { RangeRequest, RangeResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { StreamedMessage } from './streamed-message.js';
import { closeSession, connect, grpcFrame, quietLog, rawCall, startServer, waitFor } from './test-support.js';

class FakeMessage implements StreamedMessage {
  closed = 0;
  #at = 0;
  constructor(readonly byteLength: number, private readonly chunks: Buffer[], private readonly failAt = Infinity) {}
  next(): Buffer | undefined {
    if (this.#at === this.failAt) throw new Error('the store went away');
    return this.chunks[this.#at++];
  }
  close(): void {
    this.closed++;
  }
}

async function serve(message: StreamedMessage, fn: (port: number) => Promise<void>): Promise<void> {
  const unused = (): Promise<never> => Promise.reject(new Error('unused'));
  const api: KvApi = {
    range: unused, put: unused, deleteRange: unused, txn: unused, compact: unused,
    rangeStreamed: () => Promise.resolve(message),
  };
  const { server, port } = await startServer([kvService(api, quietLog)]);
  try {
    await fn(port);
  } finally {
    await server.close(500);
  }
}

const request = grpcFrame(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('a') })).finish());

test('a streamed message is framed once, written in its chunks, and followed by OK trailers', async () => {
  const payload = Buffer.from(RangeResponse.encode({ header: undefined, kvs: [{ key: Buffer.from('a'), value: Buffer.alloc(70_000, 1), createRevision: 2n, modRevision: 3n, version: 1n, lease: 0n }], more: true, count: 9n }).finish());
  const chunks = [payload.subarray(0, 10), payload.subarray(10, 40_000), payload.subarray(40_000)];
  const message = new FakeMessage(payload.length, chunks);
  await serve(message, async (port) => {
    const session = await connect(port);
    try {
      const res = await rawCall(session, { path: '/etcdserverpb.KV/Range', body: [request] });
      assert.equal(res.status, 0);
      assert.deepEqual(res.body, grpcFrame(payload));
      assert.equal(RangeResponse.decode(res.body.subarray(5)).count, 9n);
      await waitFor(() => message.closed === 1, { what: 'the message closed' });
    } finally {
      await closeSession(session);
    }
  });
});

test('a message over 2^31-1 bytes is refused with Go\'s ResourceExhausted text, nothing written', async () => {
  const message = new FakeMessage(2 ** 31, []);
  await serve(message, async (port) => {
    const session = await connect(port);
    try {
      const res = await rawCall(session, { path: '/etcdserverpb.KV/Range', body: [request] });
      assert.equal(res.status, 8);
      assert.equal(res.message, 'grpc: trying to send message larger than max (2147483648 vs. 2147483647)');
      assert.equal(res.body.length, 0);
      assert.equal(message.closed, 1);
    } finally {
      await closeSession(session);
    }
  });
});

test('a chunk that cannot be produced resets the stream: the client never mistakes a cut message for an answer', async () => {
  const message = new FakeMessage(100_000, [Buffer.alloc(1000), Buffer.alloc(1000)], 2);
  await serve(message, async (port) => {
    const session = await connect(port);
    try {
      await assert.rejects(rawCall(session, { path: '/etcdserverpb.KV/Range', body: [request] }), /RST_STREAM|NGHTTP2_INTERNAL_ERROR|code 2/);
      await waitFor(() => message.closed === 1, { what: 'the message closed' });
    } finally {
      await closeSession(session);
    }
  });
});

test('a client pinging while a streamed response is under way is not sent away as too_many_pings', async () => {
  // Go clients ping as data arrives (and every --keepalive-time); Go's server forgives a ping after any DATA frame.
  const chunk = Buffer.alloc(64 * 1024, 7);
  const chunks = Array.from({ length: 32 }, () => chunk);
  const message = new FakeMessage(chunk.length * chunks.length, chunks);
  await serve(message, async (port) => {
    const session = await connect(port);
    let goaway = false;
    session.on('goaway', () => void (goaway = true));
    try {
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range', 'content-type': 'application/grpc', te: 'trailers' });
      let received = 0;
      let status = '';
      req.on('trailers', (t) => void (status = String(t['grpc-status'])));
      req.on('data', (c: Buffer) => void (received += c.length));
      req.on('error', () => {});
      req.end(request);
      await waitFor(() => received > 0, { what: 'the first bytes' });
      req.pause();
      for (let i = 0; i < 6; i++) await new Promise<void>((resolve, reject) => void session.ping((err) => (err ? reject(err) : resolve())));
      req.resume();
      await waitFor(() => status !== '' || goaway, { what: 'the end of the call', timeoutMs: 10_000 });
      assert.equal(goaway, false);
      assert.equal(status, '0');
      assert.equal(received, 5 + message.byteLength);
    } finally {
      await closeSession(session);
    }
  });
});
