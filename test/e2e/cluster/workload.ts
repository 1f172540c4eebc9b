/**
 * Continuous writes against a cluster, with a history of every attempt and acknowledgement, and the check
 * that no acknowledged write is lost: after the faults, every member must hold every acknowledged key with
 * its value at the revision the put was acknowledged with, and nothing that was never attempted.
 *
 * Keys are unique per attempt (a retry is a new key), so "lost", "duplicated" and "phantom" are simple set
 * questions and the mod revision of each key must equal the revision in the put's acknowledgement.
 *
 * Randomness (which member each write goes to, where the fault lands) comes from one seed: E2E_SEED
 * replays it, and every failure message carries it.
 */
import { randomInt } from 'node:crypto';
import type { ClusterMember } from './cluster.js';
import { MemberRpc, failureOf } from './rpc.js';

export const workloadLimits = {
  writersDefault: 6,
  writeDeadlineMs: 5_000,
  /** After a failed write: a dead member fails fast, so a writer must not spin on it. */
  backoffAfterFailureMs: 50,
  /** Distinct failure messages kept for the report. */
  failureKindsMax: 32,
  readDeadlineMs: 10_000,
} as const;

export function seedFromEnv(): number {
  const raw = process.env['E2E_SEED'];
  return raw !== undefined ? Number(raw) : randomInt(2 ** 31);
}

/** mulberry32: small, seedable, good enough to pick members and fault points. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export interface Ack {
  value: string;
  revision: bigint;
  startedAtMs: number;
  ackedAtMs: number;
  member: string;
}

export class WriteHistory {
  readonly attempts = new Map<string, string>();
  readonly acks = new Map<string, Ack>();
  readonly failures = new Map<string, number>();

  attempt(key: string, value: string): void {
    if (this.attempts.has(key)) throw new Error(`key ${key} attempted twice`);
    this.attempts.set(key, value);
  }

  ack(key: string, ack: Ack): void {
    this.acks.set(key, ack);
  }

  fail(e: unknown): void {
    const { code, details } = failureOf(e);
    // grpc-js appends timings and ports to some messages: keep the part that says what happened
    const kind = `code ${code}: ${details.replace(/ after \d.*$/, '').replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:<port>')}`;
    if (this.failures.has(kind) || this.failures.size < workloadLimits.failureKindsMax) {
      this.failures.set(kind, (this.failures.get(kind) ?? 0) + 1);
    }
  }

  /** The first acknowledgement of a write that was sent at or after `sinceMs`. */
  firstAckSince(sinceMs: number): Ack | undefined {
    let first: Ack | undefined;
    for (const ack of this.acks.values()) {
      if (ack.startedAtMs >= sinceMs && (first === undefined || ack.ackedAtMs < first.ackedAtMs)) first = ack;
    }
    return first;
  }

  /** Problems with what one member stores under `prefix`; empty when nothing acknowledged is lost. */
  verify(stored: ReadonlyMap<string, { value: string; modRevision: bigint }>): string[] {
    const problems: string[] = [];
    for (const [key, ack] of this.acks) {
      const kv = stored.get(key);
      if (kv === undefined) problems.push(`acknowledged ${key} (revision ${ack.revision}, via ${ack.member}) is lost`);
      else if (kv.value !== ack.value) problems.push(`acknowledged ${key} holds ${kv.value}, written ${ack.value}`);
      else if (kv.modRevision !== ack.revision) problems.push(`acknowledged ${key} at revision ${ack.revision} is stored at ${kv.modRevision}`);
    }
    for (const [key, kv] of stored) {
      const attempted = this.attempts.get(key);
      if (attempted === undefined) problems.push(`${key} = ${kv.value} was never written`);
      else if (attempted !== kv.value) problems.push(`${key} = ${kv.value}, but ${attempted} was written`);
    }
    return problems;
  }

  summary(): string {
    const failures = [...this.failures].map(([kind, n]) => `${n}x ${kind}`).join('; ');
    return `${this.attempts.size} attempted, ${this.acks.size} acknowledged; failures: ${failures === '' ? 'none' : failures}`;
  }
}

/** A member's view of every key under `prefix`, read locally (serializable) so that each member answers for itself. */
export async function storedUnder(member: ClusterMember, prefix: string): Promise<Map<string, { value: string; modRevision: bigint }>> {
  const rpc = member.rpc();
  try {
    const res = await rpc.range(prefix, { rangeEnd: prefixEnd(prefix), serializable: true, deadlineMs: workloadLimits.readDeadlineMs });
    return new Map(res.kvs.map((kv) => [kv.key.toString(), { value: kv.value.toString(), modRevision: kv.modRevision }]));
  } finally {
    rpc.close();
  }
}

export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix);
  const last = bytes.at(-1);
  if (last === undefined || last === 0xff) throw new Error(`prefix ${prefix}: no simple range end`);
  bytes[bytes.length - 1] = last + 1;
  return bytes.toString();
}

/**
 * Writers that put unique keys to randomly chosen members until stopped. Members can be swapped out of
 * the pool (killed) and back in (restarted: a fresh channel, so no client back-off delays the return).
 */
export class WriteLoad {
  readonly history = new WriteHistory();
  /** Every key this load writes starts with it. */
  readonly prefix: string;
  readonly #rand: () => number;
  readonly #pool = new Map<string, MemberRpc>();
  #stopped = false;
  #writers: Promise<void>[] = [];
  #seq = 0;

  constructor(options: { prefix: string; seed: number; members: readonly ClusterMember[] }) {
    this.prefix = options.prefix;
    this.#rand = prng(options.seed);
    for (const m of options.members) this.#pool.set(m.name, m.rpc());
  }

  /** Adds `writers` writers (to those already running). */
  start(writers: number = workloadLimits.writersDefault): void {
    for (let w = 0; w < writers; w++) this.#writers.push(this.#writer(this.#writers.length));
  }

  /** A member that was restarted gets a fresh channel. */
  reconnect(member: ClusterMember): void {
    this.#pool.get(member.name)?.close();
    this.#pool.set(member.name, member.rpc());
  }

  /** Resolves once `count` more writes have been acknowledged than when called; fails at the deadline. */
  async waitAcks(count: number, options: { timeoutMs: number; what: string }): Promise<void> {
    const target = this.history.acks.size + count;
    const deadline = Date.now() + options.timeoutMs;
    while (this.history.acks.size < target) {
      if (Date.now() > deadline) {
        throw new Error(`${options.what}: ${this.history.acks.size}/${target} acknowledged within ${options.timeoutMs} ms; ${this.history.summary()}`);
      }
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }

  /** One write to one member outside the writers (a probe), recorded in the same history. */
  async writeOnce(member: string, options: { deadlineMs: number }): Promise<boolean> {
    const rpc = this.#pool.get(member);
    if (rpc === undefined) throw new Error(`no member ${member} in the pool`);
    const key = `${this.prefix}probe/${String(this.#seq++).padStart(7, '0')}`;
    return this.#put(rpc, { key, member, deadlineMs: options.deadlineMs });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#writers);
    for (const rpc of this.#pool.values()) rpc.close();
  }

  async #writer(id: number): Promise<void> {
    const names = [...this.#pool.keys()];
    while (!this.#stopped) {
      const member = names[Math.floor(this.#rand() * names.length)] ?? '';
      const rpc = this.#pool.get(member);
      if (rpc === undefined) throw new Error(`no member ${member} in the pool`);
      const key = `${this.prefix}w${id}/${String(this.#seq++).padStart(7, '0')}`;
      const ok = await this.#put(rpc, { key, member, deadlineMs: workloadLimits.writeDeadlineMs });
      if (!ok) await new Promise((done) => setTimeout(done, workloadLimits.backoffAfterFailureMs));
    }
  }

  async #put(rpc: MemberRpc, options: { key: string; member: string; deadlineMs: number }): Promise<boolean> {
    const value = `${options.key}@${Date.now()}`;
    this.history.attempt(options.key, value);
    const startedAtMs = Date.now();
    try {
      const res = await rpc.put(options.key, value, { deadlineMs: options.deadlineMs });
      this.history.ack(options.key, { value, revision: res.header?.revision ?? -1n, startedAtMs, ackedAtMs: Date.now(),
        member: options.member });
      return true;
    } catch (e) {
      this.history.fail(e);
      return false;
    }
  }
}
