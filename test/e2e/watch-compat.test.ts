/**
 * Acceptance 1 and 2 for watch: the real etcdctl's `watch` (key, --prefix, range, --rev, --prev-kv,
 * output formats, `-- command`, -i interactive with progress, errors) prints the same on every target
 * after normalise.ts's rules; raw gRPC Watch streams get the same responses (etcd 3.4 ids, created /
 * canceled answers and reasons, compact_revision, filters, prev_kv, fragments, progress notifications);
 * and the npm etcd3 client's watch API works. The first target (real etcd by default) is the reference.
 *
 * Comparing whole transcripts would compare timing (which watcher's catch-up a server happens to run
 * first), so raw responses are compared per watch id, in order. Two known, deliberate differences are
 * kept out of the script: etcd 3.4 answers a progress request at once even while a watcher on the stream
 * still catches up (its revision is then no bookmark; etcd-ts waits until all are synced, as etcd 3.5
 * does), and etcd 3.4 lets one negative start revision of -1 hide history from the other watchers caught
 * up in the same round.
 *
 * E2E_TRANSCRIPT=<file> appends every compared output to <file>.
 */
import { appendFileSync } from 'node:fs';
import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { Etcd3 } from 'etcd3';
import { WatchCreateRequest_FilterType as Filter, WatchResponse } from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { EtcdRpc } from './grpc-client.js';
import { Member, targetsFromEnv, withLogsOnFailure, type Target } from './harness.js';
import { replaceIdsAndPorts, type TargetFacts } from './normalise.js';
import { CtlProcess, RawWatch, until } from './watch-tools.js';

const serverFlags = ['--experimental-watch-progress-notify-interval=500ms', '--max-request-bytes=1024'];
/** etcd fragments responses of at least --max-request-bytes plus its gRPC allowance of 512 KiB. */
const fragmentBytes = 1024 + 512 * 1024;

interface Side {
  label: string;
  member: Member;
  rpc: EtcdRpc;
  facts: TargetFacts;
}

const targets = targetsFromEnv();
const sides: Side[] = [];

before(async () => {
  await Promise.all(targets.map(async (target) => {
    const member = await Member.start({ target, flags: serverFlags });
    const rpc = new EtcdRpc(member.endpoint);
    const header = (await rpc.status()).header!;
    sides.push({ label: target.label, member, rpc, facts: { clusterId: header.clusterId, memberId: header.memberId, clientPort: member.clientPort, peerPort: member.peerPort } });
  }));
  sides.sort((a, b) => targets.findIndex((t) => t.label === a.label) - targets.findIndex((t) => t.label === b.label));
});

after(async () => {
  for (const side of sides) side.rpc.close();
  await Promise.all(sides.map((side) => side.member.destroy()));
});

/** Runs body on every side at once; fails listing every output that differs from the reference. */
async function compare(name: string, body: (side: Side) => Promise<string>): Promise<string[]> {
  const outputs = await withLogsOnFailure(sides.map((s) => s.member), () => Promise.all(sides.map(body)));
  const problems = outputs.flatMap((out, i) => (out === outputs[0] ? [] : [
    `${name}: outputs differ\n  [${sides[0]!.label}] ${JSON.stringify(outputs[0])}\n  [${sides[i]!.label}] ${JSON.stringify(out)}`]));
  const transcript = process.env['E2E_TRANSCRIPT'];
  if (transcript !== undefined) appendFileSync(transcript, `### ${name}\n${outputs.map((o, i) => `[${sides[i]!.label}]\n${o}`).join('\n')}\n\n`);
  if (problems.length > 0) assert.fail(problems.join('\n\n'));
  return outputs;
}

async function ctl(side: Side, line: string, stdin?: string): Promise<string> {
  const r = await side.member.etcdctl(line.split(' '), stdin === undefined ? {} : { stdin });
  return replaceIdsAndPorts(`exit ${r.code}\n${r.stdout}${r.stderr}`, side.facts);
}

async function currentRevision(side: Side): Promise<number> {
  return Number((await side.rpc.range({ key: Buffer.from('any') })).header!.revision);
}

/** Starts `etcdctl <args>`, waits for `done` in its output, stops it; returns the normalised output. */
async function watchOutput(side: Side, args: readonly string[], done: RegExp): Promise<string> {
  const p = new CtlProcess(side.member.endpoint, args);
  try {
    await p.waitOutput(done);
  } finally {
    await p.kill();
  }
  return replaceIdsAndPorts(`${p.stdout}--- stderr ---\n${p.stderr}`, side.facts);
}

const history = [
  'put foo bar', 'put foo baz', 'put fop 1', 'put fz 2', 'del foo', 'put a/1 x', 'put foo qux',
];

test('etcdctl watch replays history: key, prefix, range, --prev-kv, json and fields output, -- command', async () => {
  await compare('history', async (side) => {
    const out: string[] = [];
    for (const line of history) out.push(await ctl(side, line));
    out.push(await ctl(side, 'txn', '\nput fo1 v1\nput fo2 v2\n\n\n'));
    out.push(await ctl(side, 'put foo last'));
    return out.join('');
  });
  const cases: Array<[string[], RegExp]> = [
    [['watch', '--rev=2', 'foo'], /last\n/],
    [['watch', '--rev=2', '--prefix', 'fo'], /last\n/],
    [['watch', '--rev=2', 'fo', 'fz'], /last\n/],
    [['watch', '--rev=2', '--prev-kv', 'foo'], /last\n/],
    [['watch', '--rev=5', '--prefix', ''], /last\n/],
    [['-w', 'json', 'watch', '--rev=2', '--prefix', 'f'], /bGFzdA==/],
    [['-w', 'fields', 'watch', '--rev=2', '--prev-kv', 'foo'], /"Value" : "last"/],
    [['--hex', 'watch', '--rev=2', 'foo'], /\\x6c\\x61\\x73\\x74/],
    [['watch', '--rev=2', 'foo', '--', 'printenv', 'ETCD_WATCH_REVISION', 'ETCD_WATCH_EVENT_TYPE', 'ETCD_WATCH_KEY', 'ETCD_WATCH_VALUE'], /"last"\n/],
  ];
  for (const [args, done] of cases) await compare(`etcdctl ${args.join(' ')}`, (side) => watchOutput(side, args, done));
});

test('etcdctl watch sees live writes; -i runs several watches on one client and answers progress', async () => {
  const revs = await Promise.all(sides.map(currentRevision));
  assert.ok(revs.every((r) => r === revs[0]), `same history on every target: ${revs.join(' ')}`);
  const next = revs[0]! + 1;
  await compare('live watch', async (side) => {
    const p = new CtlProcess(side.member.endpoint, ['watch', `--rev=${next}`, '--prefix', 'live/']);
    try {
      await ctl(side, 'put live/a 1');
      await ctl(side, 'del live/a');
      await p.waitOutput(/DELETE\nlive\/a\n/);
    } finally {
      await p.kill();
    }
    return replaceIdsAndPorts(p.stdout + p.stderr, side.facts);
  });
  await compare('watch -i', async (side) => {
    const from = await currentRevision(side) + 1;
    const p = new CtlProcess(side.member.endpoint, ['watch', '-i']);
    try {
      p.write(`watch --rev=${from} one\n`);
      p.write(`watch --rev=${from} --prev-kv --prefix two/\n`);
      p.write('bogus\n');
      await ctl(side, 'put one 1');
      await p.waitOutput(/one\n1\n/);
      await ctl(side, 'put two/x 2');
      await ctl(side, 'put two/x 3');
      await p.waitOutput(/two\/x\n2\ntwo\/x\n3\n/);
      p.write('progress\n');
      await p.waitOutput(/progress notify: \d+\n[^]*progress notify: \d+\n/);
      await p.endInput();
    } finally {
      await p.kill();
    }
    const lines = p.stdout.split('\n');
    // The two watches print from two goroutines: progress lines are compared as a set.
    const progress = lines.filter((l) => l.startsWith('progress notify')).sort();
    const rest = lines.filter((l) => !l.startsWith('progress notify'));
    return replaceIdsAndPorts(`${rest.join('\n')}\n${progress.join('\n')}\n--- stderr ---\n${p.stderr}\nexit ${p.exit?.code}`, side.facts);
  });
});

test('etcdctl watch errors: bad arguments, empty range, unknown flag', async () => {
  for (const line of ['watch', 'watch --prefix a b', 'watch b a', 'watch --progress-notify foo', 'watch --rev=1 -- echo']) {
    await compare(line, (side) => ctl(side, line));
  }
});

// ------------------------------------------------------------------------------------- raw gRPC

/** A response as JSON with ids and ports replaced (created/canceled/progress answers compared whole). */
function plain(r: WatchResponse, facts: TargetFacts): string {
  const json = JSON.stringify(r, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') {
      return Buffer.from((v as { data: number[] }).data).toString('latin1');
    }
    return v;
  });
  return replaceIdsAndPorts(json, facts);
}

/** Responses grouped by watch id, each group in arrival order. */
function byWatchId(responses: readonly WatchResponse[], facts: TargetFacts): string {
  const groups = new Map<string, string[]>();
  for (const r of responses) {
    const id = String(r.watchId);
    groups.set(id, [...(groups.get(id) ?? []), plain(r, facts)]);
  }
  return [...groups.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([id, rs]) => `watch ${id}:\n  ${rs.join('\n  ')}`).join('\n');
}

const k = (s: string): Buffer => Buffer.from(s, 'latin1');

test('raw gRPC: etcd 3.4 ids, duplicate and empty-range refusals, filters, prev_kv, history, cancel', async () => {
  await compare('raw watch script', async (side) => {
    const w = new RawWatch(side.member.endpoint);
    try {
      const created = (n: number) => (rs: readonly WatchResponse[]): boolean => rs.filter((r) => r.created).length >= n;
      w.create({ key: k('foo') });
      w.create({ key: k('foo'), watchId: 5n });
      w.create({ key: k('foo'), watchId: 5n });
      w.create({ key: k('b'), rangeEnd: k('a') });
      w.create({ key: k(''), rangeEnd: k('\0'), startRevision: 2n });
      w.create({ key: k('fo'), rangeEnd: k('fp'), startRevision: 2n, filters: [Filter.NOPUT] });
      w.create({ key: k('fo'), rangeEnd: k('fp'), startRevision: 2n, filters: [Filter.NODELETE], prevKv: true });
      // A negative start revision is not compared: etcd 3.4 cancels it (compact_revision -1) only when its
      // 100 ms catch-up loop gets to it, so its answer here depends on timing.
      w.create({ key: k('foo'), startRevision: 0n });
      w.create({ key: k('zz'), startRevision: 1000n });
      w.create({ key: k('foo'), watchId: 1n });
      await w.waitFor(created(10), '10 created responses');
      // History first, so that no server can fold the txn below into a watcher's catch-up response.
      const caughtUp = (rs: readonly WatchResponse[]): boolean => [1n, 2n, 3n].every((id) => rs.some((r) => r.watchId === id && r.events.length > 0));
      await w.waitFor(caughtUp, 'the history of watchers 1-3');
      w.cancel(77n);
      w.cancel(5n);
      // etcd handles a cancel asynchronously: writing before its answer arrives races with it.
      await w.waitFor((rs) => rs.some((r) => r.watchId === 5n && r.canceled && !r.created), 'the cancel of watcher 5');
      const rev = await currentRevision(side);
      await side.rpc.txn({ success: [
        { request: { $case: 'requestPut', value: { key: k('foo'), value: k('t1') } } },
        { request: { $case: 'requestDeleteRange', value: { key: k('fop') } } },
      ] });
      const sawTxn = (id: bigint) => (rs: readonly WatchResponse[]): boolean =>
        rs.some((r) => r.watchId === id && r.events.some((e) => Number(e.kv!.modRevision) === rev + 1));
      for (const id of [0n, 1n, 2n, 3n]) await w.waitFor(sawTxn(id), `watcher ${id} to see the txn`);
      w.requestProgress();
      await w.waitFor((rs) => rs.some((r) => r.watchId === -1n && !r.created), 'the progress response');
      return byWatchId(w.responses, side.facts);
    } finally {
      w.close();
    }
  });
});

test('raw gRPC: a response over the size limit is fragmented for a watcher that asks, and joins back', async () => {
  await compare('bulk writes', async (side) => {
    const value = 'v'.repeat(900);
    for (let i = 0; i < 600; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => side.rpc.put({ key: k(`big/${String(i + j).padStart(4, '0')}`), value: k(value) })));
    }
    return String((await side.rpc.range({ key: k('big/'), rangeEnd: k('big0'), countOnly: true })).count);
  });
  const outputs = await compare('fragmented delete', async (side) => {
    const del = await side.rpc.deleteRange({ key: k('big/'), rangeEnd: k('big0') });
    const w = new RawWatch(side.member.endpoint);
    try {
      w.create({ key: k('big/'), rangeEnd: k('big0'), startRevision: del.header!.revision, prevKv: true, fragment: true });
      w.create({ key: k('big/'), rangeEnd: k('big0'), startRevision: del.header!.revision, prevKv: true, watchId: 9n });
      const joined = (id: bigint) => w.responses.filter((r) => r.watchId === id && !r.created).flatMap((r) => r.events);
      await w.waitFor(() => joined(0n).length === 600 && joined(9n).length === 600, 'both watchers to get 600 deletes');
      const parts = w.responses.filter((r) => r.watchId === 0n && !r.created);
      assert.ok(parts.length > 1 && parts.slice(0, -1).every((r) => r.fragment) && !parts.at(-1)!.fragment, `${side.label}: fragments`);
      assert.equal(w.responses.filter((r) => r.watchId === 9n && !r.created).length, 1, `${side.label}: unfragmented watcher gets one response`);
      assert.deepEqual(joined(0n), joined(9n));
      for (const r of parts) {
        const size = WatchResponse.encode(r).finish().length;
        assert.ok(size < fragmentBytes + 2000, `${side.label}: a fragment of ${size} bytes`);
      }
      return `${parts.length} fragments, ${joined(0n).length} events, prev values ${new Set(joined(0n).map((e) => e.prevKv?.value.length)).size}`;
    } finally {
      w.close();
    }
  });
  assert.match(outputs[0]!, /^2 fragments, 600 events/);
});

test('raw gRPC: catching up over more history than one gRPC message may carry (4 MiB for grpc-js clients)', async () => {
  await compare('long history', async (side) => {
    const from = await currentRevision(side) + 1;
    const value = k('h'.repeat(990));
    for (let i = 0; i < 4500; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => side.rpc.put({ key: k(`hist/${(i + j) % 97}`), value })));
    }
    const w = new RawWatch(side.member.endpoint);
    try {
      w.create({ key: k('hist/'), rangeEnd: k('hist0'), startRevision: BigInt(from), prevKv: true });
      const events = (): number => w.responses.reduce((n, r) => n + r.events.length, 0);
      await w.waitFor(() => events() === 4500, '4500 events', 30_000);
      const revs = w.responses.flatMap((r) => r.events.map((e) => Number(e.kv!.modRevision)));
      assert.deepEqual(revs, Array.from({ length: 4500 }, (_, i) => from + i), `${side.label}: in order, no gaps`);
      return `${events()} events`;
    } finally {
      w.close();
    }
  });
});

test('raw gRPC: progress_notify watchers get periodic notifications at the current revision', async () => {
  await compare('progress notify', async (side) => {
    const w = new RawWatch(side.member.endpoint);
    try {
      w.create({ key: k('quiet'), progressNotify: true });
      w.create({ key: k('quiet2') });
      const rev = await currentRevision(side);
      await w.waitFor((rs) => rs.some((r) => r.watchId === 0n && !r.created && r.events.length === 0), 'a progress notification', 10_000);
      const first = w.responses.find((r) => r.watchId === 0n && !r.created)!;
      assert.equal(Number(first.header!.revision), rev);
      return `watcher 1 notified: ${w.responses.some((r) => r.watchId === 1n && !r.created)}; ${plain(first, side.facts)}`;
    } finally {
      w.close();
    }
  });
});

// ------------------------------------------------------------------------------------- etcd3 client

for (const target of targets) {
  describe(`etcd3 client watch API against ${target.label}`, () => {
    const side = (): Side => sides.find((s) => s.label === target.label)!;
    const client = (): Etcd3 => new Etcd3({ hosts: side().member.clientUrl });

    it('key, prefix and previous-kv watchers get puts and deletes; cancel stops them', () => withLogsOnFailure([side().member], async () => {
      const c = client();
      try {
        const seen: string[] = [];
        const key = await c.watch().key('e3/k').create();
        key.on('put', (kv) => seen.push(`key put ${kv.value.toString()}`));
        const prefix = await c.watch().prefix('e3/').withPreviousKV().create();
        prefix.on('put', (kv, prev) => seen.push(`prefix put ${kv.key.toString()}=${kv.value.toString()} prev=${prev?.value.toString() ?? '-'}`));
        prefix.on('delete', (kv, prev) => seen.push(`prefix delete ${kv.key.toString()} prev=${prev?.value.toString() ?? '-'}`));
        await c.put('e3/k').value('1');
        await c.put('e3/k').value('2');
        await c.delete().key('e3/k');
        await until(() => seen.length === 5, () => `5 events, got ${JSON.stringify(seen)}`);
        assert.deepEqual(seen.filter((s) => s.startsWith('key')), ['key put 1', 'key put 2']);
        assert.deepEqual(seen.filter((s) => s.startsWith('prefix')), ['prefix put e3/k=1 prev=-', 'prefix put e3/k=2 prev=1', 'prefix delete e3/k prev=2']);
        await key.cancel();
        await c.put('e3/k').value('3');
        await until(() => seen.length === 6, () => `the prefix watcher's event, got ${JSON.stringify(seen)}`);
        assert.equal(seen.at(-1), 'prefix put e3/k=3 prev=-');
        await prefix.cancel();
      } finally {
        c.close();
      }
    }));

    it('startRevision replays history, then continues live', () => withLogsOnFailure([side().member], async () => {
      const c = client();
      try {
        const first = await c.put('e3/h').value('a').exec();
        await c.put('e3/h').value('b');
        const values: string[] = [];
        const w = await c.watch().key('e3/h').startRevision(String(first.header.revision)).create();
        w.on('put', (kv) => values.push(kv.value.toString()));
        await c.put('e3/h').value('c');
        await until(() => values.length === 3, () => `3 values, got ${values.join(',')}`);
        assert.deepEqual(values, ['a', 'b', 'c']);
        await w.cancel();
      } finally {
        c.close();
      }
    }));
  });
}

test('etcdctl watch from a compacted revision is canceled by the server (run last: it compacts)', async () => {
  await compare('compaction', async (side) => {
    const rev = await currentRevision(side);
    return `${await ctl(side, `compaction ${rev}`)}${await ctl(side, 'watch --rev=2 foo')}${await ctl(side, `watch --rev=${rev - 1} --prefix big`)}`
      .replace(new RegExp(`\\b${rev}\\b`, 'g'), '<rev>');
  });
});
