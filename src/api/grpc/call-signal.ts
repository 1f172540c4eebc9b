/**
 * Calls of the Lock and Election services. Long waits (Lock, Campaign, Observe) must stop the moment their
 * client does: an AbortSignal tied to the call ('cancelled' covers the client going away and its deadline
 * passing).
 *
 * Their errors differ from the KV service's: etcd 3.4 serves them through an in-process client, which
 * turns each server error into a plain Go error carrying only the message, so gRPC answers Unknown with
 * etcd's message (e.g. a missing lease is 2 "etcdserver: requested lease not found", not NotFound).
 * Only checks made before the handler runs keep their code (a learner's refusal).
 */
import { Metadata, status, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { isEtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { requestContext } from '../../base/request-context.js';
import { callContext, toServiceError } from './unary.js';

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

/** What a handler cut short by its client answers (the client has stopped listening; Go says the same). */
export function canceledStatus(): Partial<ServiceError> {
  return { code: status.CANCELLED, details: 'context canceled', metadata: new Metadata() };
}

/** The status a failed recipe call answers with (see the file comment). */
export function recipeErrorStatus(err: unknown, log: Logger, method: string): Partial<ServiceError> {
  const mapped = toServiceError(err, log, method);
  if (!isEtcdError(err) || isEtcdError(err, 'NotSupportedForLearner')) return mapped;
  return { ...mapped, code: status.UNKNOWN };
}

export type CancellableHandler<Req, Res> = (request: Req, signal: AbortSignal) => Promise<Res>;

/** unary(), with the call's cancel signal passed to the handler and the recipes' error statuses. */
export function recipeUnary<Req, Res>(
  method: string,
  log: Logger,
  handler: CancellableHandler<Req, Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    const { signal, release } = callSignal(call as unknown as CancellableCall);
    let promise: Promise<Res>;
    try {
      // The caller's token or certificate: the recipes' reads and writes are checked as that user.
      promise = requestContext.run(callContext(call), () => handler(call.request, signal));
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (res) => callback(null, res),
      (err: unknown) => callback(signal.aborted ? canceledStatus() : recipeErrorStatus(err, log, method), null),
    ).finally(release);
  };
}
