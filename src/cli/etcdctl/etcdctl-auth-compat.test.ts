/**
 * auth, user and role of etcdctl-ts against the real etcdctl 3.4, each against its twin real etcd (or, with
 * ETCDCTL_COMPAT_SERVER=ours, etcdctl-ts against etcd-ts).
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { haveRealEtcd } from '../../client/testing-real-etcd.js';
import { compareAll, startTwins, type Step, type Twins } from './compat-harness.js';

const skip = haveRealEtcd() ? false : 'the real etcd and etcdctl (/usr/bin/etcd, /usr/bin/etcdctl) are not installed';
const formats = ['simple', 'json', 'fields', 'protobuf', 'table'] as const;

/** ETCDCTL_COMPAT_SERVER=ours puts etcdctl-ts against etcd-ts (bin/etcd-ts) instead of a second real etcd. */
const oursBinary = process.env['ETCDCTL_COMPAT_SERVER'] === 'ours' ? fileURLToPath(new URL('../../../../bin/etcd-ts', import.meta.url)) : undefined;

let twins: Twins;

before(async () => {
  if (skip === false) twins = await startTwins(oursBinary !== undefined ? { oursBinary } : {});
});

after(async () => {
  if (skip === false) await Promise.all([twins.real.stop(), twins.ours.stop()]);
});

async function expectSame(steps: readonly Step[]): Promise<void> {
  const failures = await compareAll(twins, steps);
  assert.equal(failures.length, 0, `${failures.length} of ${steps.length} commands differ:\n${failures.join('\n')}`);
}

const firstLine = (text: string): string => text.split('\n')[0] ?? '';

test('user and role: add, get, list, grant and revoke in every format, passwords from stdin, errors', { skip }, async () => {
  await expectSame([
    { args: ['user', 'add', 'u1'], stdin: 'pw1\npw1\n' },
    { args: ['user', 'add', 'u2'], stdin: 'pw1\nother\n' },
    { args: ['user', 'add', 'u2'], stdin: '\n' },
    { args: ['user', 'add', 'u2', '--interactive=false'], stdin: 'pw2 ignored\n' },
    { args: ['user', 'add', 'u3', '--new-user-password', 'pw3', '-w', 'json'] },
    { args: ['user', 'add', 'u4:pw4', '-w', 'fields'] },
    { args: ['user', 'add', 'u5', '--no-password', '-w', 'protobuf'] },
    { args: ['user', 'add', ':pw'] },
    { args: ['user', 'add', 'u1:again'] },
    { args: ['user', 'add'] },
    ...formats.map((f) => ({ args: ['role', 'add', `r-${f}`, '-w', f] })),
    { args: ['role', 'add', 'r-simple'] },
    { args: ['role', 'grant-permission', 'r-simple', 'readwrite', 'k1', 'k9'] },
    { args: ['role', 'grant-permission', 'r-simple', 'read', '--prefix', 'p/', '-w', 'json'] },
    { args: ['role', 'grant-permission', 'r-simple', 'write', '--from-key', 'f'] },
    { args: ['role', 'grant-permission', 'r-simple', 'READ', 'single'] },
    { args: ['role', 'grant-permission', 'r-simple', 'read', '', '--prefix'] },
    { args: ['role', 'grant-permission', 'r-simple', 'bogus', 'k'] },
    { args: ['role', 'grant-permission', 'r-simple', 'read'] },
    { args: ['role', 'grant-permission', 'r-simple', 'read', 'a', 'b', '--prefix'] },
    { args: ['role', 'grant-permission', 'r-simple', 'read', 'a', '--prefix', '--from-key'] },
    ...formats.map((f) => ({ args: ['role', 'get', 'r-simple', '-w', f] })),
    ...formats.map((f) => ({ args: ['role', 'list', '-w', f] })),
    ...formats.map((f) => ({ args: ['user', 'grant-role', 'u1', `r-${f}`, '-w', f] })),
    ...formats.map((f) => ({ args: ['user', 'get', 'u1', '-w', f] })),
    { args: ['user', 'get', 'u1', '--detail'] },
    { args: ['user', 'get', 'u1', '--detail', '-w', 'json'] },
    ...formats.map((f) => ({ args: ['user', 'list', '-w', f] })),
    { args: ['user', 'passwd', 'u1', '--interactive=false', '-w', 'json'], stdin: 'newpw\n' },
    { args: ['user', 'passwd', 'u1'], stdin: 'a\na\n' },
    ...formats.map((f) => ({ args: ['role', 'revoke-permission', 'r-simple', 'k1', 'k9', '-w', f] })),
    { args: ['role', 'revoke-permission', 'r-simple', '--prefix', 'p/'] },
    { args: ['role', 'revoke-permission', 'r-simple', '--from-key', 'f'] },
    { args: ['role', 'revoke-permission', 'r-simple', 'single'] },
    { args: ['role', 'revoke-permission', 'r-simple', 'nothing'] },
    ...formats.map((f) => ({ args: ['user', 'revoke-role', 'u1', `r-${f}`, '-w', f] })),
    { args: ['user', 'revoke-role', 'u1', 'r-simple'] },
    { args: ['user', 'get', 'nobody'] },
    ...formats.map((f) => ({ args: ['role', 'delete', `r-${f}`, '-w', f] })),
    ...['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => ({ args: ['user', 'delete', u] })),
    { args: ['user', 'delete', 'u1'] },
    { args: ['role', 'delete', 'r-simple'] },
    ...[['user'], ['user', 'add'], ['user', 'get'], ['user', 'passwd'], ['role'], ['role', 'grant-permission'], ['role', 'revoke-permission'], ['auth']].map(
      (p) => ({ args: [...p, '--help'], endpoints: false as const }),
    ),
  ]);
});

test('auth enable and disable, with and without a root user', { skip }, async () => {
  await expectSame([
    { args: ['auth', 'enable'] },
    { args: ['auth', 'enable', 'x'] },
    { args: ['user', 'add', 'root:rootpw'] },
    { args: ['auth', 'enable'] },
    { args: ['get', 'k'] },
    { args: ['--user', 'root:rootpw', 'role', 'list'] },
    { args: ['--user', 'root:wrong', 'user', 'list'] },
    { args: ['--user', 'root:rootpw', 'auth', 'disable'] },
    { args: ['auth', 'disable'] },
    { args: ['role', 'get', 'root', '-w', 'fields'], normalize: firstLine },
  ]);
});
