import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { ServerDuplexStream, ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js';
import { GrpcCode } from '../../base/errors.js';
import type { GrpcMethodDescription, GrpcServerMetrics } from './grpc-metrics.js';
import type { H2ServiceRegistration } from './h2-server.js';
import { closeSession, connect, grpcFrame, rawCall, rawResponse, startServer, waitFor } from './test-support.js';

interface Counts {
  description: GrpcMethodDescription;
  started: number;
  versions: Array<string | undefined>;
  received: number;
  receivedBytes: number;
  sent: number;
  sentBytes: number;
  handled: Map<number, number>;
}

function recordingMetrics(): GrpcServerMetrics & { byMethod: Map<string, Counts> } {
  const byMethod = new Map<string, Counts>();
  return {
    byMethod,
    method(description) {
      const c: Counts = { description, started: 0, versions: [], received: 0, receivedBytes: 0, sent: 0, sentBytes: 0, handled: new Map() };
      byMethod.set(description.method, c);
      return {
        started: (version) => {
          c.started++;
          c.versions.push(version);
        },
        received: (bytes) => {
          c.received++;
          c.receivedBytes += bytes;
        },
        sent: (n, bytes) => {
          c.sent += n;
          c.sentBytes += bytes;
        },
        handled: (code) => void c.handled.set(code, (c.handled.get(code) ?? 0) + 1),
      };
    },
  };
}

const identity = { requestDeserialize: (b: Buffer) => b, responseSerialize: (v: never) => v as Buffer };

const service: H2ServiceRegistration = {
  definition: {
    Echo: { path: '/test.Svc/Echo', requestStream: false, responseStream: false, ...identity },
    Missing: { path: '/test.Svc/Missing', requestStream: false, responseStream: false, ...identity },
    Hang: { path: '/test.Svc/Hang', requestStream: false, responseStream: false, ...identity },
    Chat: { path: '/test.Svc/Chat', requestStream: true, responseStream: true, ...identity },
  },
  implementation: {
    Echo: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, call.request),
    Missing: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
      callback({ code: GrpcCode.NotFound, details: 'no such thing' } as never, null),
    Hang: () => {},
    Chat: (call: ServerDuplexStream<Buffer, Buffer>) => call.on('data', (m: Buffer) => call.write(m)),
  },
};

test('calls are counted per method with their final code: unary OK and error, deadline, client cancel', async () => {
  const metrics = recordingMetrics();
  const { server, port } = await startServer([service], { metrics });
  const session = await connect(port);
  try {
    assert.deepEqual([...metrics.byMethod.values()].map((c) => c.description), [
      { service: 'test.Svc', method: 'Echo', type: 'unary' },
      { service: 'test.Svc', method: 'Missing', type: 'unary' },
      { service: 'test.Svc', method: 'Hang', type: 'unary' },
      { service: 'test.Svc', method: 'Chat', type: 'bidi_stream' },
    ]);
    const echo = await rawCall(session, { path: '/test.Svc/Echo', body: [grpcFrame(Buffer.from('hi'))], headers: { 'client-api-version': '3.4' } });
    assert.equal(echo.status, 0);
    const e = metrics.byMethod.get('Echo')!;
    assert.deepEqual([e.started, e.received, e.sent, e.handled.get(GrpcCode.OK)], [1, 1, 1, 1]);
    assert.deepEqual([e.versions, e.receivedBytes, e.sentBytes], [['3.4'], 2, 2]);

    assert.equal((await rawCall(session, { path: '/test.Svc/Missing', body: [grpcFrame(Buffer.from('x'))] })).status, GrpcCode.NotFound);
    const m = metrics.byMethod.get('Missing')!;
    assert.deepEqual([m.started, m.sent, [...m.handled]], [1, 0, [[GrpcCode.NotFound, 1]]]);

    const hung = await rawCall(session, { path: '/test.Svc/Hang', body: [grpcFrame(Buffer.from('x'))], headers: { 'grpc-timeout': '50m' } });
    assert.equal(hung.status, GrpcCode.DeadlineExceeded);
    assert.deepEqual([...metrics.byMethod.get('Hang')!.handled], [[GrpcCode.DeadlineExceeded, 1]]);

    // A stream the client cancels: every message each way counted, then Canceled.
    const chat = session.request({ ':method': 'POST', ':path': '/test.Svc/Chat', 'content-type': 'application/grpc', te: 'trailers' });
    const done = rawResponse(chat).catch(() => undefined);
    let echoed = 0;
    chat.on('data', (d: Buffer) => void (echoed += d.length));
    chat.write(grpcFrame(Buffer.from('a')));
    chat.write(grpcFrame(Buffer.from('b')));
    await waitFor(() => echoed === 2 * 6, { what: 'two echoes' });
    chat.close(http2.constants.NGHTTP2_CANCEL);
    await done;
    const c = metrics.byMethod.get('Chat')!;
    await waitFor(() => c.handled.size > 0, { what: 'the stream to be handled' });
    assert.deepEqual([c.started, c.received, c.sent, [...c.handled]], [1, 2, 2, [[GrpcCode.Canceled, 1]]]);
    assert.deepEqual([c.versions, c.receivedBytes, c.sentBytes], [[undefined], 2, 2]);

    // An unknown method never reaches a handler: go-grpc-prometheus does not see it either.
    assert.equal((await rawCall(session, { path: '/test.Svc/Nope', body: [] })).status, GrpcCode.Unimplemented);
    assert.equal(metrics.byMethod.has('Nope'), false);
  } finally {
    await closeSession(session);
    await server.close(1000);
  }
});
