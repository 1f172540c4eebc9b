/** alarm list|disarm and defrag. */
import { AlarmRequest_AlarmAction, AlarmType, type AlarmResponse } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CommandSpec } from './command.js';
import { endpointsFromCluster } from './cmd-cluster.js';
import { must } from './cmd-kv.js';
import { goErrorText, type Context } from './global.js';
import { Exit, ExitError } from './io.js';

const bad = (message: string): ExitError => new ExitError(Exit.BadArgs, message);

async function runAlarmList(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('alarm list command accepts no arguments');
  ctx.configure();
  const call = ctx.client().maintenance.alarm({ action: AlarmRequest_AlarmAction.GET }, { timeoutMs: ctx.commandTimeoutMs() });
  ctx.printer().alarm(await must(call));
}

/** clientv3's AlarmDisarm with an empty member: lists the alarms, then deactivates each one. */
async function runAlarmDisarm(ctx: Context): Promise<void> {
  if (ctx.args.length !== 0) throw bad('alarm disarm command accepts no arguments');
  ctx.configure();
  const client = ctx.client();
  const deadline = Date.now() + ctx.commandTimeoutMs();
  const left = (): number => Math.max(1, deadline - Date.now());
  const list = await must(client.maintenance.alarm({ action: AlarmRequest_AlarmAction.GET, alarm: AlarmType.NONE }, { timeoutMs: left() }));
  // The combined response has no header: clientv3 builds it from the deactivations' alarms alone.
  const resp: AlarmResponse = { header: undefined, alarms: [] };
  for (const a of list.alarms) {
    const req = { action: AlarmRequest_AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm };
    resp.alarms.push(...(await must(client.maintenance.alarm(req, { timeoutMs: left() }))).alarms);
  }
  ctx.printer().alarm(resp);
}

async function runDefrag(ctx: Context): Promise<void> {
  if (ctx.flags.string('data-dir') !== '') {
    throw new ExitError(Exit.BadFeature, 'defrag --data-dir is not supported by etcdctl-ts (use etcdutl-ts on a stopped member)');
  }
  ctx.configure();
  const client = ctx.client();
  let failures = 0;
  for (const ep of await endpointsFromCluster(ctx)) {
    try {
      await client.maintenance.defragment({ endpoint: ep, timeoutMs: ctx.commandTimeoutMs() });
      ctx.io.stdout(`Finished defragmenting etcd member[${ep}]\n`);
    } catch (err) {
      ctx.io.stderr(`Failed to defragment etcd member[${ep}] (${goErrorText(err)})\n`);
      failures++;
    }
  }
  if (failures !== 0) throw new ExitError(Exit.Error);
}

export const alarmCommand: CommandSpec<Context> = {
  name: 'alarm',
  use: 'alarm <subcommand>',
  short: 'Alarm related commands',
  children: [
    { name: 'disarm', use: 'disarm', short: 'Disarms all alarms', run: runAlarmDisarm },
    { name: 'list', use: 'list', short: 'Lists all alarms', run: runAlarmList },
  ],
};

export const defragCommand: CommandSpec<Context> = {
  name: 'defrag',
  use: 'defrag',
  short: 'Defragments the storage of the etcd members with given endpoints',
  persistentFlags: [{ name: 'cluster', kind: 'bool', defaultValue: 'false', usage: 'use all endpoints from the cluster member list' }],
  flags: [{ name: 'data-dir', kind: 'string', defaultValue: '', usage: 'Optional. If present, defragments a data directory not in use by etcd.' }],
  run: runDefrag,
};
