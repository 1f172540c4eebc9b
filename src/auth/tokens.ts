/**
 * Auth tokens, as etcd issues them.
 *
 * simple: "<16 random letters>.<raft index>", chosen at apply time on every member (the letters come
 * from the proposer, the index from the entry), so any member knows every token. A token lives in memory
 * only, for --auth-token-ttl seconds after its last use; tokens of a deleted user or a changed password
 * die at once; disabling auth voids them all.
 *
 * jwt: signed by the member that answers Authenticate with the configured key (jose), carrying the user
 * name, the auth revision and an expiry; verified with the public key and only the configured algorithm
 * (so neither "alg: none" nor a token signed with another key or algorithm passes).
 */
import { createPrivateKey, createPublicKey, createSecretKey, randomInt, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, jwtVerify } from 'jose';
import type { AuthInfo } from './auth-store.js';

export interface TokenProvider {
  readonly kind: 'simple' | 'jwt';
  enable(): void;
  disable(): void;
  invalidateUser(name: string): void;
  /** The random part of a simple token ('' for JWT), chosen by the proposer of Authenticate. */
  genTokenPrefix(): string;
  /** Apply-time half of Authenticate for simple tokens: records and returns the token. */
  assignSimple(name: string, at: { prefix: string; index: number }): string;
  /** Proposer-side half for JWT: signs a token for the user at the auth revision. */
  sign(name: string, revision: number): Promise<string>;
  /** The user a token names, or null when it is not (or no longer) valid. */
  info(token: string, currentRevision: number): Promise<AuthInfo | null>;
  close(): void;
}

const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const simplePrefixLength = 16;
/** Bounds the token table: past it, the oldest token is dropped (a flood of logins cannot grow memory). */
export const simpleTokensMax = 1_000_000;
const sweepIntervalMs = 1000;

export interface SimpleTokenOptions {
  readonly ttlMs: number;
  readonly now?: () => number;
  /** Resolves once this member applied `index` (a token from a member further ahead), or rejects. */
  readonly waitApplied: (index: number) => Promise<void>;
}

export class SimpleTokens implements TokenProvider {
  readonly kind = 'simple';
  readonly #o: SimpleTokenOptions;
  readonly #now: () => number;
  /** token -> user and expiry; Map order is insertion order, the oldest first. */
  readonly #tokens = new Map<string, { user: string; expiresMs: number }>();
  #enabled = false;
  #sweeper: NodeJS.Timeout | null = null;

  constructor(options: SimpleTokenOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => performance.now());
  }

  enable(): void {
    if (this.#enabled) return;
    this.#enabled = true;
    this.#sweeper = setInterval(() => this.#sweep(), sweepIntervalMs);
    this.#sweeper.unref();
  }

  disable(): void {
    this.#enabled = false;
    this.#tokens.clear();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
  }

  close(): void {
    this.disable();
  }

  invalidateUser(name: string): void {
    for (const [token, t] of this.#tokens) if (t.user === name) this.#tokens.delete(token);
  }

  genTokenPrefix(): string {
    let s = '';
    for (let i = 0; i < simplePrefixLength; i++) s += letters[randomInt(letters.length)];
    return s;
  }

  assignSimple(name: string, at: { prefix: string; index: number }): string {
    const token = `${at.prefix}.${at.index}`;
    if (!this.#enabled) return token;
    if (this.#tokens.size >= simpleTokensMax) {
      const oldest = this.#tokens.keys().next();
      if (!oldest.done) this.#tokens.delete(oldest.value);
    }
    this.#tokens.set(token, { user: name, expiresMs: this.#now() + this.#o.ttlMs });
    return token;
  }

  sign(): Promise<string> {
    return Promise.reject(new Error('simple tokens are assigned at apply time'));
  }

  async info(token: string, currentRevision: number): Promise<AuthInfo | null> {
    const parts = token.split('.');
    if (parts.length !== 2 || !/^[0-9]+$/.test(parts[1] ?? '')) return null;
    const index = Number(parts[1]);
    if (!Number.isSafeInteger(index)) return null;
    if (!this.#tokens.has(token)) {
      // A token from a member that applied its entry before this one did.
      try {
        await this.#o.waitApplied(index);
      } catch {
        return null;
      }
    }
    const t = this.#tokens.get(token);
    if (!t || !this.#enabled) return null;
    const now = this.#now();
    if (now > t.expiresMs) {
      this.#tokens.delete(token);
      return null;
    }
    t.expiresMs = now + this.#o.ttlMs; // etcd's TTL counts from the last use
    return { username: t.user, revision: currentRevision };
  }

  #sweep(): void {
    const now = this.#now();
    for (const [token, t] of this.#tokens) if (now > t.expiresMs) this.#tokens.delete(token);
  }

  get size(): number {
    return this.#tokens.size;
  }
}

export type JwtAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512'
  | 'HS256' | 'HS384' | 'HS512';
const jwtAlgorithms: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512'];

export interface JwtOptions {
  readonly algorithm: JwtAlgorithm;
  /** Verifies; for HS* the shared secret. */
  readonly verifyKey: KeyObject;
  /** Signs; absent: this member only verifies (etcd's verify-only mode). */
  readonly signKey?: KeyObject;
  readonly ttlMs: number;
}

export class JwtTokens implements TokenProvider {
  readonly kind = 'jwt';
  readonly #o: JwtOptions;

  constructor(options: JwtOptions) {
    this.#o = options;
  }

  enable(): void {}
  disable(): void {}
  close(): void {}
  invalidateUser(): void {}
  genTokenPrefix(): string {
    return '';
  }
  assignSimple(): string {
    return '';
  }

  async sign(name: string, revision: number): Promise<string> {
    if (!this.#o.signKey) throw new Error('auth: token signing attempted with verify-only key');
    return new SignJWT({ username: name, revision })
      .setProtectedHeader({ alg: this.#o.algorithm, typ: 'JWT' })
      .setExpirationTime(Math.floor((Date.now() + this.#o.ttlMs) / 1000))
      .sign(this.#o.signKey);
  }

  async info(token: string): Promise<AuthInfo | null> {
    try {
      const { payload } = await jwtVerify(token, this.#o.verifyKey, { algorithms: [this.#o.algorithm] });
      const username = payload['username'];
      const revision = payload['revision'];
      if (typeof username !== 'string' || typeof revision !== 'number' || !Number.isSafeInteger(revision)) return null;
      return { username, revision };
    } catch {
      return null;
    }
  }
}

/** Go's time.ParseDuration for the units a TTL uses ("300s", "5m", "1h30m", "1.5h", "500ms"). */
export function parseGoDurationMs(text: string): number {
  const unitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (unitMs[m[2]!] ?? NaN);
    consumed = re.lastIndex;
  }
  if (text === '0') return 0;
  if (consumed !== text.length || text.length === 0 || !Number.isFinite(total)) throw new Error(`invalid duration "${text}"`);
  return total;
}

export type AuthTokenConfig =
  | { readonly kind: 'simple' }
  | { readonly kind: 'jwt'; readonly options: JwtOptions };

/**
 * Parses etcd's --auth-token value: "simple", or "jwt,pub-key=<file>,priv-key=<file>,sign-method=<alg>[,ttl=<dur>]".
 * Errors name the problem, as etcd refuses to start on a bad value.
 */
export function parseAuthTokenFlag(value: string): AuthTokenConfig {
  const [kind, ...rest] = value.split(',');
  if (kind === 'simple') return { kind: 'simple' };
  if (kind !== 'jwt') throw new Error(`unknown token type: ${kind ?? ''}`);
  const opts = new Map<string, string>();
  for (const kv of rest) {
    const at = kv.indexOf('=');
    if (at <= 0) throw new Error(`invalid JWT option: ${kv}`);
    opts.set(kv.slice(0, at), kv.slice(at + 1));
  }
  const alg = opts.get('sign-method') ?? '';
  if (!jwtAlgorithms.includes(alg)) throw new Error(`auth: invalid auth signature method: ${alg}`);
  const algorithm = alg as JwtAlgorithm;
  const ttlMs = opts.has('ttl') ? parseGoDurationMs(opts.get('ttl') ?? '') : 5 * 60_000;
  const pub = opts.get('pub-key');
  const priv = opts.get('priv-key');
  if (algorithm.startsWith('HS')) {
    if (!priv) throw new Error('auth: missing key data');
    const secret = createSecretKey(readFileSync(priv));
    return { kind: 'jwt', options: { algorithm, verifyKey: secret, signKey: secret, ttlMs } };
  }
  if (!pub && !priv) throw new Error('auth: missing key data');
  const signKey = priv ? createPrivateKey(readFileSync(priv)) : undefined;
  const verifyKey = pub ? createPublicKey(readFileSync(pub)) : createPublicKey(signKey!);
  return { kind: 'jwt', options: signKey ? { algorithm, verifyKey, signKey, ttlMs } : { algorithm, verifyKey, ttlMs } };
}
