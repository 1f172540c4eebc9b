/** member, endpoint and version commands. */
import type { EtcdClient } from '../../client/index.js';
import { isClientError } from '../../client/index.js';
import { etcdApiVersion } from '../../base/version.js';
import type { CommandSpec } from './command.js';
import { goDuration, goQuote } from './go-format.js';
import { GoParseError, parseUint64 } from './go-parse.js';
import type { EpHashKV, EpHealth, EpStatus } from './go-json.js';
import { endpointsFromFlags, goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';
import { SimplePrinter } from './printer-simple.js';
import { must } from './cmd-kv.js';

export const apiVersion = etcdApiVersion.split('.').slice(0, 2).join('.');

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);

function memberId(args: readonly string[]): bigint {
  if (args.length !== 1) throw bad('member ID is not provided');
  try {
    return parseUint64(args[0] ?? '', 16);
  } catch (err) {
    if (!(err instanceof GoParseError)) throw err;
    throw bad(`bad member ID arg (${err.message}), expecting ID in Hex`);
  }
}

function peerUrls(ctx: Context): string[] {
  const urls = ctx.flags.string('peer-urls');
  if (urls.length === 0) throw bad('member peer urls not provided');
  return urls.split(',');
}

async function runMemberAdd(ctx: Context): Promise<void> {
  const [name, ...extra] = ctx.args;
  if (name === undefined) throw bad('member name not provided');
  if (extra.length > 0) {
    let message = 'too many arguments';
    for (const a of ctx.args) if (a.toLowerCase().startsWith('http')) message += `, did you mean --peer-urls=${a}`;
    throw bad(message);
  }
  const urls = peerUrls(ctx);
  ctx.configure();
  const timeoutMs = ctx.commandTimeoutMs();
  const resp = await must(ctx.client().cluster.memberAdd({ peerURLs: urls, isLearner: ctx.flags.bool('learner') }, { timeoutMs }));
  const printer = ctx.printer();
  printer.memberAdd(resp);
  if (!(printer instanceof SimplePrinter)) return;
  const newId = resp.member?.ID;
  const conf = resp.members.flatMap((m) => m.peerURLs.map((u) => `${m.ID === newId ? name : m.name}=${u}`));
  ctx.io.stdout('\n');
  ctx.io.stdout(`ETCD_NAME=${goQuote(name)}\n`);
  ctx.io.stdout(`ETCD_INITIAL_CLUSTER=${goQuote(conf.join(','))}\n`);
  ctx.io.stdout(`ETCD_INITIAL_ADVERTISE_PEER_URLS=${goQuote(ctx.flags.string('peer-urls'))}\n`);
  ctx.io.stdout('ETCD_INITIAL_CLUSTER_STATE="existing"\n');
}

async function runMemberRemove(ctx: Context): Promise<void> {
  const id = memberId(ctx.args);
  ctx.configure();
  const resp = await must(ctx.client().cluster.memberRemove({ ID: id }, { timeoutMs: ctx.commandTimeoutMs() }));
  ctx.printer().memberRemove(id, resp);
}

async function runMemberUpdate(ctx: Context): Promise<void> {
  const id = memberId(ctx.args);
  const urls = peerUrls(ctx);
  ctx.configure();
  const resp = await must(ctx.client().cluster.memberUpdate({ ID: id, peerURLs: urls }, { timeoutMs: ctx.commandTimeoutMs() }));
  ctx.printer().memberUpdate(id, resp);
}

async function runMemberPromote(ctx: Context): Promise<void> {
  const id = memberId(ctx.args);
  ctx.configure();
  const resp = await must(ctx.client().cluster.memberPromote({ ID: id }, { timeoutMs: ctx.commandTimeoutMs() }));
  ctx.printer().memberPromote(id, resp);
}

async function runMemberList(ctx: Context): Promise<void> {
  ctx.configure();
  ctx.printer().memberList(await must(ctx.client().cluster.memberList({ timeoutMs: ctx.commandTimeoutMs() })));
}

/** The endpoints an endpoint subcommand visits: --endpoints, or with --cluster every member's client URLs. */
export async function endpointsFromCluster(ctx: Context): Promise<string[]> {
  if (!ctx.flags.bool('cluster')) return [...ctx.flags.stringSlice('endpoints')];
  // etcdctl leaves authentication out here: listing members needs none.
  const client = ctx.client(endpointsFromFlags(ctx.flags), { auth: false });
  try {
    const resp = await client.cluster.memberList({ timeoutMs: ctx.commandTimeoutMs() });
    return resp.members.flatMap((m) => m.clientURLs);
  } catch (err) {
    throw new ExitError(Exit.Error, `failed to fetch endpoints from etcd cluster member list: ${goErrorText(err)}`);
  }
}

async function checkHealth(client: EtcdClient, ep: string, timeoutMs: number): Promise<EpHealth> {
  const start = process.hrtime.bigint();
  let error = '';
  try {
    await client.kv.range({ key: 'health' }, { timeoutMs });
  } catch (err) {
    // Permission denied still proves the request went through consensus.
    if (!isClientError(err, 'PermissionDenied')) error = goErrorText(err);
  }
  const took = goDuration(process.hrtime.bigint() - start);
  return { ep, health: error === '', took, error };
}

async function runEndpointHealth(ctx: Context): Promise<void> {
  ctx.configure();
  const printer = ctx.printer();
  const endpoints = await endpointsFromCluster(ctx);
  const results: EpHealth[] = [];
  await Promise.all(
    endpoints.map(async (ep) => {
      results.push(await checkHealth(ctx.client([ep]), ep, ctx.commandTimeoutMs()));
    }),
  );
  printer.endpointHealth(results);
  if (results.some((h) => h.error !== '')) throw new ExitError(Exit.Error, 'unhealthy cluster');
}

async function runEndpointStatus(ctx: Context): Promise<void> {
  ctx.configure();
  const client = ctx.client();
  const list: EpStatus[] = [];
  let failed = false;
  for (const ep of await endpointsFromCluster(ctx)) {
    try {
      list.push({ ep, resp: await client.maintenance.status({ endpoint: ep, timeoutMs: ctx.commandTimeoutMs() }) });
    } catch (err) {
      failed = true;
      ctx.io.stderr(`Failed to get the status of endpoint ${ep} (${goErrorText(err)})\n`);
    }
  }
  ctx.printer().endpointStatus(list);
  if (failed) throw new ExitError(Exit.Error);
}

async function runEndpointHashKV(ctx: Context): Promise<void> {
  ctx.configure();
  const client = ctx.client();
  const list: EpHashKV[] = [];
  let lastError: unknown;
  for (const ep of await endpointsFromCluster(ctx)) {
    try {
      const resp = await client.maintenance.hashKV({ revision: ctx.flags.int64('rev') }, { endpoint: ep, timeoutMs: ctx.commandTimeoutMs() });
      list.push({ ep, resp });
    } catch (err) {
      lastError = err;
      ctx.io.stderr(`Failed to get the hash of endpoint ${ep} (${goErrorText(err)})\n`);
    }
  }
  ctx.printer().endpointHashKV(list);
  if (lastError !== undefined) throw new ExitError(Exit.Error, goErrorText(lastError));
}

async function runVersion(ctx: Context): Promise<void> {
  ctx.io.stdout(`etcdctl version: ${etcdApiVersion}\nAPI version: ${apiVersion}\n`);
}

export const clusterCommands: readonly CommandSpec<Context>[] = [
  {
    name: 'member',
    use: 'member <subcommand>',
    short: 'Membership related commands',
    children: [
      {
        name: 'add',
        use: 'add <memberName> [options]',
        short: 'Adds a member into the cluster',
        flags: [
          { name: 'peer-urls', kind: 'string', defaultValue: '', usage: 'comma separated peer URLs for the new member.' },
          { name: 'learner', kind: 'bool', defaultValue: 'false', usage: 'indicates if the new member is raft learner' },
        ],
        run: runMemberAdd,
      },
      { name: 'remove', use: 'remove <memberID>', short: 'Removes a member from the cluster', run: runMemberRemove },
      {
        name: 'update',
        use: 'update <memberID> [options]',
        short: 'Updates a member in the cluster',
        flags: [{ name: 'peer-urls', kind: 'string', defaultValue: '', usage: 'comma separated peer URLs for the updated member.' }],
        run: runMemberUpdate,
      },
      {
        name: 'list',
        use: 'list',
        short: 'Lists all members in the cluster',
        long: 'When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\nThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n',
        run: runMemberList,
      },
      {
        name: 'promote',
        use: 'promote <memberID>',
        short: 'Promotes a non-voting member in the cluster',
        long: 'Promotes a non-voting learner member to a voting one in the cluster.\n',
        run: runMemberPromote,
      },
    ],
  },
  {
    name: 'endpoint',
    use: 'endpoint <subcommand>',
    short: 'Endpoint related commands',
    persistentFlags: [{ name: 'cluster', kind: 'bool', defaultValue: 'false', usage: 'use all endpoints from the cluster member list' }],
    children: [
      { name: 'health', use: 'health', short: 'Checks the healthiness of endpoints specified in `--endpoints` flag', run: runEndpointHealth },
      {
        name: 'status',
        use: 'status',
        short: 'Prints out the status of endpoints specified in `--endpoints` flag',
        long: 'When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.\n',
        run: runEndpointStatus,
      },
      {
        name: 'hashkv',
        use: 'hashkv',
        short: 'Prints the KV history hash for each endpoint in --endpoints',
        persistentFlags: [{ name: 'rev', kind: 'int64', defaultValue: '0', usage: 'maximum revision to hash (default: all revisions)' }],
        run: runEndpointHashKV,
      },
    ],
  },
  { name: 'version', use: 'version', short: 'Prints the version of etcdctl', run: runVersion },
];
