/**
 * Issue 7, the HTTP/JSON gateway: the real curl binary against each target's client URL, the same script
 * on every target; the HTTP status, the content type and the body must match the reference (real etcd by
 * default) after normalising what legitimately differs per server:
 *   - cluster and member ids (derived from the peer URLs, whose ports differ per run), client/peer ports;
 *   - lease ids the server chose (random), learnt from that target's own grant answer;
 *   - `status`: dbSize, dbSizeInUse, raftIndex, raftAppliedIndex (storage layout and the number of internal
 *     raft entries are implementation details; see normalise.ts rule 5), only when positive;
 *   - a lease's remaining TTL, when within 3 s below the granted TTL (it counts down in real time).
 *
 * HTTP/2: etcd 3.4 sends every plaintext HTTP/2 connection to its gRPC server, which refuses a JSON
 * request (curl --http2-prior-knowledge gets PROTOCOL_ERROR; with TLS it serves the gateway over h2).
 * etcd-ts serves the gateway on h2c too, so the h2 rows hold etcd-ts's h2c answer to the reference's
 * HTTP/1.1 answer; a reference that is etcd itself is only asked over HTTP/1.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Member, targetsFromEnv, waitFor, withLogsOnFailure } from './harness.js';
import { gatewayRoutes } from '../../src/api/gateway/routes.js';

const targets = targetsFromEnv();
const curlTimeoutSec = 15;

interface Side {
  readonly label: string;
  readonly member: Member;
  /** Whether this target serves the gateway over h2c (etcd 3.4 does not). */
  readonly h2c: boolean;
  ids: { cluster: string; member: string };
  readonly leases: Map<string, string>;
  /** The auth token this target issued, once authenticated. */
  token?: string;
}

interface Answer {
  status: number;
  contentType: string;
  /** A redirect's target, without the origin. */
  location: string;
  /** Grpc-Metadata-Content-Type and Trailer: whether the answer came from the gRPC call, and how it ended. */
  headers: string;
  body: string;
}

const sides: Side[] = [];

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}

/** One curl request; the status line and content type come from -w, the body from stdout. */
interface CurlOptions {
  http2?: boolean;
  method?: string;
  /** The Authorization header. */
  token?: string;
}

function curl(side: Side, path: string, body: string | null, o: CurlOptions = {}): Promise<Answer> {
  const args = ['-s', '-S', '--path-as-is', '--max-time', String(curlTimeoutSec), o.http2 === true ? '--http2-prior-knowledge' : '--http1.1',
    '-o', '-', '-w', '\n%{http_code}\t%{content_type}\t%{redirect_url}\t%header{grpc-metadata-content-type}\t%header{trailer}'];
  if (o.method !== undefined) args.push('-X', o.method);
  if (o.token !== undefined) args.push('-H', `Authorization: ${o.token}`);
  // The body goes through stdin: a command-line argument is limited to 128 KiB.
  if (body !== null) args.push('--data-binary', '@-');
  args.push(`${side.member.clientUrl}${path}`);
  const child = spawn('curl', args, { stdio: [body === null ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  child.stdin?.on('error', () => { /* curl may answer before reading all of it */ });
  child.stdin?.end(body ?? undefined);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('close', (code) => {
      const text = Buffer.concat(out).toString('utf8');
      const cut = text.lastIndexOf('\n');
      const [status, type, redirect, metadata, trailer] = text.slice(cut + 1).split('\t');
      // curl makes the Location absolute: the origin is the target's own.
      const location = (redirect ?? '').replace(side.member.clientUrl, '');
      if (code !== 0) fail(new Error(`${side.label}: curl ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`));
      else ok({ status: Number(status), contentType: type ?? '', location, headers: `${metadata ?? ''}|${trailer ?? ''}`, body: text.slice(0, cut) });
    });
  });
}

function normalise(side: Side, text: string): string {
  let s = text;
  const swap = (from: string, to: string): void => {
    s = s.split(from).join(to);
  };
  swap(`"${side.ids.cluster}"`, '"<cluster-id>"');
  swap(`"${side.ids.member}"`, '"<member-id>"');
  for (const [name, id] of side.leases) swap(`"${id}"`, `"<lease-${name}>"`);
  if (side.token !== undefined) swap(`"${side.token}"`, '"<token>"');
  swap(`:${side.member.clientPort}`, ':<client-port>');
  swap(`:${side.member.peerPort}`, ':<peer-port>');
  s = s.replace(/"(dbSize|dbSizeInUse|raftIndex)":"[1-9][0-9]*"/g, '"$1":"<$1>"');
  s = s.replace(/"raftAppliedIndex":"[1-9][0-9]*"/g, '"raftAppliedIndex":"<raftIndex>"');
  s = s.replace(/"TTL":"([0-9]+)","grantedTTL":"([0-9]+)"/g, (all, ttl: string, granted: string) =>
    (Number(granted) - Number(ttl) <= 3 && Number(ttl) <= Number(granted) ? `"TTL":"<countdown>","grantedTTL":"${granted}"` : all));
  return s;
}

/** Asks every side the same; each answer (normalised) must equal the reference's. */
async function same(path: string, body: string | null | ((side: Side) => string), o: CurlOptions & { authenticated?: boolean } = {},
  on: readonly Side[] = sides): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const side of on) {
    const viaH2 = o.http2 === true && side.h2c;
    const token = o.authenticated === true ? side.token : o.token;
    const answer = await curl(side, path, typeof body === 'function' ? body(side) : body,
      { ...o, http2: viaH2, ...(token === undefined ? {} : { token }) });
    answers.push(answer);
  }
  const shown = answers.map((a, i) => ({ ...a, body: normalise(on[i]!, a.body) }));
  for (let i = 1; i < shown.length; i++) {
    assert.deepEqual(shown[i], shown[0], `${on[i]!.label} differs from ${on[0]!.label} on ${path} ${typeof body === 'string' ? body : ''}`);
  }
  return answers;
}

function rows(): Array<[string, (http2: boolean) => Promise<void>]> {
  return [
    ['put', async (h2) => {
      await same('/v3/kv/put', JSON.stringify({ key: b64('k1'), value: b64('v1') }), { http2: h2 });
      await same('/v3/kv/put', JSON.stringify({ key: b64('k2'), value: b64('<v2 & "x">'), prev_kv: true }), { http2: h2 });
      await same('/v3/kv/put', JSON.stringify({ key: b64('k2'), value: b64('v2b'), prevKv: true }), { http2: h2 });
    }],
    ['range', async (h2) => {
      await same('/v3/kv/range', JSON.stringify({ key: b64('k'), range_end: b64('l') }), { http2: h2 });
      await same('/v3/kv/range', JSON.stringify({ key: b64('k'), range_end: b64('l'), sort_order: 'DESCEND', sort_target: 'VALUE', limit: '1' }), { http2: h2 });
      await same('/v3/kv/range', JSON.stringify({ key: b64('k'), rangeEnd: b64('l'), countOnly: true, sortOrder: 2 }), { http2: h2 });
      await same('/v3/kv/range', JSON.stringify({ key: b64('k1'), keys_only: true, serializable: true }), { http2: h2 });
      await same('/v3/kv/range', JSON.stringify({ key: b64('nope') }), { http2: h2 });
    }],
    ['txn', async (h2) => {
      const txn = {
        compare: [{ key: b64('k1'), target: 'VALUE', result: 'EQUAL', value: b64('v1') }, { key: b64('k9'), target: 'VERSION', version: '0' }],
        success: [{ request_put: { key: b64('k3'), value: b64('v3') } }, { request_range: { key: b64('k1') } }],
        failure: [{ request_delete_range: { key: b64('k3') } }],
      };
      await same('/v3/kv/txn', JSON.stringify(txn), { http2: h2 });
      await same('/v3/kv/txn', JSON.stringify({ ...txn, compare: [{ key: b64('k1'), target: 'MOD', result: 'LESS', mod_revision: '1' }] }), { http2: h2 });
    }],
    ['deleterange', async (h2) => {
      await same('/v3/kv/deleterange', JSON.stringify({ key: b64('k3'), prev_kv: true }), { http2: h2 });
      await same('/v3/kv/deleterange', JSON.stringify({ key: b64('zz') }), { http2: h2 });
    }],
  ];
}

describe('HTTP/JSON gateway: curl against each target', { concurrency: false }, () => {
  before(async () => {
    for (const target of targets) {
      const member = await Member.start({ target });
      const side: Side = { label: target.label, member, h2c: target.name === 'ours', ids: { cluster: '', member: '' }, leases: new Map() };
      sides.push(side);
      const status = JSON.parse((await curl(side, '/v3/maintenance/status', '{}')).body) as { header: { cluster_id: string; member_id: string } };
      side.ids = { cluster: status.header.cluster_id, member: status.header.member_id };
    }
  });
  after(async () => {
    await Promise.all(sides.map((s) => s.member.destroy()));
  });

  const inSides = <T>(body: () => Promise<T>): Promise<T> => withLogsOnFailure(sides.map((s) => s.member), body);

  for (const [name, row] of rows()) {
    it(`${name} over HTTP/1.1`, () => inSides(() => row(false)));
  }
  for (const [name, row] of rows()) {
    it(`${name} over HTTP/2 (h2c where served)`, () => inSides(() => row(true)));
  }

  it('aliases: /v3beta/ and /v3/kv/lease/*', () => inSides(async () => {
    await same('/v3beta/kv/range', JSON.stringify({ key: b64('k1') }));
    await same('/v3beta/kv/put', JSON.stringify({ key: b64('kb'), value: b64('beta') }));
    await same('/v3/kv/lease/leases', '{}');
  }));

  it('lease grant, keepalive (stream), timetolive, leases, revoke', () => inSides(async () => {
    const granted = await same('/v3/lease/grant', JSON.stringify({ TTL: 60, ID: '4660' }));
    assert.match(granted[0]!.body, /"ID":"4660","TTL":"60"/);
    const chosen: string[] = [];
    for (const side of sides) {
      const answer = await curl(side, '/v3/lease/grant', JSON.stringify({ TTL: '30' }));
      side.leases.set('server-chosen', (JSON.parse(answer.body) as { ID: string }).ID);
      chosen.push(normalise(side, answer.body));
    }
    for (let i = 1; i < chosen.length; i++) assert.equal(chosen[i], chosen[0]);
    await same('/v3/lease/timetolive', (side) => JSON.stringify({ ID: side.leases.get('server-chosen') }));
    await same('/v3/lease/keepalive', (side) => JSON.stringify({ ID: side.leases.get('server-chosen') }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('leased'), value: b64('x'), lease: '4660' }));
    await same('/v3/lease/keepalive', JSON.stringify({ ID: '4660' }));
    await same('/v3/lease/keepalive', '{"ID":4660} {"ID":"4660"}');
    await same('/v3/lease/keepalive', JSON.stringify({ ID: '999' }));
    await same('/v3/lease/timetolive', JSON.stringify({ ID: '4660', keys: true }));
    await same('/v3/kv/lease/timetolive', JSON.stringify({ ID: '999' }));
    await same('/v3/lease/leases', '{}');
    await same('/v3/lease/revoke', JSON.stringify({ ID: '4660' }));
    await same('/v3/kv/lease/revoke', JSON.stringify({ ID: '4660' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('leased') }));
  }));

  it('watch stream: create, an event from a put, then close', () => inSides(async () => {
    const transcripts: string[] = [];
    for (const side of sides) {
      const watch = new CurlStream(side, '/v3/watch', JSON.stringify({ create_request: { key: b64('w'), prev_kv: true } }));
      try {
        await watch.lines(1);
        await curl(side, '/v3/kv/put', JSON.stringify({ key: b64('w'), value: b64('1') }));
        await curl(side, '/v3/kv/put', JSON.stringify({ key: b64('w'), value: b64('2') }));
        await curl(side, '/v3/kv/deleterange', JSON.stringify({ key: b64('w') }));
        transcripts.push(normalise(side, (await watch.lines(4)).join('\n')));
      } finally {
        watch.close();
      }
      assert.equal(watch.status, 200);
    }
    for (let i = 1; i < transcripts.length; i++) assert.equal(transcripts[i], transcripts[0], `${sides[i]!.label} watch stream differs`);
    // History, two watchers on one stream (the body carries both requests), and a filter.
    const history = JSON.stringify({ create_request: { key: b64('w'), start_revision: '1', filters: ['NODELETE'] } });
    const second = JSON.stringify({ create_request: { key: b64('k'), range_end: b64('l'), start_revision: '2' } });
    const streams: string[] = [];
    for (const side of sides) {
      const watch = new CurlStream(side, '/v3/watch', `${history}\n${second}`);
      try {
        // The two "created" answers come in request order; the two catch-ups in whatever order the server's
        // sync pass meets the watchers (etcd walks a Go map): compared as a set.
        const lines = await watch.lines(4);
        streams.push(normalise(side, [...lines.slice(0, 2), ...lines.slice(2).sort()].join('\n')));
      } finally {
        watch.close();
      }
    }
    for (let i = 1; i < streams.length; i++) assert.equal(streams[i], streams[0], `${sides[i]!.label} watch history differs`);
  }));

  it('compaction, then the compacted revision', () => inSides(async () => {
    await same('/v3/kv/compaction', JSON.stringify({ revision: '3' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('k1'), revision: '2' }));
    await same('/v3/kv/compaction', JSON.stringify({ revision: '2', physical: true }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('k1'), revision: '999' }));
    const watch: string[] = [];
    for (const side of sides) {
      const s = new CurlStream(side, '/v3/watch', JSON.stringify({ create_request: { key: b64('k1'), start_revision: '1' } }));
      try {
        watch.push(normalise(side, (await s.lines(2)).join('\n')));
      } finally {
        s.close();
      }
    }
    for (let i = 1; i < watch.length; i++) assert.equal(watch[i], watch[0]);
  }));

  it('cluster member list, maintenance status', () => inSides(async () => {
    await same('/v3/cluster/member/list', '{}');
    await same('/v3/maintenance/status', '{}');
    await same('/v3/maintenance/status', '');
  }));

  it('maintenance alarm list', () => inSides(async () => {
    await same('/v3/maintenance/alarm', JSON.stringify({ action: 'GET' }));
  }));

  it('auth status: not a 3.4 gateway path', () => inSides(async () => {
    await same('/v3/auth/status', '{}');
  }));

  it('errors: bad JSON, wrong types, bad base64 and enums', () => inSides(async () => {
    for (const body of [
      '{"key":"azE="', '{bad', '[1]', '"x"', '{"key":"azE="} trailing', '{"key":1}', '{"key":"azE"}', '{"key":"azE=!"}',
      '{"key":"azE=","limit":"x"}', '{"key":"azE=","limit":true}', '{"key":"azE=","limit":1.5}', '{"key":"azE=","limit":"18446744073709551616"}',
      '{"key":"azE=","sort_order":"BOGUS"}', '{"key":"azE=","sort_order":true}', '{"key":"azE=","serializable":"yes"}',
      '{"key":"azE=","unknown_field":{"a":[1,2]}}', '{"key":"azE=","limit":null,"range_end":null}', '{"key":"azE=",}', '{"key" "azE="}',
      '{"key":"azE=","limit":-}', '{"key":"azE=","limit":tru}', '{"key":"azE=\\x"}', '{"key":"azE=","limit":"1 2"}', '{"key":"azE=","limit":""}',
    ]) {
      await same('/v3/kv/range', body);
    }
    await same('/v3/kv/txn', '{"success":{}}');
    await same('/v3/kv/txn', '{"compare":[{"target":"VALUE","value":""}]}');
    await same('/v3/cluster/member/remove', '{"ID":"-1"}');
  }));

  it('errors: server errors through the gateway', () => inSides(async () => {
    await same('/v3/kv/range', '{}');
    await same('/v3/kv/put', JSON.stringify({ key: '' }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('k1'), revision: '999' }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('x'), lease: '12345' }));
    await same('/v3/lease/revoke', JSON.stringify({ ID: '12345' }));
    await same('/v3/kv/txn', JSON.stringify({ success: [{ request_put: { key: b64('d') } }, { request_put: { key: b64('d') } }] }));
  }));

  it('large requests: over 1 KiB (Expect: 100-continue), over --max-request-bytes, over the gRPC limit', () => inSides(async () => {
    await same('/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(3000, 1).toString('base64') }));
    await same('/v3/kv/range', JSON.stringify({ key: b64('big'), keys_only: true }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(1_600_000, 2).toString('base64') }));
    await same('/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(2_200_000, 3).toString('base64') }));
  }));

  it('errors: unknown paths and methods', () => inSides(async () => {
    await same('/v3/kv/nope', '{}');
    await same('/v3/kv/range/', '{}');
    await same('/v3/kv/range', null, { method: 'GET' });
    await same('/v3/kv/range', '{}', { method: 'PUT' });
    await same('/v3alpha/kv/range', '{}');
    await same('/nope', '{}');
    await same('/health', '{}');
    await same('/version', '{}');
    await same('/v3', '{}');
    await same('/v3', null, { method: 'GET' });
    // Go's ServeMux: unclean paths are redirected (after etcd's /v3beta/ rewrite), whatever they name.
    for (const path of ['/v3//kv/range', '/v3/kv/./range', '/v3/kv/../kv/range?x=1', '/v3beta//kv/range', '//health', '/v3/a/../../v3beta/kv/range']) {
      await same(path, '{}');
    }
    await same('//health', null, { method: 'GET' });
    await same('/v3/watch', '{"create_request":');
    await same('/v3/watch', '{"create_request":{"key":1}}');
  }));

  it('every route, and near misses: served or not, unary or streaming, as etcd 3.4 has them', () => inSides(async () => {
    // A truncated body is refused before any call: 400 for a unary method, 500 for a client stream,
    // 404 for a path etcd 3.4 does not serve.
    const near = ['/v3/maintenance/hashkv', '/v3/auth/status', '/v3/lock', '/v3/election', '/v3/kv', '/v3/lease/keepalive/x'];
    for (const path of [...gatewayRoutes.keys(), ...near]) await same(path, '{');
  }));

  it('HTTP/2 and HTTP/1.1 on the same port', () => inSides(async () => {
    for (const side of sides.filter((s) => s.h2c)) {
      const h1 = await curl(side, '/v3/kv/range', JSON.stringify({ key: b64('k1') }));
      const h2 = await curl(side, '/v3/kv/range', JSON.stringify({ key: b64('k1') }), { http2: true });
      assert.deepEqual(h2, h1);
      assert.equal(h2.status, 200);
    }
  }));
});

/** A curl whose response streams: lines as they arrive; closed by killing that curl. */
class CurlStream {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #partial = '';
  status = 0;

  constructor(side: Side, path: string, body: string, token?: string) {
    const auth = token === undefined ? [] : ['-H', `Authorization: ${token}`];
    this.#child = spawn('curl', ['-s', '-N', '-i', '--http1.1', '--max-time', String(curlTimeoutSec), ...auth, '--data-binary', body,
      `${side.member.clientUrl}${path}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let head = true;
    this.#child.stdout?.on('data', (chunk: Buffer) => {
      this.#partial += chunk.toString('utf8');
      for (;;) {
        const nl = this.#partial.indexOf('\n');
        if (nl < 0) break;
        const line = this.#partial.slice(0, nl).replace(/\r$/, '');
        this.#partial = this.#partial.slice(nl + 1);
        if (head) {
          const m = /^HTTP\/[0-9.]+ ([0-9]+)/.exec(line);
          if (m !== null) this.status = Number(m[1]);
          if (line === '') head = false;
        } else if (line !== '') {
          this.#lines.push(line);
        }
      }
    });
  }

  async lines(count: number): Promise<string[]> {
    await waitFor(() => this.#lines.length >= count, { what: `${count} streamed lines (have ${JSON.stringify(this.#lines)})`, timeoutMs: 10_000 });
    return this.#lines.slice(0, count);
  }

  close(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGTERM');
  }
}

/**
 * Auth, Lock and Election through the gateway, on members of their own (enabling auth must not change the
 * rows above). The gateway serves them with no code of its own: they are registered services.
 */

/** Fresh members on every target, for a group of rows whose revisions must not depend on other groups. */
function ownMembers(name: string): { sides: Side[]; run: <T>(body: () => Promise<T>) => Promise<T> } {
  const own: Side[] = [];
  before(async () => {
    for (const target of targets) {
      const member = await Member.start({ target, name });
      const side: Side = { label: target.label, member, h2c: target.name === 'ours', ids: { cluster: '', member: '' }, leases: new Map() };
      own.push(side);
      const status = JSON.parse((await curl(side, '/v3/maintenance/status', '{}')).body) as { header: { cluster_id: string; member_id: string } };
      side.ids = { cluster: status.header.cluster_id, member: status.header.member_id };
    }
  });
  after(async () => {
    await Promise.all(own.map((s) => s.member.destroy()));
  });
  return { sides: own, run: (body) => withLogsOnFailure(own.map((s) => s.member), body) };
}

describe('HTTP/JSON gateway: lock, election', { concurrency: false }, () => {
  const { sides: own, run: inOwn } = ownMembers('m1');
  const all = (path: string, body: string | null | ((side: Side) => string), o: CurlOptions & { authenticated?: boolean } = {}): Promise<Answer[]> =>
    same(path, body, o, own);

  it('lock and unlock', () => inOwn(async () => {
    await all('/v3/lease/grant', JSON.stringify({ ID: '4660', TTL: 60 }));
    const locked = await all('/v3/lock/lock', JSON.stringify({ name: b64('mylock'), lease: '4660' }));
    assert.match(locked[0]!.body, new RegExp(`"key":"${b64('mylock/1234')}"`));
    await all('/v3/lock/unlock', JSON.stringify({ key: b64('mylock/1234') }));
    await all('/v3/lock/lock', JSON.stringify({ name: b64('mylock'), lease: '999999' }));
  }));

  it('election: campaign, leader, proclaim, observe (stream), resign', () => inOwn(async () => {
    await all('/v3/lease/grant', JSON.stringify({ ID: '4661', TTL: 60 }));
    const campaign = await all('/v3/election/campaign', JSON.stringify({ name: b64('el'), lease: '4661', value: b64('v1') }));
    const leaderOf = (i: number): unknown => (JSON.parse(campaign[i]!.body) as { leader: unknown }).leader;
    await all('/v3/election/leader', JSON.stringify({ name: b64('el') }));
    await all('/v3/election/proclaim', (side) => JSON.stringify({ leader: leaderOf(own.indexOf(side)), value: b64('v2') }));
    const observed: string[] = [];
    for (const side of own) {
      const s = new CurlStream(side, '/v3/election/observe', JSON.stringify({ name: b64('el') }));
      try {
        observed.push(normalise(side, (await s.lines(1)).join('\n')));
      } finally {
        s.close();
      }
    }
    for (let i = 1; i < observed.length; i++) assert.equal(observed[i], observed[0]);
    await all('/v3/election/resign', (side) => JSON.stringify({ leader: leaderOf(own.indexOf(side)) }));
    await all('/v3/election/leader', JSON.stringify({ name: b64('el') }));
  }));

});

describe('HTTP/JSON gateway: auth', { concurrency: false }, () => {
  const { sides: own, run: inOwn } = ownMembers('m2');
  const all = (path: string, body: string | null | ((side: Side) => string), o: CurlOptions & { authenticated?: boolean } = {}): Promise<Answer[]> =>
    same(path, body, o, own);

  it('auth: users, roles, enable, authenticate, the token in Authorization, disable', () => inOwn(async () => {
    await all('/v3/auth/user/add', JSON.stringify({ name: 'root', password: 'rootpw' }));
    await all('/v3/auth/role/add', JSON.stringify({ name: 'root' }));
    await all('/v3/auth/user/grant', JSON.stringify({ user: 'root', role: 'root' }));
    await all('/v3/auth/user/add', JSON.stringify({ name: 'u1', password: 'pw1' }));
    await all('/v3/auth/role/add', JSON.stringify({ name: 'r1' }));
    await all('/v3/auth/role/grant', JSON.stringify({ name: 'r1', perm: { permType: 'READ', key: b64('a'), range_end: b64('b') } }));
    await all('/v3/auth/user/grant', JSON.stringify({ user: 'u1', role: 'r1' }));
    await all('/v3/auth/user/get', JSON.stringify({ name: 'u1' }));
    await all('/v3/auth/role/get', JSON.stringify({ role: 'r1' }));
    await all('/v3/auth/user/list', '{}');
    await all('/v3/auth/role/list', '{}');
    await all('/v3/auth/enable', '{}');
    await all('/v3/kv/put', JSON.stringify({ key: b64('a1'), value: b64('x') }));
    // A stream refused before its first message: the error object with the code's HTTP status.
    // Not compared: without any token etcd 3.4's gateway answers "auth: invalid auth token" where ours says
    // "auth: user name is empty" (what etcd's gRPC path says); noted on issue 7.
    await all('/v3/maintenance/snapshot', '{}', { token: 'bogus' });
    const refused: string[] = [];
    for (const side of own) {
      const w = new CurlStream(side, '/v3/watch', JSON.stringify({ create_request: { key: b64('a1') } }), 'bogus');
      try {
        refused.push(normalise(side, (await w.lines(1)).join('\n')));
      } finally {
        w.close();
      }
    }
    for (let i = 1; i < refused.length; i++) assert.equal(refused[i], refused[0]);
    await all('/v3/auth/authenticate', JSON.stringify({ name: 'root', password: 'wrong' }));
    for (const side of own) {
      const answer = await curl(side, '/v3/auth/authenticate', JSON.stringify({ name: 'root', password: 'rootpw' }));
      side.token = (JSON.parse(answer.body) as { token: string }).token;
    }
    const put = await all('/v3/kv/put', JSON.stringify({ key: b64('a1'), value: b64('x') }), { authenticated: true });
    assert.equal(put[0]!.status, 200, 'the token travels in the Authorization header');
    await all('/v3/kv/range', JSON.stringify({ key: b64('a1') }), { authenticated: true });
    await all('/v3/kv/range', JSON.stringify({ key: b64('a1') }), { token: 'not-a-token' });
    await all('/v3/auth/user/changepw', JSON.stringify({ name: 'u1', password: 'pw2' }), { authenticated: true });
    await all('/v3/auth/user/revoke', JSON.stringify({ name: 'u1', role: 'r1' }), { authenticated: true });
    await all('/v3/auth/role/revoke', JSON.stringify({ role: 'r1', key: b64('a'), range_end: b64('b') }), { authenticated: true });
    await all('/v3/auth/role/delete', JSON.stringify({ role: 'r1' }), { authenticated: true });
    await all('/v3/auth/user/delete', JSON.stringify({ name: 'u1' }), { authenticated: true });
    await all('/v3/auth/disable', '{}', { authenticated: true });
    await all('/v3/kv/range', JSON.stringify({ key: b64('a1') }));
  }));
});
