/**
 * What the server must know of the client call it is serving, without threading it through every
 * signature: the client's deadline. A proposal is never started for a client that has stopped waiting.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  /** When the client stops waiting (ms since the epoch); Infinity when it set no deadline. */
  readonly deadlineMs: number;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export function clientDeadlineMs(): number {
  return requestContext.getStore()?.deadlineMs ?? Infinity;
}
