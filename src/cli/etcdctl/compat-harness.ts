/**
 * Test support for comparing etcdctl-ts with the real etcdctl 3.4. Two real etcd members are started with
 * the same advertised URLs, so they have the same member and cluster ids; each step runs the real etcdctl
 * against one and etcdctl-ts (in-process) against the other, so both see the same state at every step and
 * their outputs can be compared byte for byte.
 */
import { spawn } from 'node:child_process';
import { RealEtcd, etcdctlBinary, freePort } from '../../client/testing-real-etcd.js';
import { BufferIo } from './io.js';
import { runEtcdctl } from './run.js';

export interface Step {
  /** Arguments; {EP} is the server's endpoint, {DEAD} a port nobody listens on, {NEW} the member added last, {PEER} the member's peer URL. */
  readonly args: readonly string[];
  readonly stdin?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** --endpoints is prepended with this value ({EP} unless given); false leaves it out. */
  readonly endpoints?: string | false;
  /** Output that legitimately differs (durations) is normalised before comparing. */
  readonly normalize?: (text: string) => string;
  /**
   * Runs both CLIs against the same (real-etcdctl side) server: for reads of state the twins may not share,
   * such as the database file size.
   */
  readonly sameServer?: boolean;
  /** Runs after both commands, before their outputs are compared (to learn ids the step created). */
  readonly afterRun?: () => Promise<void>;
}

export interface Outcome {
  readonly code: number;
  readonly out: Buffer;
  readonly err: Buffer;
}

export interface Twins {
  readonly real: RealEtcd;
  readonly ours: RealEtcd;
  readonly deadPort: number;
  /** Member ids added by `member add` steps, per side, for {NEW}. */
  newMember: { real: string; ours: string };
  /**
   * Per-side values for {NAME} placeholders, such as lease ids (each server makes its own). In our side's
   * output each value (and, for a hex id, its decimal form) is replaced by the real side's before comparing.
   */
  vars: { real: Record<string, string>; ours: Record<string, string> };
}

/** `oursBinary` runs etcdctl-ts's twin on another server binary (bin/etcd-ts) instead of a second real etcd. */
export async function startTwins(options: { oursBinary?: string } = {}): Promise<Twins> {
  const real = await RealEtcd.start();
  const advertised = {
    advertiseClientUrl: `http://${real.endpoint}`,
    advertisePeerUrl: real.peerUrl,
    ...(options.oursBinary !== undefined ? { binary: options.oursBinary } : {}),
  };
  const ours = await RealEtcd.start(advertised).catch(async (err: unknown) => {
    await real.stop();
    throw err;
  });
  return { real, ours, deadPort: await freePort(), newMember: { real: '0', ours: '0' }, vars: { real: {}, ours: {} } };
}

function expand(step: Step, side: { endpoint: string; twins: Twins; newMember: string; vars: Record<string, string> }): string[] {
  const { endpoint, twins, newMember, vars } = side;
  const subst = (s: string): string =>
    Object.entries(vars)
      .reduce((t, [name, value]) => t.replaceAll(`{${name}}`, value), s)
      .replaceAll('{EP}', endpoint)
      .replaceAll('{DEAD}', `127.0.0.1:${twins.deadPort}`)
      .replaceAll('{NEW}', newMember)
      .replaceAll('{PEER}', twins.real.peerUrl);
  const args = step.args.map(subst);
  if (step.endpoints === false) return args;
  return ['--endpoints', subst(step.endpoints ?? '{EP}'), ...args];
}

function baseEnv(step: Step): Record<string, string> {
  return { ETCDCTL_API: '3', ...(step.env ?? {}) };
}

export function runReal(args: readonly string[], { stdin, env }: { stdin: string; env: Record<string, string> }): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdctlBinary, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin', ...env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out), err: Buffer.concat(err) }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

export async function runOurs(args: readonly string[], { stdin, env }: { stdin: string; env: Record<string, string> }): Promise<Outcome> {
  const io = new BufferIo(stdin);
  const code = await runEtcdctl(args, { io, env });
  return { code, out: io.out, err: io.err };
}

/** Timestamps, random client ids and measured durations differ from run to run; nothing else may. */
export function normalizeCommon(text: string): string {
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/client-[0-9a-f-]{36}/g, 'client-<uuid>')
    .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} /gm, '<ts> ');
}

/** For endpoint health: the measured time, and the table padding that depends on its length. */
export function normalizeTook(text: string): string {
  return text
    .replace(/[0-9.]+(ns|µs|ms|s)\b/g, '<took>')
    .replace(/-+/g, '-')
    .replace(/ +/g, ' ');
}

/** Our side's values of the placeholders, written as the real side's. */
export function mapVars(text: string, vars: Twins['vars']): string {
  let out = text;
  for (const [name, ours] of Object.entries(vars.ours)) {
    const real = vars.real[name];
    if (real === undefined || real === ours) continue;
    out = out.replaceAll(ours, real);
    if (/^[0-9a-f]{16}$/.test(ours) && /^[0-9a-f]{16}$/.test(real)) out = out.replaceAll(BigInt(`0x${ours}`).toString(), BigInt(`0x${real}`).toString());
  }
  return out;
}

export interface Mismatch {
  readonly args: string;
  readonly real: Outcome;
  readonly ours: Outcome;
  readonly what: string;
}

/** Runs one step on both sides; returns a description of any difference. */
export async function compareStep(twins: Twins, step: Step): Promise<Mismatch | undefined> {
  const stdin = step.stdin ?? '';
  const realArgs = expand(step, { endpoint: twins.real.endpoint, twins, newMember: twins.newMember.real, vars: twins.vars.real });
  const ourEndpoint = step.sameServer === true ? twins.real.endpoint : twins.ours.endpoint;
  const same = step.sameServer === true;
  const ourArgs = expand(step, {
    endpoint: ourEndpoint,
    twins,
    newMember: same ? twins.newMember.real : twins.newMember.ours,
    vars: same ? twins.vars.real : twins.vars.ours,
  });
  const [real, ours] = await Promise.all([runReal(realArgs, { stdin, env: baseEnv(step) }), runOurs(ourArgs, { stdin, env: baseEnv(step) })]);
  await step.afterRun?.();
  const fix = (b: Buffer, fromEndpoint: string): string => {
    let text = b.toString('latin1').replaceAll(fromEndpoint, twins.real.endpoint);
    if (fromEndpoint !== twins.real.endpoint) text = mapVars(text, twins.vars);
    text = normalizeCommon(text);
    return step.normalize !== undefined ? step.normalize(text) : text;
  };
  const problems: string[] = [];
  if (real.code !== ours.code) problems.push(`exit code ${real.code} != ${ours.code}`);
  if (fix(real.out, twins.real.endpoint) !== fix(ours.out, ourEndpoint)) problems.push('stdout differs');
  if (fix(real.err, twins.real.endpoint) !== fix(ours.err, ourEndpoint)) problems.push('stderr differs');
  if (problems.length === 0) return undefined;
  return { args: realArgs.join(' '), real, ours, what: problems.join(', ') };
}

export function describe(m: Mismatch): string {
  const show = (o: Outcome): string =>
    `  code ${o.code}\n  stdout ${JSON.stringify(o.out.toString('latin1'))}\n  stderr ${JSON.stringify(o.err.toString('latin1'))}`;
  return `etcdctl ${m.args}: ${m.what}\n real:\n${show(m.real)}\n ours:\n${show(m.ours)}`;
}

export async function compareAll(twins: Twins, steps: readonly Step[]): Promise<string[]> {
  const failures: string[] = [];
  for (const step of steps) {
    const mismatch = await compareStep(twins, step);
    if (mismatch !== undefined) failures.push(describe(mismatch));
  }
  return failures;
}
