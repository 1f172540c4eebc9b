/**
 * Authentication and RBAC through the real etcdctl (3.4), against every target (real etcd first, the
 * reference): `auth enable|disable`, `user ...`, `role ...`, then reads, writes, txns and leases as users
 * with and without permission. After the normalisations of normalise.ts, every row's exit code, stdout
 * and stderr must equal the reference's, and each row must show what it claims to show (ok / err).
 *
 * Both servers run with --bcrypt-cost=4 (the minimum) so the many logins stay cheap.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Member, targetsFromEnv, withLogsOnFailure, type CtlResult } from './harness.js';
import { EtcdRpc } from './grpc-client.js';
import { normalise, type Normalised, type TargetFacts } from './normalise.js';

const serverFlags = ['--bcrypt-cost=4'];

interface Row {
  readonly line: string;
  readonly stdin?: string;
  readonly ok?: RegExp;
  readonly err?: RegExp;
  /** Learn the id of the lease this row grants under this name (for `{lease:NAME}`). */
  readonly lease?: string;
}

const row = (line: string, options: Omit<Row, 'line'> = {}): Row => ({ line, ...options });
const root = '--user=root:rootpw';
const alice = '--user=alice:apw';
const denied = /etcdserver: permission denied/;

const setup: Row[] = [
  row('auth enable', { err: /root user does not exist/ }),
  row('user add root:rootpw --interactive=false', { ok: /^User root created\n$/ }),
  row('user add root:other --interactive=false', { err: /user name already exists/ }),
  row('user get root', { ok: /^User: root\nRoles:/ }),
  row('role add r1', { ok: /^Role r1 created\n$/ }),
  row('role add r1', { err: /role name already exists/ }),
  row('role grant-permission r1 readwrite foo', { ok: /Role r1 updated/ }),
  row('role grant-permission r1 read --prefix pre/', { ok: /Role r1 updated/ }),
  row('role grant-permission r1 write --from-key zz', { ok: /Role r1 updated/ }),
  row('role grant-permission r1 readwrite a c', { ok: /Role r1 updated/ }),
  row('role grant-permission r1 read foo', { ok: /Role r1 updated/ }),
  row('role grant-permission r1 readwrite foo', { ok: /Role r1 updated/ }),
  row('role grant-permission nosuch read x', { err: /role name not found/ }),
  row('role get r1', { ok: /KV Read:/ }),
  row('role revoke-permission r1 zz', { err: /permission is not granted to the role/ }),
  row('role revoke-permission r1 zz --from-key', { ok: /revoked from role r1/ }),
  row('role get r1', { ok: /KV Read:/ }),
  row('role get nosuch', { err: /role name not found/ }),
  row('role add r2', { ok: /Role r2 created/ }),
  row('role list', { ok: /^r1\nr2\n$/ }),
  row('user add alice:apw --interactive=false', { ok: /User alice created/ }),
  row('user add carol --no-password', { ok: /User carol created/ }),
  row('user grant-role alice r1', { ok: /Role r1 is granted to user alice/ }),
  row('user grant-role alice r1', { ok: /Role r1 is granted to user alice/ }),
  row('user grant-role alice nosuch', { err: /role name not found/ }),
  row('user grant-role nobody r1', { err: /user name not found/ }),
  row('user grant-role alice r2', { ok: /granted/ }),
  row('user revoke-role alice r2', { ok: /Role r2 is revoked from user alice/ }),
  row('user revoke-role alice r2', { err: /role is not granted to the user/ }),
  row('user get alice', { ok: /Roles: r1/ }),
  row('user get alice --detail', { ok: /KV Read:/ }),
  row('user get nobody', { err: /user name not found/ }),
  row('user list', { ok: /^alice\ncarol\nroot\n$/ }),
  row('user delete nobody', { err: /user name not found/ }),
  row('-w json user list', { ok: /"users":\["alice","carol","root"\]/ }),
  row('-w json role get r1', { ok: /"perm":/ }),
  row('-w json role add r3', { ok: /"header":/ }),
  row('-w json user grant-role alice r3', { ok: /"header":/ }),
  row('-w json user get alice', { ok: /"roles":\["r1","r3"\]/ }),
  row('-w json user revoke-role alice r3', { ok: /"header":/ }),
  row('-w json role delete r3', { ok: /"header":/ }),
  row('-w json user add dave:d --interactive=false', { ok: /"header":/ }),
  row('-w json user delete dave', { ok: /"header":/ }),
  row('put foo before', { ok: /^OK\n$/ }),
  row('auth enable', { ok: /Authentication Enabled/ }),
  row('auth enable', { err: /user name is empty/ }),
];

const asUsers: Row[] = [
  row('get foo', { err: /user name is empty/ }),
  row('put foo x', { err: /user name is empty/ }),
  row(`${root} get foo`, { ok: /^foo\nbefore\n$/ }),
  row(`${alice} put foo bar`, { ok: /^OK\n$/ }),
  row(`${alice} get foo`, { ok: /^foo\nbar\n$/ }),
  row(`${alice} put zed 1`, { err: denied }),
  row(`${alice} put zz1 1`, { err: denied }),
  row(`${root} put pre/a 1`, { ok: /OK/ }),
  row(`${alice} get pre/ --prefix`, { ok: /^pre\/a\n1\n$/ }),
  row(`${alice} get pre --prefix`, { err: denied }),
  row(`${alice} put pre/b 1`, { err: denied }),
  row(`${alice} put b 1`, { ok: /OK/ }),
  row(`${alice} get a c`, { ok: /^b\n1\n$/ }),
  row(`${alice} get a d`, { err: denied }),
  row(`${alice} get a --from-key`, { err: denied }),
  row(`${alice} get '' --prefix`, { err: denied }),
  row(`${alice} del a c`, { ok: /^1\n$/ }),
  row(`${alice} del foo --prev-kv`, { ok: /^1\nfoo\nbar\n$/ }),
  row(`${alice}x get foo`, { err: /authentication failed, invalid user ID or password/ }),
  row('--user nobody:x get foo', { err: /authentication failed, invalid user ID or password/ }),
  row('--user carol:x get foo', { err: /password was given for no password user/ }),
  row(`${alice} user list`, { err: denied }),
  row(`${alice} role list`, { err: denied }),
  row(`${alice} user get alice`, { ok: /Roles: r1/ }),
  row(`${alice} user get root`, { err: denied }),
  row(`${alice} role get r1`, { ok: /KV Read:/ }),
  row(`${alice} role get root`, { err: denied }),
  row(`${alice} user grant-role alice root`, { err: denied }),
  row(`${alice} role grant-permission r1 readwrite --from-key ''`, { err: denied }),
  row(`${alice} user add mallory:m --interactive=false`, { err: denied }),
  row(`${alice} auth disable`, { err: denied }),
  row(`${alice} compaction 1`, { ok: /compacted revision 1/ }),
  row(`${alice} endpoint hashkv`, { err: /auth: permission denied/ }),
  row('endpoint hashkv', { err: /auth: user name is empty/ }),
  row(`${alice} endpoint status`, { ok: /, / }),
  row(`${alice} alarm list`, { ok: /^$/ }),
  row(`${alice} watch secret/ --prefix`, { err: /watch is canceled by the server/ }),
  row(`${alice} watch pre --prefix`, { err: /permission denied/ }),
  row('watch foo', { err: /user name is empty/ }),
  row(`${alice} member list`, { ok: /started/ }),
  row(`${alice} member add m9 --peer-urls=http://127.0.0.1:1`, { err: denied }),
  row(`${alice} member remove 1234`, { err: denied }),
  row(`${alice} member update 1234 --peer-urls=http://127.0.0.1:1`, { err: denied }),
  row(`${alice} defrag`, { err: /auth: permission denied/ }),
  row(`${alice} lease list`, { ok: /^found 0 leases\n$/ }),
  row(`${alice} txn`, { stdin: 'value("foo") = "x"\n\nput foo y\n\nput zed n\n\n', err: denied }),
  row(`${alice} txn`, { stdin: 'value("zed") = "x"\n\nput foo y\n\n\n', err: denied }),
  row(`${alice} txn`, { stdin: 'value("foo") = "x"\n\nput foo y\n\nget foo\n\n', ok: /FAILURE/ }),
  row(`${root} get zed`, { ok: /^$/ }),
  // Lock runs its recipe as the caller: alice may write under b/ (inside [a, c)), not under zed/.
  row(`${alice} lock b echo held`, { ok: /^held\n$/ }),
  row(`${alice} lock zed echo held`, { err: denied }),
];

const leasesAndCleanup: Row[] = [
  row(`${alice} lease grant 600`, { ok: /granted with TTL\(600s\)/, lease: 'L1' }),
  row(`${alice} put foo leased --lease={lease:L1}`, { ok: /OK/ }),
  row(`${alice} lease timetolive {lease:L1} --keys`, { ok: /attached keys\(\[foo\]\)/ }),
  row(`${root} put zed z --lease={lease:L1}`, { ok: /OK/ }),
  row(`${alice} lease revoke {lease:L1}`, { err: denied }),
  row(`${alice} put foo again --lease={lease:L1}`, { err: denied }),
  row(`${root} lease revoke {lease:L1}`, { ok: /revoked/ }),
  row(`${root} user passwd alice --interactive=false`, { stdin: 'apw2\n', ok: /Password updated/ }),
  row(`${alice} get foo`, { err: /authentication failed/ }),
  row('--user alice:apw2 put foo new', { ok: /OK/ }),
  row(`${root} user delete root`, { err: /invalid auth management/ }),
  row(`${root} user revoke-role root root`, { err: /invalid auth management/ }),
  row(`${root} role delete root`, { err: /invalid auth management/ }),
  row(`${root} role delete r1`, { ok: /Role r1 deleted/ }),
  row('--user alice:apw2 get foo', { err: denied }),
  row(`${root} user get alice`, { ok: /^User: alice\nRoles:\s*\n$/ }),
  row(`${root} user delete alice`, { ok: /User alice deleted/ }),
  row('--user alice:apw2 get foo', { err: /authentication failed/ }),
  row(`${root} -w json role list`, { ok: /"roles":\["r2","root"\]/ }),
  row(`${root} -w json put k v`, { ok: /"header":/ }),
  row(`${root} auth disable`, { ok: /Authentication Disabled/ }),
  row('auth disable', { ok: /Authentication Disabled/ }),
  row('get foo', { ok: /^foo\nnew\n$/ }),
  row('user list', { ok: /^carol\nroot\n$/ }),
  row('role list', { ok: /^r2\nroot\n$/ }),
  row('user delete root', { ok: /User root deleted/ }),
  row('role delete root', { ok: /Role root deleted/ }),
];

// ------------------------------------------------------------------------------------------ the runner

interface Side {
  readonly label: string;
  readonly member: Member;
  readonly rpc: EtcdRpc;
  readonly facts: TargetFacts;
  readonly leases: Map<string, bigint>;
}

const targets = targetsFromEnv();
const sides: Side[] = [];

before(async () => {
  await Promise.all(targets.map(async (target) => {
    const member = await Member.start({ target, flags: serverFlags });
    const rpc = new EtcdRpc(member.endpoint);
    const header = (await rpc.status()).header;
    assert.ok(header !== undefined, 'status header');
    const leases = new Map<string, bigint>();
    sides.push({
      label: target.label, member, rpc, leases,
      facts: { clusterId: header.clusterId, memberId: header.memberId, clientPort: member.clientPort, peerPort: member.peerPort, leaseIds: leases },
    });
  }));
  sides.sort((a, b) => targets.findIndex((t) => t.label === a.label) - targets.findIndex((t) => t.label === b.label));
});

after(async () => {
  for (const side of sides) side.rpc.close();
  await Promise.all(sides.map((side) => side.member.destroy()));
});

function splitArgs(line: string): string[] {
  const args: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) args.push(m[1] ?? m[2] ?? '');
  return args;
}

function substitute(text: string, leases: Map<string, bigint>): string {
  return text.replace(/\{lease:([A-Z0-9]+)\}/g, (_, name: string) => {
    const id = leases.get(name);
    if (id === undefined) throw new Error(`lease {lease:${name}} used before it was granted`);
    return id.toString(16);
  });
}

async function runRow(side: Side, r: Row): Promise<{ raw: CtlResult; norm: Normalised }> {
  const args = splitArgs(substitute(r.line, side.leases));
  const raw = await side.member.etcdctl(args, r.stdin === undefined ? {} : { stdin: r.stdin });
  if (r.lease !== undefined) {
    const hex = /^lease ([0-9a-f]{16}) granted/.exec(raw.stdout)?.[1];
    if (hex === undefined) throw new Error(`no lease id in: ${raw.stdout}${raw.stderr}`);
    side.leases.set(r.lease, BigInt(`0x${hex}`));
  }
  return { raw, norm: normalise(raw, { args, facts: side.facts }) };
}

function show(label: string, n: Normalised): string {
  return `  [${label}] exit ${n.code}\n  stdout: ${JSON.stringify(n.stdout)}\n  stderr: ${JSON.stringify(n.stderr)}`;
}

async function runRows(rows: readonly Row[]): Promise<void> {
  assert.ok(sides.length >= 1, 'targets started');
  const problems: string[] = [];
  for (const r of rows) {
    const results = await Promise.all(sides.map((side) => runRow(side, r)));
    const describe = `$ etcdctl ${r.line}`;
    results.forEach((res, i) => {
      const text = res.raw.stdout + res.raw.stderr;
      const label = sides[i]?.label ?? '?';
      if (r.ok !== undefined && (res.raw.code !== 0 || !r.ok.test(res.raw.stdout))) {
        problems.push(`${describe}\n  [${label}] expected exit 0 and stdout ~ ${r.ok}\n${show(label, res.norm)}`);
      }
      if (r.err !== undefined && (res.raw.code === 0 || !r.err.test(text))) {
        problems.push(`${describe}\n  [${label}] expected failure ~ ${r.err}\n${show(label, res.norm)}`);
      }
    });
    const [reference, ...others] = results;
    others.forEach((res, i) => {
      if (reference === undefined || JSON.stringify(res.norm) === JSON.stringify(reference.norm)) return;
      problems.push(`${describe}\n  outputs differ:\n${show(sides[0]?.label ?? '?', reference.norm)}\n${show(sides[i + 1]?.label ?? '?', res.norm)}`);
    });
  }
  if (problems.length > 0) assert.fail(`${problems.length} problem(s):\n\n${problems.join('\n\n')}`);
}

const runScript = (rows: readonly Row[]): Promise<void> => withLogsOnFailure(sides.map((s) => s.member), () => runRows(rows));

test('auth setup: users, roles, permissions (key, prefix, from-key, range), errors, enable', () => runScript(setup));
test('as users: reads, writes, ranges, txns and admin calls with and without permission', () => runScript(asUsers));
test('leases under auth, password change, root protections, role and user deletion, disable', () => runScript(leasesAndCleanup));
