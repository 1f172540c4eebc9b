/**
 * What the server must know of the client call it is serving, without threading it through every
 * signature: the client's deadline, and who the client says it is. A proposal is never started for a
 * client that has stopped waiting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What the client presented: a token (gRPC metadata "token") and/or a verified TLS client certificate. */
export interface Credentials {
  readonly token?: string;
  /** The CN of the client certificate the TLS layer verified. */
  readonly commonName?: string;
}

/** A user name and the auth revision its credentials were checked at. */
export interface ResolvedAuth {
  readonly username: string;
  readonly revision: number;
}

export interface RequestContext {
  /** When the client stops waiting (ms since the epoch); Infinity when it set no deadline. */
  readonly deadlineMs: number;
  readonly credentials?: Credentials;
  /** The server itself acting (lease expiry): it acts with root's rights, as etcd's WithRoot. */
  readonly internal?: boolean;
  /** The credentials resolved once per request by the auth layer (memo; null: no credentials). */
  resolvedAuth?: Promise<ResolvedAuth | null>;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function clientDeadlineMs(): number {
  return requestContext.getStore()?.deadlineMs ?? Infinity;
}
