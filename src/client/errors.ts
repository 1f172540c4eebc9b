/**
 * Errors the client surfaces. Every failed call rejects with a ClientError carrying the gRPC status code and
 * the server's message verbatim, so callers can match etcd's errors exactly as clientv3 users do.
 */
import { GrpcCode, errorTable, type ErrorKind } from '../base/errors.js';

const kindByMessage: ReadonlyMap<string, ErrorKind> = new Map(
  (Object.keys(errorTable) as ErrorKind[]).map((kind) => [errorTable[kind][1], kind] as const),
);

const codeNames: readonly string[] = Object.keys(GrpcCode);

/** The name gRPC gives a status code ("InvalidArgument"), or "Code(n)" for numbers outside the spec. */
export function grpcCodeName(code: number): string {
  return codeNames[code] ?? `Code(${code})`;
}

export interface ClientErrorOptions {
  /** The endpoint the failing attempt went to, when there was one. */
  endpoint?: string;
  /** False when the request certainly never reached a server (no connection could be made). */
  sent?: boolean;
}

export class ClientError extends Error {
  /** The gRPC status code, numbered as in the gRPC spec. */
  readonly code: number;
  /** The status details exactly as received, e.g. "etcdserver: key is not provided". */
  readonly details: string;
  /** The entry of etcd's error table this error is, when the message is one of etcd's. */
  readonly kind: ErrorKind | undefined;
  readonly endpoint: string | undefined;
  readonly sent: boolean;

  constructor(code: number, details: string, options: ClientErrorOptions = {}) {
    super(details);
    this.name = 'ClientError';
    this.code = code;
    this.details = details;
    this.kind = kindByMessage.get(details);
    this.endpoint = options.endpoint;
    this.sent = options.sent ?? true;
  }

  get codeName(): string {
    return grpcCodeName(this.code);
  }
}

export function isClientError(err: unknown, kind?: ErrorKind): err is ClientError {
  return err instanceof ClientError && (kind === undefined || err.kind === kind);
}

export const deadlineDetails = 'context deadline exceeded';
export const canceledDetails = 'context canceled';
export const closedDetails = 'the client is closed';
