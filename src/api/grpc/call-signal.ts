/**
 * Long waits (Lock, Campaign, Observe) must stop the moment their client does: an AbortSignal tied to the
 * call ('cancelled' covers the client going away and its deadline passing), and the error status for a
 * handler that ended because of it. Short handlers use unary() and need none of this.
 */
import { Metadata, status, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from '../../base/logger.js';
import { requestContext } from '../../base/request-context.js';
import { toServiceError } from './unary.js';

interface CancellableCall {
  readonly cancelled: boolean;
  getDeadline?: () => Date | number;
  once(event: 'cancelled', listener: () => void): unknown;
  removeListener(event: 'cancelled', listener: () => void): unknown;
}

/** A signal that aborts when the call is cancelled; `release` detaches it once the handler is done. */
export function callSignal(call: CancellableCall): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const abort = (): void => controller.abort(new Error('context canceled'));
  if (call.cancelled) abort();
  else call.once('cancelled', abort);
  return { signal: controller.signal, release: () => void call.removeListener('cancelled', abort) };
}

export function callDeadlineMs(call: { getDeadline?: () => Date | number }): number {
  const d = call.getDeadline?.();
  if (d === undefined) return Infinity;
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : Infinity;
}

/** What a handler cut short by its client answers (the client has stopped listening; Go says the same). */
export function canceledStatus(): Partial<ServiceError> {
  return { code: status.CANCELLED, details: 'context canceled', metadata: new Metadata() };
}

export type CancellableHandler<Req, Res> = (request: Req, signal: AbortSignal) => Promise<Res>;

/** unary(), with the call's cancel signal passed to the handler. */
export function cancellableUnary<Req, Res>(
  method: string,
  log: Logger,
  handler: CancellableHandler<Req, Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const { signal, release } = callSignal(call as unknown as CancellableCall);
    let promise: Promise<Res>;
    try {
      promise = requestContext.run({ deadlineMs: callDeadlineMs(call) }, () => handler(call.request, signal));
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (res) => callback(null, res),
      (err: unknown) => callback(signal.aborted ? canceledStatus() : toServiceError(err, log, method), null),
    ).finally(release);
  };
}
