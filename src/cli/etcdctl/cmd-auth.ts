/**
 * auth enable|disable, user ... and role ...: the Auth service's management calls with etcdctl 3.4's texts.
 * Each response is shown through `show`, which renders the five formats the way etcdctl's printers do for
 * these responses (simple texts of their own, json/protobuf of the gRPC response, fields of the header).
 */
import type { EtcdClient } from '../../client/index.js';
import { isClientError, prefixRangeEnd } from '../../client/index.js';
import { Permission_Type, permission_TypeToJSON, type Permission } from '../../gen/etcd/auth/authpb/auth.js';
import {
  AuthRoleGetResponse,
  AuthRoleListResponse,
  AuthUserGetResponse,
  AuthUserListResponse,
  ResponseHeader,
} from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CommandSpec } from './command.js';
import type { FlagSpec } from './flags.js';
import { goQuote } from './go-format.js';
import { array, bytes, headerJson, int, object, strings, type Field } from './go-json.js';
import { exitCodeFor, goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);
const noDeadlineMs = 24 * 60 * 60 * 1000;

/** One response in each output format; `fields` undefined means etcdctl has no fields rendering for it. */
interface Shown {
  readonly header: ResponseHeader | undefined;
  readonly simple: string;
  readonly json?: readonly Field[];
  readonly protobuf?: Uint8Array;
  readonly fields?: readonly string[] | undefined;
}

function show(ctx: Context, out: Shown): void {
  const format = ctx.printer().format;
  const h = out.header;
  switch (format) {
    case 'simple':
      ctx.io.stdout(out.simple);
      return;
    case 'json':
      ctx.io.stdout(`${object([['header', headerJson(h)], ...(out.json ?? [])])}\n`);
      return;
    case 'protobuf':
      ctx.io.stdout(out.protobuf ?? ResponseHeaderOnly.encode(h));
      return;
    case 'fields':
      if (out.fields === undefined) break;
      ctx.io.stdout(
        [`"ClusterID" : ${h?.clusterId ?? 0n}`, `"MemberID" : ${h?.memberId ?? 0n}`, `"Revision" : ${h?.revision ?? 0n}`, `"RaftTerm" : ${h?.raftTerm ?? 0n}`, ...out.fields]
          .map((l) => `${l}\n`)
          .join(''),
      );
      return;
    default:
      break;
  }
  throw new ExitError(Exit.BadFeature, `${format} not supported as output format`);
}

/** A response holding only a header encodes as its field 1, the same bytes for every such type. */
const ResponseHeaderOnly = {
  encode: (h: ResponseHeader | undefined): Uint8Array => AuthUserGetResponse.encode({ header: h, roles: [] }).finish(),
};

async function must<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    throw new ExitError(exitCodeFor(err, Exit.Error), goErrorText(err));
  }
}

function client(ctx: Context): EtcdClient {
  ctx.configure();
  return ctx.client();
}

const wait = { timeoutMs: noDeadlineMs };

// --- auth ---

async function runAuthEnable(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('auth enable command does not accept any arguments');
  const c = client(ctx);
  const options = { timeoutMs: ctx.commandTimeoutMs() };
  for (;;) {
    try {
      await c.auth.authEnable(options);
      break;
    } catch (err) {
      if (!isClientError(err, 'RootRoleNotExist')) throw new ExitError(Exit.Error, goErrorText(err));
      // etcdctl creates the root role and grants it to root, then tries again.
      await must(c.auth.roleAdd('root', options));
      await must(c.auth.userGrantRole({ user: 'root', role: 'root' }, options));
    }
  }
  ctx.io.stdout('Authentication Enabled\n');
}

async function runAuthDisable(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('auth disable command does not accept any arguments');
  const c = client(ctx);
  await must(c.auth.authDisable({ timeoutMs: ctx.commandTimeoutMs() }));
  ctx.io.stdout('Authentication Disabled\n');
}

// --- user ---

/** speakeasy's prompt on a terminal; with stdin not a terminal its stty calls fail as shown. */
function askPassword(ctx: Context, prompt: string): string {
  ctx.io.stdout(prompt);
  const noTty = "stty: 'standard input': Inappropriate ioctl for device\n";
  ctx.io.stderr(noTty);
  const { line } = ctx.io.readLine();
  ctx.io.stderr(noTty);
  ctx.io.stdout('\n');
  return line.toString('utf8').replace(/\r?\n$/, '');
}

function readPasswordInteractive(ctx: Context, name: string): string {
  const first = askPassword(ctx, `Password of ${name}: `);
  if (first.length === 0) throw bad('empty password');
  const second = askPassword(ctx, `Type password of ${name} again for confirmation: `);
  if (first !== second) throw bad('given passwords are different');
  return first;
}

/** fmt.Scanf("%s"): the first word of the first line of stdin. */
function scanWord(ctx: Context): string {
  const { line } = ctx.io.readLine();
  const text = line.toString('utf8').replace(/^[ \t]+/, '');
  return /^[^\s]*/.exec(text)?.[0] ?? '';
}

async function runUserAdd(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('user add command requires user name as its argument');
  const arg = ctx.args[0] ?? '';
  let user = arg;
  let password = '';
  const noPassword = ctx.flags.bool('no-password');
  if (!noPassword) {
    const fromFlag = ctx.flags.string('new-user-password');
    const colon = arg.indexOf(':');
    if (fromFlag !== '') password = fromFlag;
    else if (colon < 0) password = ctx.flags.bool('interactive') ? readPasswordInteractive(ctx, arg) : scanWord(ctx);
    else {
      user = arg.slice(0, colon);
      password = arg.slice(colon + 1);
      if (user.length === 0) throw bad('empty user name is not allowed');
    }
  }
  const resp = await must(client(ctx).auth.userAdd({ name: user, password, noPassword }, wait));
  show(ctx, { header: resp.header, simple: `User ${user} created\n`, fields: [] });
}

async function runUserDelete(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('user delete command requires user name as its argument');
  const name = ctx.args[0] ?? '';
  const resp = await must(client(ctx).auth.userDelete(name, wait));
  show(ctx, { header: resp.header, simple: `User ${name} deleted\n`, fields: [] });
}

async function runUserGet(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('user get command requires user name as its argument');
  const name = ctx.args[0] ?? '';
  const c = client(ctx);
  const resp = await must(c.auth.userGet(name, wait));
  if (ctx.flags.bool('detail')) {
    ctx.io.stdout(`User: ${name}\n`);
    for (const role of resp.roles) {
      ctx.io.stdout('\n');
      showRole(ctx, role, await must(c.auth.roleGet(role, wait)));
    }
    return;
  }
  show(ctx, {
    header: resp.header,
    simple: `User: ${name}\nRoles:${resp.roles.map((r) => ` ${r}`).join('')}\n`,
    json: [['roles', strings(resp.roles)]],
    protobuf: AuthUserGetResponse.encode(resp).finish(),
  });
}

async function runUserList(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('user list command requires no arguments');
  const resp = await must(client(ctx).auth.userList(wait));
  show(ctx, {
    header: resp.header,
    simple: resp.users.map((u) => `${u}\n`).join(''),
    json: [['users', strings(resp.users)]],
    protobuf: AuthUserListResponse.encode(resp).finish(),
  });
}

async function runUserPasswd(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('user passwd command requires user name as its argument');
  const name = ctx.args[0] ?? '';
  const password = ctx.flags.bool('interactive') ? readPasswordInteractive(ctx, name) : scanWord(ctx);
  const resp = await must(client(ctx).auth.userChangePassword({ name, password }, wait));
  show(ctx, { header: resp.header, simple: 'Password updated\n', fields: [] });
}

async function runUserGrantRole(ctx: Context): Promise<void> {
  if (ctx.args.length !== 2) throw bad('user grant command requires user name and role name as its argument');
  const [user = '', role = ''] = ctx.args;
  const resp = await must(client(ctx).auth.userGrantRole({ user, role }, wait));
  show(ctx, { header: resp.header, simple: `Role ${role} is granted to user ${user}\n`, fields: [] });
}

async function runUserRevokeRole(ctx: Context): Promise<void> {
  if (ctx.args.length !== 2) throw bad('user revoke-role requires user name and role name as its argument');
  const [name = '', role = ''] = ctx.args;
  const resp = await must(client(ctx).auth.userRevokeRole({ name, role }, wait));
  show(ctx, { header: resp.header, simple: `Role ${role} is revoked from user ${name}\n`, fields: [] });
}

// --- role ---

function permRangeText(p: Permission): string {
  const key = p.key.toString('utf8');
  if (p.rangeEnd.length === 0) return `\t${key}\n`;
  const end = p.rangeEnd.toString('utf8');
  let text = end !== '\x00' ? `\t[${key}, ${end})` : `\t[${key}, <open ended>`;
  if (Buffer.compare(prefixRangeEnd(p.key), p.rangeEnd) === 0) text += ` (prefix ${key})`;
  return `${text}\n`;
}

function roleGetSimple(role: string, r: AuthRoleGetResponse): string {
  const reads = r.perm.filter((p) => p.permType === Permission_Type.READ || p.permType === Permission_Type.READWRITE);
  const writes = r.perm.filter((p) => p.permType === Permission_Type.WRITE || p.permType === Permission_Type.READWRITE);
  return `Role ${role}\nKV Read:\n${reads.map(permRangeText).join('')}KV Write:\n${writes.map(permRangeText).join('')}`;
}

function permissionJson(p: Permission): string {
  return object([
    ['permType', int(p.permType)],
    ['key', bytes(p.key)],
    ['range_end', bytes(p.rangeEnd)],
  ]);
}

function showRole(ctx: Context, role: string, r: AuthRoleGetResponse): void {
  show(ctx, {
    header: r.header,
    simple: roleGetSimple(role, r),
    json: [['perm', array(r.perm, permissionJson)]],
    protobuf: AuthRoleGetResponse.encode(r).finish(),
    fields: r.perm.flatMap((p) => [`"PermType" :  ${permission_TypeToJSON(p.permType)}`, `"Key" : ${goQuote(p.key)}`, `"RangeEnd" : ${goQuote(p.rangeEnd)}`]),
  });
}

async function runRoleAdd(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('role add command requires role name as its argument');
  const name = ctx.args[0] ?? '';
  const resp = await must(client(ctx).auth.roleAdd(name, wait));
  show(ctx, { header: resp.header, simple: `Role ${name} created\n`, fields: [] });
}

async function runRoleDelete(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('role delete command requires role name as its argument');
  const name = ctx.args[0] ?? '';
  const resp = await must(client(ctx).auth.roleDelete(name, wait));
  show(ctx, { header: resp.header, simple: `Role ${name} deleted\n`, fields: [] });
}

async function runRoleGet(ctx: Context): Promise<void> {
  if (ctx.args.length !== 1) throw bad('role get command requires role name as its argument');
  const name = ctx.args[0] ?? '';
  showRole(ctx, name, await must(client(ctx).auth.roleGet(name, wait)));
}

async function runRoleList(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('role list command requires no arguments');
  const resp = await must(client(ctx).auth.roleList(wait));
  show(ctx, {
    header: resp.header,
    simple: resp.roles.map((r) => `${r}\n`).join(''),
    json: [['roles', strings(resp.roles)]],
    protobuf: AuthRoleListResponse.encode(resp).finish(),
    fields: [`"Roles" :${resp.roles.map((r) => ` ${goQuote(r)}`).join('')}`],
  });
}

/** etcdctl's permRange: the key and range end a permission argument list and --prefix/--from-key name. */
function permRange(ctx: Context, args: readonly string[]): { key: string; rangeEnd: string } {
  const prefix = ctx.flags.bool('prefix');
  const fromKey = ctx.flags.bool('from-key');
  const key = args[0] ?? '';
  if (key.length === 0) {
    if (prefix && fromKey) throw bad('--from-key and --prefix flags are mutually exclusive');
    // The empty key stands for the whole key space, which starts at "\x00".
    return { key: '\x00', rangeEnd: prefix || fromKey ? '\x00' : '' };
  }
  if (args.length === 1) {
    if (prefix && fromKey) throw bad('--from-key and --prefix flags are mutually exclusive');
    if (prefix) return { key, rangeEnd: prefixRangeEnd(Buffer.from(key, 'utf8')).toString('utf8') };
    return { key, rangeEnd: fromKey ? '\x00' : '' };
  }
  if (prefix) throw bad('unexpected endkey argument with --prefix flag');
  if (fromKey) throw bad('unexpected endkey argument with --from-key flag');
  return { key, rangeEnd: args[1] ?? '' };
}

const permTypes: Readonly<Record<string, Permission_Type>> = { READ: Permission_Type.READ, WRITE: Permission_Type.WRITE, READWRITE: Permission_Type.READWRITE };

async function runRoleGrantPermission(ctx: Context): Promise<void> {
  if (ctx.args.length < 3) throw bad('role grant command requires role name, permission type, and key [endkey] as its argument');
  const [name = '', typeText = ''] = ctx.args;
  const permType = permTypes[typeText.toUpperCase()];
  if (permType === undefined) throw bad(`invalid permission type: ${typeText}`);
  const { key, rangeEnd } = permRange(ctx, ctx.args.slice(2));
  const perm: Permission = { permType, key: Buffer.from(key, 'utf8'), rangeEnd: Buffer.from(rangeEnd, 'utf8') };
  const resp = await must(client(ctx).auth.roleGrantPermission({ name, perm }, wait));
  show(ctx, { header: resp.header, simple: `Role ${name} updated\n`, fields: [] });
}

async function runRoleRevokePermission(ctx: Context): Promise<void> {
  if (ctx.args.length < 2) throw bad('role revoke-permission command requires role name and key [endkey] as its argument');
  const [role = '', shownKey = ''] = ctx.args;
  const { key, rangeEnd } = permRange(ctx, ctx.args.slice(1));
  const req = { role, key: Buffer.from(key, 'utf8'), rangeEnd: Buffer.from(rangeEnd, 'utf8') };
  const resp = await must(client(ctx).auth.roleRevokePermission(req, wait));
  let simple: string;
  if (rangeEnd.length === 0) simple = `Permission of key ${shownKey} is revoked from role ${role}\n`;
  else if (rangeEnd !== '\x00') simple = `Permission of range [${shownKey}, ${rangeEnd}) is revoked from role ${role}\n`;
  else simple = `Permission of range [${shownKey}, <open ended> is revoked from role ${role}\n`;
  show(ctx, { header: resp.header, simple, fields: [] });
}

const permFlags = (verb: string): FlagSpec[] => [
  { name: 'prefix', kind: 'bool', defaultValue: 'false', usage: `${verb} a prefix permission` },
  { name: 'from-key', kind: 'bool', defaultValue: 'false', usage: `${verb} a permission of keys that are greater than or equal to the given key using byte compare` },
];

export const authCommands: readonly CommandSpec<Context>[] = [
  {
    name: 'auth',
    use: 'auth <enable or disable>',
    short: 'Enable or disable authentication',
    children: [
      { name: 'enable', use: 'enable', short: 'Enables authentication', run: runAuthEnable },
      { name: 'disable', use: 'disable', short: 'Disables authentication', run: runAuthDisable },
    ],
  },
  {
    name: 'user',
    use: 'user <subcommand>',
    short: 'User related commands',
    children: [
      {
        name: 'add',
        use: 'add <user name or user:password> [options]',
        short: 'Adds a new user',
        flags: [
          { name: 'interactive', kind: 'bool', defaultValue: 'true', usage: 'Read password from stdin instead of interactive terminal' },
          { name: 'new-user-password', kind: 'string', defaultValue: '', usage: 'Supply password from the command line flag' },
          { name: 'no-password', kind: 'bool', defaultValue: 'false', usage: 'Create a user without password (CN based auth only)' },
        ],
        run: runUserAdd,
      },
      { name: 'delete', use: 'delete <user name>', short: 'Deletes a user', run: runUserDelete },
      {
        name: 'get',
        use: 'get <user name> [options]',
        short: 'Gets detailed information of a user',
        flags: [{ name: 'detail', kind: 'bool', defaultValue: 'false', usage: 'Show permissions of roles granted to the user' }],
        run: runUserGet,
      },
      { name: 'list', use: 'list', short: 'Lists all users', run: runUserList },
      {
        name: 'passwd',
        use: 'passwd <user name> [options]',
        short: 'Changes password of user',
        flags: [{ name: 'interactive', kind: 'bool', defaultValue: 'true', usage: 'If true, read password from stdin instead of interactive terminal' }],
        run: runUserPasswd,
      },
      { name: 'grant-role', use: 'grant-role <user name> <role name>', short: 'Grants a role to a user', run: runUserGrantRole },
      { name: 'revoke-role', use: 'revoke-role <user name> <role name>', short: 'Revokes a role from a user', run: runUserRevokeRole },
    ],
  },
  {
    name: 'role',
    use: 'role <subcommand>',
    short: 'Role related commands',
    children: [
      { name: 'add', use: 'add <role name>', short: 'Adds a new role', run: runRoleAdd },
      { name: 'delete', use: 'delete <role name>', short: 'Deletes a role', run: runRoleDelete },
      { name: 'get', use: 'get <role name>', short: 'Gets detailed information of a role', run: runRoleGet },
      { name: 'list', use: 'list', short: 'Lists all roles', run: runRoleList },
      {
        name: 'grant-permission',
        use: 'grant-permission [options] <role name> <permission type> <key> [endkey]',
        short: 'Grants a key to a role',
        flags: permFlags('grant'),
        run: runRoleGrantPermission,
      },
      {
        name: 'revoke-permission',
        use: 'revoke-permission <role name> <key> [endkey]',
        short: 'Revokes a key from a role',
        flags: permFlags('revoke'),
        run: runRoleRevokePermission,
      },
    ],
  },
];
