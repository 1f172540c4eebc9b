/**
 * Adapts promise-returning handlers to grpc-js, mapping typed errors to etcd's status codes and messages.
 * Anything else is an internal failure: logged, answered as Unknown, and the server keeps serving.
 */
import { Metadata, status, type ServerUnaryCall, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import type { Logger } from '../../base/logger.js';
import { requestContext, type Credentials, type RequestContext } from '../../base/request-context.js';

/** grpc-js gives the client's deadline as a Date, a number (ms) or Infinity. */
function deadlineOf(call: { getDeadline?: () => Date | number }): number {
  const d = call.getDeadline?.();
  if (d === undefined) return Infinity;
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : Infinity;
}

/** The shape of a grpc-js call the credentials are read from (metadata, and TLS as grpc-js reports it). */
export interface CallWithCredentials {
  readonly metadata?: { get(key: string): Array<string | Buffer> };
  getAuthContext?: () => { sslPeerCertificate?: { subject?: { CN?: string | string[] } } } | undefined;
}

/** etcd reads the token from metadata "token" (or "authorization", as its gateway sends it). */
export function credentialsOf(call: CallWithCredentials): Credentials {
  const first = (key: string): string | undefined => {
    const v = call.metadata?.get(key)[0];
    return v === undefined ? undefined : String(v);
  };
  const token = first('token') ?? first('authorization');
  const cn = call.getAuthContext?.()?.sslPeerCertificate?.subject?.CN;
  const commonName = Array.isArray(cn) ? cn[0] : cn;
  return { ...(token !== undefined ? { token } : {}), ...(commonName ? { commonName } : {}) };
}

/** What a handler runs under: the client's deadline and credentials (src/base/request-context.ts). */
export function callContext(call: CallWithCredentials & { getDeadline?: () => Date | number }): RequestContext {
  return { deadlineMs: deadlineOf(call), credentials: credentialsOf(call) };
}

export type UnaryHandler<Req, Res> = (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>;

export function toServiceError(err: unknown, log: Logger, method: string): Partial<ServiceError> {
  if (err instanceof EtcdError) {
    return { code: err.grpcCode, details: err.message, metadata: new Metadata() };
  }
  log.error('request failed with an unexpected error', { method, error: String((err as Error)?.stack ?? err) });
  return { code: status.UNKNOWN, details: (err as Error)?.message ?? String(err), metadata: new Metadata() };
}

export function unary<Req, Res>(
  method: string,
  log: Logger,
  handler: UnaryHandler<Req, Res>,
): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    let promise: Promise<Res>;
    try {
      promise = requestContext.run(callContext(call as CallWithCredentials), () => handler(call.request, call));
    } catch (err) {
      callback(toServiceError(err, log, method), null);
      return;
    }
    promise.then(
      (res) => callback(null, res),
      (err: unknown) => callback(toServiceError(err, log, method), null),
    );
  };
}
