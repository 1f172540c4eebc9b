import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { promisify } from 'node:util';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import { KVService, RangeRequest } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { listenWithAuthorityFix, type AuthorityFixListener, type AuthorityFixStats } from './authority-front.js';
import { FrameFlag, FrameType, H2ErrorCode } from './h2-frames.js';
import { frame, kvClient, range, rangeAnswer, RawH2Client, startResponder, waitUntil, type Responder } from './test-helpers.js';

const run = promisify(execFile);

async function etcdctl(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('/usr/bin/etcdctl', [`--endpoints=http://127.0.0.1:${port}`, '--dial-timeout=5s', '--command-timeout=5s', ...args], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 15000,
  });
  return stdout;
}

function delta(before: AuthorityFixStats, now: AuthorityFixStats): AuthorityFixStats {
  return { direct: now.direct - before.direct, fixed: now.fixed - before.fixed, http1: now.http1 - before.http1, rejected: now.rejected - before.rejected };
}

function h2Get(port: number, headers: http2.OutgoingHttpHeaders): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const done = new Promise<number>((resolve, reject) => {
    session.on('error', reject);
    const req = session.request({ ':path': '/raw', ...headers }, { endStream: true });
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => resolve(Number(h[':status'])));
    });
    req.on('error', reject);
  });
  return done.finally(() => session.destroy());
}

// Request-header blocks as a Go client would encode them, indexing into its dynamic table.
const literalIndexed = (nameIndex: number, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x40 | nameIndex, value.length]), Buffer.from(value, 'latin1')]);
const literalNewName = (name: string, value: string): Buffer =>
  Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
const sizeUpdate1024 = Buffer.from([0x3f, 0xe1, 0x07]);
const endRequest = FrameFlag.EndHeaders | FrameFlag.EndStream;

describe('authority front in front of a node:http2 gRPC responder', () => {
  let responder: Responder;
  let front: AuthorityFixListener;
  let port: number;
  const errors: Error[] = [];

  before(async () => {
    responder = startResponder();
    front = await listenWithAuthorityFix(responder.server, {
      host: '127.0.0.1', port: 0, onConnectionError: (e) => errors.push(e),
    });
    port = front.address().port;
  });
  after(() => front.close({ graceMs: 1000 }));

  test('real etcdctl with --endpoints http://127.0.0.1:PORT gets its answer, on the direct path', async () => {
    const start = front.stats;
    assert.equal(await etcdctl(port, 'get', 'foo'), 'foo\nv-foo\n');
    assert.equal(JSON.parse(await etcdctl(port, 'get', 'bar', '-w', 'json')).header.revision, 7);
    assert.deepEqual(delta(start, front.stats), { direct: 2, fixed: 0, http1: 0, rejected: 0 });
    assert.equal(responder.seen.at(-1)!.authority, `127.0.0.1:${port}`);
  });

  test('grpc-js with a normal authority: direct, many concurrent calls', async () => {
    const start = front.stats;
    const client = kvClient(port);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const answers = await Promise.all(keys.map((k) => range(client, k)));
    assert.deepEqual(answers.map((a) => a.kvs[0]!.value.toString()), keys.map((k) => `v-${k}`));
    client.close();
    assert.deepEqual(delta(start, front.stats), { direct: 1, fixed: 0, http1: 0, rejected: 0 });
  });

  for (const bad of ['http://127.0.0.1:PORT', '#initially=[http://127.0.0.1:PORT]']) {
    test(`grpc-js sending :authority ${bad}: repaired, many concurrent calls`, async () => {
      const start = front.stats;
      const seenBefore = responder.seen.length;
      const client = kvClient(port, bad.replace('PORT', String(port)));
      const keys = Array.from({ length: 200 }, (_, i) => `c${i}`);
      for (const k of keys.slice(0, 3)) assert.equal((await range(client, k)).kvs[0]!.value.toString(), `v-${k}`);
      const answers = await Promise.all(keys.map((k) => range(client, k)));
      assert.deepEqual(answers.map((a) => a.kvs[0]!.value.toString()), keys.map((k) => `v-${k}`));
      client.close();
      assert.deepEqual(delta(start, front.stats), { direct: 0, fixed: 1, http1: 0, rejected: 0 });
      const authorities = new Set(responder.seen.slice(seenBefore).map((s) => s.authority));
      assert.deepEqual([...authorities], [`127.0.0.1:${port}`]);
    });
  }

  test('Node\'s own http2 client, bad authority, does not get RST_STREAM without the front', async () => {
    const direct = startResponder();
    await new Promise<void>((resolve) => direct.server.listen(0, '127.0.0.1', resolve));
    const directPort = (direct.server.address() as { port: number }).port;
    await assert.rejects(h2Get(directPort, { ':authority': `http://127.0.0.1:${directPort}` }), /NGHTTP2_PROTOCOL_ERROR/);
    await new Promise((resolve) => direct.server.close(resolve));
    assert.equal(await h2Get(port, { ':authority': `http://127.0.0.1:${port}` }), 200);
  });

  test('HTTP/1.1 on the same port is handed to the server untouched', async () => {
    const start = front.stats;
    const body = await new Promise<string>((resolve, reject) => {
      http.get(`http://127.0.0.1:${port}/health`, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      }).on('error', reject);
    });
    assert.equal(body, '200 ok /health');
    assert.equal(delta(start, front.stats).http1, 1);
  });

  for (const authority of ['127.0.0.1:PORT', 'http://127.0.0.1:PORT']) {
    test(`a 40 kB header block (CONTINUATION frames) with :authority ${authority}`, async () => {
      const seenBefore = responder.seen.length;
      const start = front.stats;
      const big = 'x'.repeat(40000);
      assert.equal(await h2Get(port, { ':authority': authority.replace('PORT', String(port)), 'x-big': big }), 200);
      const valid = authority.startsWith('127');
      assert.deepEqual(delta(start, front.stats), { direct: valid ? 1 : 0, fixed: valid ? 0 : 1, http1: 0, rejected: 0 });
      const seen = responder.seen.slice(seenBefore);
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.headers['x-big'], big);
      assert.equal(seen[0]!.authority, `127.0.0.1:${port}`);
    });
  }

  test('a client resizing its dynamic table: size updates replayed, entries tracked', async () => {
    const seenBefore = responder.seen.length;
    const bad = `http://127.0.0.1:${port}`;
    const client = new RawH2Client(port);
    const method = Buffer.from([0x83, 0x86]); // POST, http
    client.send(Buffer.concat([
      frame(FrameType.Headers, endRequest, 1, Buffer.concat([sizeUpdate1024, method,
        literalIndexed(4, '/raw'), literalIndexed(1, bad), literalNewName('x-a', 'one')])),
      // Table now (newest first): 62 x-a, 63 :authority, 64 :path.
      frame(FrameType.Headers, endRequest, 3, Buffer.concat([method, Buffer.from([0xc0, 0xbf, 0xbe])])),
      // Shrink to 0 (evicts all), grow back, index anew.
      frame(FrameType.Headers, endRequest, 5, Buffer.concat([Buffer.from([0x20]), sizeUpdate1024, method,
        literalIndexed(4, '/raw'), literalIndexed(1, `#initially=[${bad}]`), literalNewName('x-a', 'two')])),
      frame(FrameType.Headers, endRequest, 7, Buffer.concat([method, Buffer.from([0xc0, 0xbf, 0xbe])])),
    ]));
    await waitUntil(() => responder.seen.length >= seenBefore + 4, 'four raw requests');
    const seen = responder.seen.slice(seenBefore).map((s) => [s.path, s.authority, s.headers['x-a']]);
    const at = `127.0.0.1:${port}`;
    assert.deepEqual(seen, [['/raw', at, 'one'], ['/raw', at, 'one'], ['/raw', at, 'two'], ['/raw', at, 'two']]);
    await client.waitFor((f) => f.type === FrameType.Headers && f.streamId === 7);
    client.socket.destroy();
  });

  test('a PING before the first request: the fixing path, and the server answers it', async () => {
    const start = front.stats;
    const client = new RawH2Client(port);
    client.send(frame(FrameType.Ping, 0, 0, Buffer.from('12345678')));
    const pong = await client.waitFor((f) => f.type === FrameType.Ping && (f.flags & FrameFlag.Ack) !== 0);
    assert.equal(pong.payload.toString(), '12345678');
    client.send(frame(FrameType.Headers, endRequest, 1, Buffer.concat([Buffer.from([0x83, 0x86]),
      literalIndexed(4, '/raw'), literalIndexed(1, `127.0.0.1:${port}`)])));
    await client.waitFor((f) => f.type === FrameType.Headers && f.streamId === 1);
    assert.deepEqual(delta(start, front.stats), { direct: 0, fixed: 1, http1: 0, rejected: 0 });
    client.socket.destroy();
  });

  test('malformed frames close the connection (GOAWAY while undecided), the server lives on', async () => {
    const cases: Array<[Buffer, number]> = [
      [frame(FrameType.Continuation, FrameFlag.EndHeaders, 1, Buffer.from([0x82])), H2ErrorCode.ProtocolError],
      [frame(FrameType.Headers, FrameFlag.EndHeaders, 1, Buffer.from([0x80])), H2ErrorCode.CompressionError],
      [frame(FrameType.Headers, FrameFlag.EndHeaders, 1, Buffer.alloc(300 * 1024)), H2ErrorCode.EnhanceYourCalm],
    ];
    for (const [bytes, code] of cases) {
      const start = front.stats;
      const client = new RawH2Client(port);
      client.send(bytes);
      const goaway = await client.waitFor((f) => f.type === FrameType.Goaway);
      assert.equal(goaway.payload.readUInt32BE(4), code);
      await client.closed;
      assert.equal(delta(start, front.stats).rejected, 1);
    }
    // Garbage on a connection already on the fixing path: the pipe and the socket go away.
    const client = new RawH2Client(port);
    const seenBefore = responder.seen.length;
    client.send(frame(FrameType.Headers, endRequest, 1, Buffer.concat([Buffer.from([0x83, 0x86]),
      literalIndexed(4, '/raw'), literalIndexed(1, 'http://x:1')])));
    await waitUntil(() => responder.seen.length > seenBefore, 'the request before the garbage');
    client.send(frame(FrameType.Headers, endRequest, 3, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])));
    await client.closed;
    assert.ok(errors.some((e) => /integer too large/.test(e.message)));
    const kv = kvClient(port);
    assert.equal((await range(kv, 'alive')).kvs[0]!.value.toString(), 'v-alive');
    kv.close();
  });
});

describe('authority front feeding a grpc-js Server through createConnectionInjector', () => {
  test('etcdctl and a bad-authority grpc-js client are both served', async () => {
    const server = new Server();
    server.addService(KVService, {
      range: (call: { request: RangeRequest }, done: (err: { code: number } | null, res?: unknown) => void) =>
        call.request.key.length > 0 ? done(null, rangeAnswer(call.request)) : done({ code: status.INVALID_ARGUMENT }),
    });
    const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    const front = await listenWithAuthorityFix(injector, { host: '127.0.0.1', port: 0 });
    const port = front.address().port;
    try {
      assert.equal(await etcdctl(port, 'get', 'x'), 'x\nv-x\n');
      const client = kvClient(port, `#initially=[http://127.0.0.1:${port}]`);
      assert.equal((await range(client, 'y')).kvs[0]!.value.toString(), 'v-y');
      client.close();
      assert.deepEqual(front.stats, { direct: 1, fixed: 1, http1: 0, rejected: 0 });
    } finally {
      await front.close({ graceMs: 500 });
      injector.destroy();
      server.forceShutdown();
    }
  });
});

describe('a client that never acknowledges our SETTINGS', () => {
  test('its valid request is served through the fixer once the wait for the ACK runs out', async () => {
    const responder = startResponder();
    const front = await listenWithAuthorityFix(responder.server, {
      host: '127.0.0.1', port: 0, limits: { settingsAckWaitMs: 50 },
    });
    const port = front.address().port;
    const client = new RawH2Client(port, { ackSettings: false });
    client.send(frame(FrameType.Headers, endRequest, 1, Buffer.concat([Buffer.from([0x83, 0x86]),
      literalIndexed(4, '/raw'), literalIndexed(1, `127.0.0.1:${port}`)])));
    await client.waitFor((f) => f.type === FrameType.Headers && f.streamId === 1);
    assert.deepEqual(front.stats, { direct: 0, fixed: 1, http1: 0, rejected: 0 });
    client.socket.destroy();
    await front.close();
  });
});

describe('closing the front', () => {
  test('undecided connections are dropped, sessions get a GOAWAY, the target closes, close() resolves', async () => {
    const responder = startResponder();
    const front = await listenWithAuthorityFix(responder.server, { host: '127.0.0.1', port: 0 });
    const port = front.address().port;
    const idle = new RawH2Client(port); // preface + SETTINGS, never a request: undecided
    await idle.waitFor((f) => f.type === FrameType.Settings);
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    session.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const req = session.request({ ':path': '/raw' }, { endStream: true });
      req.on('response', () => resolve());
      req.on('error', reject);
      req.resume();
    });
    const targetClosed = new Promise<void>((resolve) => responder.server.once('close', () => resolve()));
    await front.close({ graceMs: 2000 });
    await idle.closed;
    await goaway;
    await targetClosed;
    session.destroy();
    await assert.rejects(h2Get(port, {}), /ECONNREFUSED/);
  });
});
