/**
 * Acceptance 1: the real etcdctl (3.4) runs one scripted session against every target, each started the
 * same way from an empty data dir; after the normalisations documented in normalise.ts, every output
 * (exit code, stdout, stderr) must equal the first target's (the reference; real etcd by default).
 *
 * The script is a table: one etcdctl command per row. `{R1}`, `{R1+2}`, `{R1-1}` stand for the revision
 * recorded after the row marked `R1`, so rows can be inserted without renumbering. `{lease:L1}` stands for
 * the (hex) id of the lease the server chose in the row marked `lease: 'L1'`. `ok`/`err` rows also
 * check what every target printed, which keeps the script honest: a row meant to hit a compacted
 * revision cannot silently turn into a plain read.
 *
 * Request fields etcdctl 3.4 cannot send (count_only, min/max mod and create revision, lease and range
 * compares, nested txn, explicit sort values) are compared the same way through raw gRPC at the end.
 *
 * E2E_TRANSCRIPT=<file> appends every row with its normalised outputs to <file>, to read what was compared.
 *
 * Both servers run with --max-txn-ops=4 and --max-request-bytes=1024 so those limits can be hit cheaply.
 */
import { appendFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Member, targetsFromEnv, withLogsOnFailure, type CtlResult } from './harness.js';
import { EtcdRpc, isServiceError } from './grpc-client.js';
import { normalise, replaceIdsAndPorts, type Normalised, type TargetFacts } from './normalise.js';
import {
  Compare_CompareResult as Result, Compare_CompareTarget as Target, RangeRequest_SortOrder as Order,
  RangeRequest_SortTarget as SortBy, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest,
  type Compare, type RequestOp,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';

const serverFlags = ['--max-txn-ops=4', '--max-request-bytes=1024'];
/** A lease granted with a fixed ID on every target before the script, so lease ids need no normalising. */
const fixedLeaseId = 0x7e57n;

interface Row {
  line: string;
  stdin?: string;
  /** Record the store revision after this row under this name. */
  mark?: string;
  /** Every target must exit 0 and print something matching this. */
  ok?: RegExp;
  /** Every target must exit non-zero and print (stdout+stderr) something matching this. */
  err?: RegExp;
  /** Learn the id of the lease this row grants under this name (for `{lease:NAME}` and rule 8). */
  lease?: string;
}

type RowOptions = Omit<Row, 'line'>;
const row = (line: string, options: RowOptions = {}): Row => ({ line, ...options });
const bigValue = 'x'.repeat(2000);

// ------------------------------------------------------------------------------------------ the script

const cluster: Row[] = ['simple', 'json', 'fields', 'table', 'protobuf'].flatMap((w) => [
  row(`-w ${w} endpoint status`),
  row(`-w ${w} endpoint health`),
  row(`-w ${w} member list`),
]);

const puts: Row[] = [
  row('put foo bar', { ok: /^OK\n$/ }),
  row('put foo bar2 --prev-kv', { ok: /^OK\nfoo\nbar\n$/ }),
  row('-w json put foo bar3 --prev-kv', { ok: /"prev_kv":\{"key":"Zm9v"/ }),
  row('-w fields put foo bar4 --prev-kv'),
  row('-w protobuf put foo bar5 --prev-kv'),
  row('-w table put foo bar6', { err: /table not supported as output format/ }),
  row('put k1 v1 --lease=1234', { err: /Error: etcdserver: requested lease not found/ }),
  row('put foo --ignore-value', { ok: /^OK\n$/ }),
  row('-w json put foo --ignore-value --prev-kv', { ok: /"value":"YmFyNg=="/ }),
  row('put nokey --ignore-value', { err: /etcdserver: key not found/ }),
  row('put lk lv --lease=7e57'),
  row('put lk lv2 --ignore-lease'),
  row('-w json get lk', { ok: /"lease":32343/ }),
  row('-w fields put lk --ignore-value --ignore-lease --prev-kv', { ok: /"PrevLease" : 32343/ }),
  row('put lk lv3 --lease=7e57 --ignore-lease', { err: /etcdserver: lease is provided/ }),
  row('put lk lv4', { ok: /^OK\n$/ }),
  row('-w json get lk', { ok: /"value":"bHY0"/ }),
  row("put '' v", { err: /etcdserver: key is not provided/ }),
  row('put sk', { stdin: 'line1\nline2\n', ok: /^OK\n$/ }),
  row('get sk', { ok: /^sk\nline1\nline2\n\n$/ }),
  row('put -- -dash dash-value'),
  row('get -- -dash', { ok: /dash-value/ }),
  row(`put big ${bigValue}`, { err: /etcdserver: request is too large/ }),
  row('lease list', { ok: /^found 1 leases\n0000000000007e57\n$/ }),
  row('put foo bar7 --lease=zz', { err: /bad lease ID/ }),
];

/** g/a..g/d end with distinct values, versions, create and mod revisions: every sort has one answer. */
const history: Row[] = [
  row('put g/d 1', { mark: 'G1' }), row('put g/b 4'), row('put g/c 2'), row('put g/a 3', { mark: 'G4' }),
  row('put g/c 6'), row('put g/b 8'), row('put g/c 9'), row('put g/a 5'), row('put g/c 0'), row('put g/b 7'),
  row('put h x'), row('put i y', { mark: 'GEND' }),
];

const sortRows: Row[] = ['CREATE', 'KEY', 'MODIFY', 'VALUE', 'VERSION'].flatMap((by) => [
  row(`get g/ --prefix --sort-by=${by}`),
  row(`get g/ --prefix --sort-by=${by} --order=ASCEND`),
  row(`get g/ --prefix --sort-by=${by} --order=DESCEND`),
  row(`-w json get g/ --prefix --sort-by=${by} --order=DESCEND --limit=2`, { ok: /"more":true/ }),
]);

const gets: Row[] = [
  row('get g/a', { ok: /^g\/a\n5\n$/ }),
  row('get g/ --prefix', { ok: /^g\/a\n5\ng\/b\n7\ng\/c\n0\ng\/d\n1\n$/ }),
  row('-w json get g/ --prefix', { ok: /"count":4/ }),
  row('-w fields get g/ --prefix'),
  row('-w protobuf get g/ --prefix'),
  row('-w table get g/ --prefix', { err: /table not supported/ }),
  row('get g/b g/d', { ok: /^g\/b\n7\ng\/c\n0\n$/ }),
  row('get g/c --from-key', { ok: /^g\/c\n0\ng\/d\n1\nh\nx\ni\ny\n.*lk/s }),
  row("get '' --from-key --keys-only"),
  row("get '' --prefix --keys-only"),
  row('get g/ --prefix --limit=2'),
  row('-w json get g/ --prefix --limit=2', { ok: /"more":true,"count":4/ }),
  row('-w json get g/ --prefix --limit=0'),
  row('get g/ --prefix --rev={G4}', { ok: /^g\/a\n3\ng\/b\n4\ng\/c\n2\ng\/d\n1\n$/ }),
  row('get g/c --rev={G4}', { ok: /^g\/c\n2\n$/ }),
  row('get g/a --rev={G1}', { ok: /^$/ }),
  row('-w json get g/ --prefix --rev={G4}'),
  ...sortRows,
  row('get g/ --prefix --order=DESCEND'),
  row('get g/ --prefix --order=ASCEND'),
  row('get g/ --prefix --sort-by=VALUE --order=DESCEND --keys-only', { ok: /^g\/b\n\ng\/a\n\ng\/d\n\ng\/c\n\n$/ }),
  row('get g/ --prefix --keys-only', { ok: /^g\/a\n\ng\/b\n/ }),
  row('-w json get g/ --prefix --keys-only'),
  row('get g/b --print-value-only', { ok: /^7\n$/ }),
  row('get g/ --prefix --print-value-only'),
  row('get g/ --prefix --consistency=s'),
  row('-w json get g/b --consistency=s'),
  row('get g/ --prefix --consistency=x', { err: /unknown consistency flag/ }),
  row('--hex get g/ --prefix'),
  row('--hex -w json get g/a'),
  row('get nothing-here', { ok: /^$/ }),
  row('-w json get nothing-here'),
  row('-w fields get nothing-here'),
  row('-w protobuf get nothing-here'),
  row("get ''", { err: /etcdserver: key is not provided/ }),
  row('-w fields get g/ --prefix --limit=1 --sort-by=MODIFY --order=DESCEND', { ok: /"Key" : "g\/b"/ }),
  row('get g/ --prefix --sort-by=BOGUS', { err: /bad sort target/ }),
];

const deletes: Row[] = [
  row('put d/1 a'), row('put d/2 b'), row('put d/3 c'), row('put d/4 d'), row('put d/5 e'), row('put d/6 f'),
  row('put z1 1'), row('put z2 2'),
  row('del d/1', { ok: /^1\n$/ }),
  row('del d/1', { ok: /^0\n$/ }),
  row('del d/2 --prev-kv', { ok: /^1\nd\/2\nb\n$/ }),
  row('-w json del d/3 d/5 --prev-kv', { ok: /"deleted":2/ }),
  row('-w fields del d/5 --prev-kv'),
  row('-w protobuf del d/ --prefix --prev-kv'),
  row('del d/ --prefix', { ok: /^0\n$/ }),
  row('del z --from-key --prev-kv', { ok: /^2\nz1\n1\nz2\n2\n$/ }),
  row("del ''", { err: /etcdserver: key is not provided/ }),
  row('-w table del nothing', { err: /table not supported/ }),
  row('del a b c', { err: /del command needs one argument/ }),
  row('get d/ --prefix --rev={GEND}', { ok: /^$/ }),
];

const txns: Row[] = [
  row('put t/a 1'), row('put t/b 2', { mark: 'T2' }),
  row('txn', { stdin: 'value("t/a") = "1"\n\nput t/c 3\nget t/a\n\nput t/c fail\n\n', ok: /^SUCCESS\n\nOK\n\nt\/a\n1\n$/ }),
  row('txn', { stdin: 'value("t/a") != "1"\n\nput t/c never\n\ndel t/c --prev-kv\nget t/ --prefix\n\n', ok: /^FAILURE\n/ }),
  row('txn', { stdin: 'value("t/a") > "0"\nvalue("t/b") < "3"\n\nput t/v 1\n\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: 'version("t/a") = "1"\nversion("t/v") > "0"\nversion("t/b") < "2"\nversion("t/b") != "0"\n\nget t/ --prefix --keys-only\n\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: 'create("t/a") = "{T2-1}"\ncreate("t/b") > "{T2-1}"\ncreate("t/a") < "{T2}"\ncreate("t/b") != "0"\n\nput t/cr yes\n\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: 'mod("t/b") = "{T2}"\nmod("t/a") < "{T2}"\nmod("t/v") > "{T2}"\nmod("nokey") != "1"\n\nput t/mod yes\n\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: 'mod("t/b") > "{T2}"\n\nput t/x 1\n\nget t/a\nget t/b --keys-only\n\n', ok: /^FAILURE/ }),
  row('txn', { stdin: 'value("nokey") = ""\n\n\nput t/nv yes\n\n', ok: /^FAILURE/ }),
  row('txn', { stdin: 'version("nokey") = "0"\n\nput t/nv2 yes\n\n\n', ok: /^SUCCESS/ }),
  row('-w json txn', { stdin: 'val("t/a") = "1"\n\nget t/ --prefix --limit=1 --sort-by=KEY --order=DESCEND\nput t/j 1\n\n\n' }),
  row('-w fields txn', { stdin: 'ver("t/a") = "1"\n\nput t/f 1\nget t/f\n\n\n' }),
  row('-w protobuf txn', { stdin: 'c("t/a") > "0"\n\nput t/p 1\ndel t/j\n\n\n' }),
  row('-w table txn', { stdin: 'm("t/a") > "0"\n\nput t/tb 1\n\n\n', err: /table not supported/ }),
  row('txn -i', { stdin: 'value("t/a") = "1"\n\nput t/i "a b"\n\n\n', ok: /^compares:\nsuccess requests/ }),
  row('get t/i', { ok: /^t\/i\na b\n$/ }),
  row('txn', { stdin: '\n\n\n', ok: /^SUCCESS\n$/ }),
  row('txn', { stdin: '\nput t/a 10 --prev-kv\nput t/b 20\n\n\n', ok: /^SUCCESS\n\nOK\nt\/a\n1\n\nOK\n$/ }),
  row('txn', { stdin: '\nput t/1 1\nput t/2 2\nput t/3 3\nput t/4 4\nput t/5 5\n\n\n', err: /too many operations in txn request/ }),
  row('txn', { stdin: 'value("t/a") = "1"\nvalue("t/a") = "1"\nvalue("t/a") = "1"\nvalue("t/a") = "1"\nvalue("t/a") = "1"\n\n\n\n', err: /too many operations/ }),
  row('txn', { stdin: '\nput t/1 1\nput t/2 2\nput t/3 3\nput t/4 4\n\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: '\nput t/dup 1\nput t/dup 2\n\n\n', err: /duplicate key given in txn request/ }),
  row('txn', { stdin: '\ndel t/ --prefix\nput t/y 1\n\n\n', err: /duplicate key given in txn request/ }),
  row('txn', { stdin: '\nput t/y 1\n\ndel t/y\n\n', ok: /^SUCCESS/ }),
  row('txn', { stdin: 'value("") = "x"\n\nput t/z 1\n\n\n', err: /etcdserver: key is not provided/ }),
  row('txn', { stdin: `\nput t/big ${bigValue}\n\n\n`, err: /etcdserver: request is too large/ }),
  row('txn', { stdin: 'value("t/a" = "1"\n\n\n\n', err: /malformed comparison/ }),
  row('txn', { stdin: 'bogus("t/a") = "1"\n\n\n\n', err: /unknown target/ }),
  row('get t/ --prefix', { mark: 'TEND' }),
];

const compaction: Row[] = [
  row('compaction {G4}', { ok: /^compacted revision \d+\n$/ }),
  row('get g/ --prefix --rev={G4-1}', { err: /required revision has been compacted/ }),
  row('-w json get g/ --prefix --rev={G4-1}', { err: /code = OutOfRange desc = etcdserver: mvcc: required revision has been compacted/ }),
  row('get g/ --prefix --rev={G4}', { ok: /^g\/a\n3\n/ }),
  row('compaction {G4}', { err: /required revision has been compacted/ }),
  row('compaction {G1}', { err: /required revision has been compacted/ }),
  row('compaction --physical {GEND}', { ok: /^compacted revision \d+\n$/ }),
  row('get g/ --prefix --rev={G4}', { err: /required revision has been compacted/ }),
  row('get g/ --prefix --rev={GEND}'),
  row('compaction {TEND+1000}', { err: /required revision is a future revision/ }),
  row('get foo --rev={TEND+1000}', { err: /required revision is a future revision/ }),
  row('-w json get foo --rev={TEND+1}', { err: /code = OutOfRange desc = etcdserver: mvcc: required revision is a future revision/ }),
  row('get foo --rev={TEND}', { ok: /^foo\nbar6\n$/ }),
  row('txn', { stdin: `\nget foo --rev={G1}\n\n\n`, err: /required revision has been compacted/ }),
  row('txn', { stdin: `\nget foo --rev={TEND+1000}\n\n\n`, err: /required revision is a future revision/ }),
  row('txn', { stdin: `\nget foo --rev={GEND}\nput foo after-compaction\n\n\n`, ok: /^SUCCESS\n\nfoo\nbar6\n\nOK\n$/ }),
  row('compaction abc', { err: /invalid syntax/ }),
  row('compaction', { err: /compaction command needs 1 argument/ }),
  row('put lk2 x --lease=7e57', { ok: /^OK\n$/ }),
  row('lease revoke 7e57', { ok: /^lease 0000000000007e57 revoked\n$/ }),
  row('get lk2', { ok: /^$/ }),
  row('get lk', { ok: /^lk\nlv4\n$/ }),
  row('lease list', { ok: /found 0 leases/ }),
  row('put foo bar --lease=7e57', { err: /requested lease not found/ }),
  ...cluster,
];

/**
 * Runs after `compaction`, which revokes the fixed lease, so the lists hold exactly these leases. No row
 * grants a lease shorter than the script takes to run: its expiry would race the rows that follow.
 * Only one key per lease: etcd lists a lease's keys in Go map order.
 */
const leases: Row[] = [
  row('lease grant 600', { lease: 'L1', ok: /^lease [0-9a-f]{16} granted with TTL\(600s\)\n$/ }),
  row('-w json lease grant 300', { lease: 'L2', ok: /"TTL":300/ }),
  row('-w fields lease grant 900', { lease: 'L3', ok: /"TTL" : 900/ }),
  row('lease grant 9000000001', { err: /etcdserver: too large lease TTL/ }),
  row('lease grant abc', { err: /bad TTL/ }),
  row('lease grant', { err: /lease grant command needs TTL argument/ }),
  row('put lease/a 1 --lease={lease:L1}', { ok: /^OK\n$/ }),
  row('put lease/b 2 --lease={lease:L2}', { ok: /^OK\n$/ }),
  row('-w json get lease/a', { ok: /"lease":\d+/ }),
  row('lease timetolive {lease:L1}', { ok: /granted with TTL\(600s\), remaining\(\d+s\)\n$/ }),
  row('lease timetolive {lease:L1} --keys', { ok: /, attached keys\(\[lease\/a\]\)\n$/ }),
  row('-w json lease timetolive {lease:L2} --keys', { ok: /"granted-ttl":300/ }),
  row('-w fields lease timetolive {lease:L3} --keys', { ok: /"GrantedTTL" : 900/ }),
  row('lease timetolive 1234abcd', { ok: /^lease 000000001234abcd already expired\n$/ }),
  row('-w json lease timetolive 1234abcd', { ok: /"ttl":-1,"granted-ttl":0/ }),
  row('lease timetolive', { err: /lease timetolive command needs lease ID as argument/ }),
  row('lease list', { ok: /^found 3 leases\n[0-9a-f]{16}\n[0-9a-f]{16}\n[0-9a-f]{16}\n$/ }),
  row('-w json lease list'),
  row('-w fields lease list'),
  row('-w protobuf lease list', { ok: /\S/ }),
  row('lease keep-alive --once {lease:L1}', { ok: /^lease [0-9a-f]{16} keepalived with TTL\(600\)\n$/ }),
  row('-w json lease keep-alive --once {lease:L2}', { ok: /"TTL":300/ }),
  row('-w fields lease keep-alive --once {lease:L3}', { ok: /"TTL" : 900/ }),
  row('-w protobuf lease keep-alive --once {lease:L3}', { ok: /\S/ }),
  row('-w protobuf lease timetolive {lease:L3}', { ok: /\S/ }),
  row('lease keep-alive --once 1234abcd', { err: /requested lease not found/ }),
  row('lease keep-alive', { err: /lease keep-alive command needs lease ID as argument/ }),
  row('lease revoke {lease:L1}', { ok: /^lease [0-9a-f]{16} revoked\n$/ }),
  row('get lease/ --prefix', { ok: /^lease\/b\n2\n$/ }),
  row('lease revoke {lease:L1}', { err: /etcdserver: requested lease not found/ }),
  row('lease timetolive {lease:L1}', { ok: /already expired/ }),
  row('-w json lease revoke {lease:L2}'),
  row('-w fields lease revoke {lease:L3}'),
  row('lease revoke zz', { err: /bad lease ID arg/ }),
  row('lease revoke', { err: /lease revoke command needs 1 argument/ }),
  row('get lease/ --prefix', { ok: /^$/ }),
  row('lease list', { ok: /^found 0 leases\n$/ }),
];

// ------------------------------------------------------------------------------------------ the runner

interface Side {
  label: string;
  member: Member;
  rpc: EtcdRpc;
  facts: TargetFacts;
  marks: Map<string, bigint>;
  /** Server-chosen lease ids by name; also the facts' leaseIds. */
  leases: Map<string, bigint>;
}

const targets = targetsFromEnv();
const sides: Side[] = [];

before(async () => {
  await Promise.all(targets.map(async (target) => {
    const member = await Member.start({ target, flags: serverFlags });
    const rpc = new EtcdRpc(member.endpoint);
    const leases = new Map<string, bigint>();
    sides.push({ label: target.label, member, rpc, marks: new Map(), leases, facts: { ...await factsOf(member, rpc), leaseIds: leases } });
    await rpc.leaseGrant({ ID: fixedLeaseId, TTL: 600n });
  }));
  // Promise.all finishes in any order; the first listed target is the reference.
  sides.sort((a, b) => targets.findIndex((t) => t.label === a.label) - targets.findIndex((t) => t.label === b.label));
});

after(async () => {
  for (const side of sides) side.rpc.close();
  await Promise.all(sides.map((side) => side.member.destroy()));
});

async function factsOf(member: Member, rpc: EtcdRpc): Promise<TargetFacts> {
  const header = (await rpc.status()).header;
  assert.ok(header !== undefined && header.clusterId !== 0n && header.memberId !== 0n, 'status header has ids');
  return { clusterId: header.clusterId, memberId: header.memberId, clientPort: member.clientPort, peerPort: member.peerPort };
}

/** Splits a row like a shell would for the cases used here: spaces, and '...' for empty or spaced args. */
function splitArgs(line: string): string[] {
  const args: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) args.push(m[1] ?? m[2] ?? '');
  return args;
}

function substitute(text: string, marks: Map<string, bigint>, leases: Map<string, bigint>): string {
  const withLeases = text.replace(/\{lease:([A-Z0-9]+)\}/g, (_, name: string) => {
    const id = leases.get(name);
    if (id === undefined) throw new Error(`lease {lease:${name}} used before it was granted`);
    return id.toString(16);
  });
  return withLeases.replace(/\{([A-Z0-9]+)([+-]\d+)?\}/g, (_, name: string, delta: string | undefined) => {
    const rev = marks.get(name);
    if (rev === undefined) throw new Error(`mark {${name}} used before it was recorded`);
    return String(rev + BigInt(delta ?? '0'));
  });
}

async function runRow(side: Side, r: Row): Promise<{ raw: CtlResult; norm: Normalised }> {
  const args = splitArgs(substitute(r.line, side.marks, side.leases));
  const stdin = r.stdin === undefined ? undefined : substitute(r.stdin, side.marks, side.leases);
  const raw = await side.member.etcdctl(args, stdin === undefined ? {} : { stdin });
  if (r.lease !== undefined) side.leases.set(r.lease, grantedLeaseId(raw.stdout));
  if (r.mark !== undefined) {
    const header = (await side.rpc.range({ key: Buffer.from('any') })).header;
    side.marks.set(r.mark, header?.revision ?? -1n);
  }
  return { raw, norm: normalise(raw, { args, facts: side.facts }) };
}

/** The id in `lease grant`'s output: simple (hex), json or fields (decimal). */
function grantedLeaseId(stdout: string): bigint {
  const hex = /^lease ([0-9a-f]{16}) granted/.exec(stdout)?.[1];
  if (hex !== undefined) return BigInt(`0x${hex}`);
  const dec = /"ID"(?::| : )(\d+)/.exec(stdout)?.[1];
  if (dec !== undefined) return BigInt(dec);
  throw new Error(`no lease id in: ${stdout}`);
}

function expectationProblem(r: Row, raw: CtlResult): string | undefined {
  const text = raw.stdout + raw.stderr;
  if (r.ok !== undefined && (raw.code !== 0 || !r.ok.test(raw.stdout))) return `expected exit 0 and stdout ~ ${r.ok}`;
  if (r.err !== undefined && (raw.code === 0 || !r.err.test(text))) return `expected failure with output ~ ${r.err}`;
  return undefined;
}

function show(label: string, n: Normalised): string {
  return `  [${label}] exit ${n.code}\n  stdout: ${JSON.stringify(n.stdout)}\n  stderr: ${JSON.stringify(n.stderr)}`;
}

/** Runs the rows in order on all targets (in parallel per row) and fails once, listing every problem. */
function runScript(rows: readonly Row[]): Promise<void> {
  return withLogsOnFailure(sides.map((side) => side.member), () => runRows(rows));
}

async function runRows(rows: readonly Row[]): Promise<void> {
  assert.ok(sides.length >= 1, 'targets started');
  const problems: string[] = [];
  for (const r of rows) {
    const results = await Promise.all(sides.map((side) => runRow(side, r)));
    const describe = `$ etcdctl ${r.line}${r.stdin === undefined ? '' : `  <<< ${JSON.stringify(r.stdin)}`}`;
    results.forEach((res, i) => {
      const problem = expectationProblem(r, res.raw);
      const label = sides[i]?.label ?? '?';
      if (problem !== undefined) problems.push(`${describe}\n  [${label}] ${problem}\n${show(label, res.norm)}`);
    });
    const transcript = process.env['E2E_TRANSCRIPT'];
    if (transcript !== undefined) {
      appendFileSync(transcript, `${describe}\n${results.map((res, i) => show(sides[i]?.label ?? '?', res.norm)).join('\n')}\n\n`);
    }
    const [reference, ...others] = results;
    others.forEach((res, i) => {
      if (reference === undefined || JSON.stringify(res.norm) === JSON.stringify(reference.norm)) return;
      problems.push(`${describe}\n  outputs differ:\n${show(sides[0]?.label ?? '?', reference.norm)}\n` +
        show(sides[i + 1]?.label ?? '?', res.norm));
    });
  }
  if (problems.length > 0) assert.fail(`${problems.length} problem(s):\n\n${problems.join('\n\n')}`);
}

test('cluster commands on an empty store: endpoint status/health, member list, all formats', () => runScript(cluster));
test('put: --prev-kv, --lease, --ignore-value, --ignore-lease, errors', () => runScript(puts));
test('history for reads', () => runScript(history));
test('get: ranges, prefix, from-key, limit, rev, sort, keys-only, print-value-only, consistency', () => runScript(gets));
test('del: key, range, prefix, from-key, prev-kv', () => runScript(deletes));
test('txn: compares on value/version/create/mod with = > < !=, success/failure ops, limits', () => runScript(txns));
test('compaction, compacted and future revisions; lease revoke; cluster commands after writes', () => runScript(compaction));
test('lease grant/timetolive [--keys]/list/keep-alive --once/revoke, all formats, errors', () => runScript(leases));

// ----------------------------------------------------------------------- raw gRPC, same comparison

/** A response or gRPC failure as plain JSON: Buffers as text, bigints as strings, ids and ports replaced. */
function plain(value: unknown, facts: TargetFacts): string {
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v !== null && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') {
      return `bytes:${Buffer.from((v as { data: number[] }).data).toString('utf8')}`;
    }
    return v;
  });
  return replaceIdsAndPorts(json, facts);
}

async function outcome(call: () => Promise<unknown>, facts: TargetFacts): Promise<string> {
  try {
    return `ok ${plain(await call(), facts)}`;
  } catch (e) {
    if (isServiceError(e)) return `error code=${e.code} details=${JSON.stringify(e.details)}`;
    throw e;
  }
}

type RpcRow = [name: string, call: (rpc: EtcdRpc) => Promise<unknown>, expect?: RegExp];
const b = (s: string): Buffer => Buffer.from(s);
type Union = Compare['targetUnion'];
const cmp = (key: string, target: Target, result: Result, union: Union, rangeEnd = ''): Compare =>
  ({ key: b(key), target, result, targetUnion: union, rangeEnd: b(rangeEnd) });
const ver = (value: bigint): Union => ({ $case: 'version', value });
const lease = (value: bigint): Union => ({ $case: 'lease', value });
const val = (value: string): Union => ({ $case: 'value', value: b(value) });
const putOp = (key: string, value: string, extra: Partial<PutRequest> = {}): RequestOp =>
  ({ request: { $case: 'requestPut', value: PutRequest.fromPartial({ key: b(key), value: b(value), ...extra }) } });
const rangeOp = (key: string, extra: Partial<RangeRequest> = {}): RequestOp =>
  ({ request: { $case: 'requestRange', value: RangeRequest.fromPartial({ key: b(key), ...extra }) } });
const delOp = (key: string, rangeEnd: string, prevKv = false): RequestOp =>
  ({ request: { $case: 'requestDeleteRange', value: DeleteRangeRequest.fromPartial({ key: b(key), rangeEnd: b(rangeEnd), prevKv }) } });
const txnOp = (txn: Partial<TxnRequest>): RequestOp => ({ request: { $case: 'requestTxn', value: TxnRequest.fromPartial(txn) } });
/** All keys under r/ */
const rs = { key: b('r/'), rangeEnd: b('r0') };
const modOf = async (c: EtcdRpc, key: string): Promise<bigint> => (await c.range({ key: b(key) })).kvs[0]?.modRevision ?? 0n;
const createOf = async (c: EtcdRpc, key: string): Promise<bigint> => (await c.range({ key: b(key) })).kvs[0]?.createRevision ?? 0n;
const currentRev = async (c: EtcdRpc): Promise<bigint> => (await c.range({ key: b('x') })).header?.revision ?? 0n;

const rpcRows: RpcRow[] = [
  ['setup', (c) => c.txn({ success: ['r/a', 'r/b', 'r/c', 'r/d'].map((k, i) => putOp(k, String(9 - i))) })],
  ['setup lease', (c) => c.leaseGrant({ ID: 0x51n, TTL: 600n })],
  ['update r/b with lease', (c) => c.put({ key: b('r/b'), value: b('bb'), lease: 0x51n, prevKv: true }), /prevKv/],
  ['count_only ignores limit', (c) => c.range({ ...rs, countOnly: true, limit: 1n }), /"count":"4"/],
  ['min_mod_revision', async (c) => c.range({ ...rs, minModRevision: await modOf(c, 'r/b') })],
  ['max_mod_revision', async (c) => c.range({ ...rs, maxModRevision: (await modOf(c, 'r/b')) - 1n })],
  ['min_create_revision', async (c) => c.range({ ...rs, minCreateRevision: await createOf(c, 'r/a') })],
  ['max_create_revision with limit', async (c) => c.range({ ...rs, maxCreateRevision: await createOf(c, 'r/a'), limit: 1n })],
  // Sorts only over distinct values: etcd's sort is not stable, ties would have no single right order.
  ['min/max mod, sort by value, keys only', async (c) => c.range({ ...rs, minModRevision: 2n,
    maxModRevision: await modOf(c, 'r/b'), sortTarget: SortBy.VALUE, sortOrder: Order.DESCEND, limit: 3n, keysOnly: true })],
  ['sort target without order sorts ascending', (c) => c.range({ ...rs, sortTarget: SortBy.VALUE })],
  ['sort order without target sorts by key', (c) => c.range({ ...rs, sortOrder: Order.DESCEND })],
  ['count_only with revision', async (c) => c.range({ ...rs, countOnly: true, revision: (await modOf(c, 'r/b')) - 1n }), /"count":"4"/],
  ['lease compare equal', (c) => c.txn({ compare: [cmp('r/b', Target.LEASE, Result.EQUAL, lease(0x51n))],
    success: [rangeOp('r/b')] }), /"succeeded":true/],
  ['lease compare not equal / greater / less', (c) => c.txn({ compare: [cmp('r/a', Target.LEASE, Result.NOT_EQUAL, lease(0x51n)),
    cmp('r/b', Target.LEASE, Result.GREATER, lease(0n)), cmp('r/a', Target.LEASE, Result.LESS, lease(1n))] }), /"succeeded":true/],
  ['compare over a range (all keys must match)', (c) => c.txn({ compare: [cmp('r/', Target.VERSION, Result.GREATER, ver(0n), 'r0')],
    success: [putOp('r/all', 'yes')] }), /"succeeded":true/],
  ['compare over a range, one key fails', (c) => c.txn({ compare: [cmp('r/', Target.VALUE, Result.LESS, val('9'), 'r0')] }),
    /"succeeded":false/],
  ['compare from-key', (c) => c.txn({ compare: [cmp('r/', Target.CREATE, Result.GREATER, { $case: 'createRevision', value: 0n }, '\0')] })],
  ['nested txn', (c) => c.txn({ success: [
    txnOp({ compare: [cmp('r/a', Target.VALUE, Result.EQUAL, val('9'))], success: [putOp('r/n1', '1', { prevKv: true })],
      failure: [delOp('r/a', '')] }),
    rangeOp('r/', { rangeEnd: b('r0'), countOnly: true })] }), /responseTxn/],
  ['nested txn puts the same key as its parent', (c) => c.txn({ success: [putOp('r/x', '1'), txnOp({ success: [putOp('r/x', '2')] })] }),
    /duplicate key/],
  ['then and else may put the same key', (c) => c.txn({ success: [txnOp({ success: [putOp('r/te', 't')], failure: [putOp('r/te', 'e')] })] }),
    /"succeeded":true/],
  ['delete range with prev_kv in txn', (c) => c.txn({ success: [delOp('r/n', 'r/o', true)] })],
  ['put ignore_value on a missing key', (c) => c.put({ key: b('r/missing'), ignoreValue: true }), /key not found/],
  ['put ignore_value with a value', (c) => c.put({ key: b('r/a'), value: b('v'), ignoreValue: true }), /value is provided/],
  ['put ignore_lease with a lease', (c) => c.put({ key: b('r/a'), value: b('v'), ignoreLease: true, lease: 0x51n }), /lease is provided/],
  ['put unknown lease', (c) => c.put({ key: b('r/a'), value: b('v'), lease: 0x52n }), /requested lease not found/],
  ['txn put unknown lease', (c) => c.txn({ success: [putOp('r/a', 'v', { lease: 0x52n })] }), /requested lease not found/],
  ['delete range empty key', (c) => c.deleteRange({ key: b('') }), /key is not provided/],
  ['compare empty key', (c) => c.txn({ compare: [cmp('', Target.VERSION, Result.EQUAL, ver(0n))] }), /key is not provided/],
  ['revoke removes the lease and its key', (c) => c.leaseRevoke({ ID: 0x51n })],
  ['r/ after revoke', (c) => c.range(rs)],
  ['lease compare after revoke', (c) => c.txn({ compare: [cmp('r/b', Target.LEASE, Result.EQUAL, lease(0n))] }), /"succeeded":true/],
  ['compact physical', async (c) => c.compact({ revision: await currentRev(c), physical: true })],
  ['range at compacted revision - 1', async (c) => c.range({ key: b('r/a'), revision: (await currentRev(c)) - 1n }), /code=11 .*compacted/],
  ['range at future revision', async (c) => c.range({ key: b('r/a'), revision: (await currentRev(c)) + 1n }), /code=11 .*future revision/],
];

test('raw gRPC: request fields etcdctl 3.4 cannot send, compared the same way', () => withLogsOnFailure(sides.map((side) => side.member), async () => {
  const problems: string[] = [];
  for (const [name, call, expect] of rpcRows) {
    const results = await Promise.all(sides.map((side) => outcome(() => call(side.rpc), side.facts)));
    const transcript = process.env['E2E_TRANSCRIPT'];
    if (transcript !== undefined) appendFileSync(transcript, `# ${name}\n${results.map((r, i) => `  [${sides[i]?.label}] ${r}`).join('\n')}\n\n`);
    results.forEach((res, i) => {
      if (expect !== undefined && !expect.test(res)) problems.push(`${name}: [${sides[i]?.label}] ${res}\n  expected ~ ${expect}`);
      if (res !== results[0]) problems.push(`${name}: outputs differ\n  [${sides[0]?.label}] ${results[0]}\n  [${sides[i]?.label}] ${res}`);
    });
  }
  if (problems.length > 0) assert.fail(`${problems.length} problem(s):\n\n${problems.join('\n\n')}`);
}));
