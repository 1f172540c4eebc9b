/**
 * The peer proxy on its own: two small child processes stand for members (the proxy names a connection by
 * the process that dialed it), an echo server stands for a member's peer listener. Checks forwarding,
 * naming the dialer, 'drop' (bytes vanish, connections stay open, healing closes them), 'refuse' (resets,
 * old and new), that an uncut pair is unaffected, and that a dialer nobody knows is never forwarded.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { waitFor } from '../harness.js';
import { PeerProxy } from './tcp-proxy.js';

const waitMs = 5_000;

/** A child that dials on command: "c <port>" connects (closing any previous), "s <text>" sends. */
const dialerSource = `
const net = require('node:net');
let sock;
let buffer = '';
process.stdin.on('data', (d) => {
  buffer += d;
  let nl;
  while ((nl = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    if (line.startsWith('c ')) {
      if (sock) sock.destroy();
      const s = net.createConnection({ host: '127.0.0.1', port: Number(line.slice(2)) });
      sock = s;
      s.on('connect', () => process.stdout.write('connected\\n'));
      s.on('data', (x) => process.stdout.write('data:' + x + '\\n'));
      s.on('error', () => {});
      s.on('close', () => { if (sock === s) process.stdout.write('closed\\n'); });
    } else if (line.startsWith('s ')) {
      sock.write(line.slice(2));
    }
  }
});
`;

class Dialer {
  readonly child: ChildProcess;
  output = '';

  constructor() {
    this.child = spawn(process.execPath, ['-e', dialerSource], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout?.on('data', (d: Buffer) => { this.output += d.toString(); });
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error('dialer has no pid');
    return pid;
  }

  command(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Connects afresh and waits for the connection (not for the proxy's verdict on it). */
  async connect(port: number): Promise<void> {
    const mark = this.output.length;
    this.command(`c ${port}`);
    await waitFor(() => this.output.slice(mark).includes('connected\n'), { what: 'dialer connected', timeoutMs: waitMs });
  }

  async waitFor(text: string, since: number): Promise<void> {
    await waitFor(() => this.output.slice(since).includes(text), { what: `dialer output ${JSON.stringify(text)}`, timeoutMs: waitMs });
  }

  stop(): void {
    this.child.kill('SIGKILL');
  }
}

interface Echo {
  server: Server;
  port: number;
  received: string;
}

async function echoServer(): Promise<Echo> {
  const echo: Echo = { server: createServer(), port: 0, received: '' };
  echo.server.on('connection', (s: Socket) => {
    s.on('error', () => undefined);
    s.on('data', (d) => { echo.received += d.toString(); s.write(d); });
  });
  await new Promise<void>((ok) => echo.server.listen(0, '127.0.0.1', () => ok()));
  const address = echo.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  echo.port = address.port;
  return echo;
}

let a: Dialer;
let c: Dialer;
let b: Echo;
let proxy: PeerProxy;
let toB: number;

before(async () => {
  a = new Dialer();
  c = new Dialer();
  b = await echoServer();
  proxy = new PeerProxy();
  proxy.identifyBy(() => new Map([[a.pid, 'a'], [c.pid, 'c']]));
  toB = await proxy.route('b', b.port);
  // routes for a and c exist so that pairs with them can be cut; nothing listens behind them
  await proxy.route('a', 1);
  await proxy.route('c', 1);
});

after(async () => {
  a.stop();
  c.stop();
  await proxy.close();
  await new Promise<void>((ok) => b.server.close(() => ok()));
});

test('forwards both ways and names the dialer by its process', async () => {
  await a.connect(toB);
  const mark = a.output.length;
  a.command('s hello');
  await a.waitFor('data:hello', mark);
  assert.equal(proxy.stats.unidentified, 0);
  assert.ok(proxy.stats.forwarded >= 1);
});

test("drop: bytes vanish, the connection stays open; an uncut pair still works; heal closes it", async () => {
  await a.connect(toB);
  await c.connect(toB);
  proxy.cut('a', 'b', 'drop');
  const dropped = proxy.stats.droppedBytes;
  const receivedBefore = b.received.length;
  const markA = a.output.length;
  a.command('s lost-on-the-way');
  await waitFor(() => proxy.stats.droppedBytes >= dropped + 'lost-on-the-way'.length, { what: 'bytes dropped', timeoutMs: waitMs });
  assert.ok(!b.received.slice(receivedBefore).includes('lost'), 'a dropped byte reached the member');
  const markC = c.output.length;
  c.command('s still-here');
  await c.waitFor('data:still-here', markC);
  // a new connection from the cut side is accepted and blackholed too
  await a.connect(toB);
  a.command('s also-lost');
  await waitFor(() => proxy.stats.droppedBytes >= dropped + 'lost-on-the-wayalso-lost'.length, { what: 'bytes dropped', timeoutMs: waitMs });
  assert.ok(!a.output.slice(markA).includes('data:'), 'the cut side received data');
  const markClose = a.output.length;
  proxy.heal('a', 'b');
  await a.waitFor('closed', markClose);
  await a.connect(toB);
  const markAgain = a.output.length;
  a.command('s back');
  await a.waitFor('data:back', markAgain);
});

test('refuse: the open connection is reset and so is every new one, until healed', async () => {
  await a.connect(toB);
  const markClose = a.output.length;
  proxy.cut('b', 'a', 'refuse');
  await a.waitFor('closed', markClose);
  const markNew = a.output.length;
  a.command(`c ${toB}`);
  await a.waitFor('closed', markNew);
  proxy.heal('a', 'b');
  await a.connect(toB);
  const mark = a.output.length;
  a.command('s ok-again');
  await a.waitFor('data:ok-again', mark);
});

test('a dialer the proxy cannot name is closed, never forwarded', async () => {
  const before = proxy.stats.unidentified;
  const received = b.received.length;
  const socket = createConnection({ host: '127.0.0.1', port: toB });
  socket.on('error', () => undefined);
  socket.on('connect', () => socket.write('who-am-i'));
  await new Promise<void>((ok) => socket.once('close', () => ok()));
  assert.equal(proxy.stats.unidentified, before + 1);
  assert.ok(!b.received.slice(received).includes('who-am-i'));
});
