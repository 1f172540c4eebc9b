/**
 * Builds the auth pieces of a member from its configuration: the store over the backend's auth buckets,
 * the token provider (--auth-token), and the API-side AuthServer, wired so that enabling, disabling and
 * user changes reach the tokens.
 */
import type { Logger } from '../base/logger.js';
import type { ResponseHeader } from '../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { RaftRequest } from '../gen/etcdts/internal.js';
import { AppliedWaiter } from './applied-waiter.js';
import { AuthServer } from './auth-server.js';
import { AuthStore, type AuthBackend } from './auth-store.js';
import { JwtTokens, parseAuthTokenFlag, SimpleTokens, type TokenProvider } from './tokens.js';

export interface AuthConfig {
  readonly authToken: string;
  readonly bcryptCost: number;
  readonly authTokenTtlSeconds: number;
  /** Set by the TLS configuration when --client-cert-auth is on. */
  readonly clientCertAuth?: boolean;
}

export interface AuthWiring {
  readonly backend: () => AuthBackend;
  readonly log: Logger;
  readonly applied: () => number;
  readonly requestTimeoutMs: number;
  readonly propose: <T>(body: NonNullable<RaftRequest['request']>) => Promise<T>;
  readonly waitLinearizable: () => Promise<void>;
  readonly header: () => ResponseHeader;
}

export interface AuthParts {
  readonly store: AuthStore;
  readonly tokens: TokenProvider;
  readonly server: AuthServer;
  onApplied(index: number): void;
}

/** etcd's default when --auth-token-ttl is 0. */
const defaultSimpleTokenTtlSeconds = 300;

export function wireAuth(cfg: AuthConfig, w: AuthWiring): AuthParts {
  const waiter = new AppliedWaiter({ applied: w.applied, timeoutMs: w.requestTimeoutMs });
  const tokenConfig = parseAuthTokenFlag(cfg.authToken);
  const tokens: TokenProvider = tokenConfig.kind === 'jwt'
    ? new JwtTokens(tokenConfig.options)
    : new SimpleTokens({
      ttlMs: (cfg.authTokenTtlSeconds || defaultSimpleTokenTtlSeconds) * 1000,
      waitApplied: (index) => waiter.wait(index),
    });
  const store = new AuthStore(w.backend);
  store.observe({
    onEnabledChange: (enabled) => {
      if (enabled) tokens.enable();
      else tokens.disable();
      w.log.info(enabled ? 'enabled authentication' : 'disabled authentication');
    },
    onUserInvalidated: (name) => tokens.invalidateUser(name),
  });
  if (store.enabled) tokens.enable();
  const server = new AuthServer({
    store, tokens, bcryptCost: cfg.bcryptCost, clientCertAuth: cfg.clientCertAuth ?? false,
    propose: w.propose, waitLinearizable: w.waitLinearizable, header: w.header, log: w.log,
  });
  return { store, tokens, server, onApplied: (index) => waiter.onApplied(index) };
}
