/**
 * What the gRPC server reports about its calls, in go-grpc-prometheus's terms (the counters etcd
 * exports: grpc_server_started_total, grpc_server_handled_total, grpc_server_msg_received_total,
 * grpc_server_msg_sent_total). The server asks for one GrpcMethodMetrics per method when it registers
 * the method, so a call only bumps counters bound in advance; it never builds label sets.
 *
 * Declared here, by the consumer; src/server/metrics.ts implements it over prom-client.
 */
import { GrpcCode } from '../../base/errors.js';
import type { MethodKind } from './grpc-js-compat.js';

/** go-grpc-prometheus's grpc_type label values. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export interface GrpcMethodDescription {
  /** Fully qualified service name, e.g. etcdserverpb.KV. */
  readonly service: string;
  readonly method: string;
  readonly type: GrpcType;
}

/**
 * The counters of one method. Each call reports started once (with the client-api-version its client
 * sent, if any) and handled once, with its final code; messages as they pass, with their payload bytes.
 */
export interface GrpcMethodMetrics {
  started(clientApiVersion: string | undefined): void;
  received(bytes: number): void;
  sent(count: number, bytes: number): void;
  handled(code: GrpcCode): void;
}

export interface GrpcServerMetrics {
  /** Called once per method at registration. */
  method(description: GrpcMethodDescription): GrpcMethodMetrics;
}

export const noopMethodMetrics: GrpcMethodMetrics = {
  started: () => {},
  received: () => {},
  sent: () => {},
  handled: () => {},
};

export const noopGrpcMetrics: GrpcServerMetrics = { method: () => noopMethodMetrics };

const grpcTypes: Readonly<Record<MethodKind, GrpcType>> = {
  unary: 'unary',
  clientStream: 'client_stream',
  serverStream: 'server_stream',
  bidi: 'bidi_stream',
};

export function grpcTypeOf(kind: MethodKind): GrpcType {
  return grpcTypes[kind];
}

/** "/etcdserverpb.KV/Put" -> { service: "etcdserverpb.KV", method: "Put" }. */
export function splitMethodPath(path: string): { service: string; method: string } {
  const slash = path.lastIndexOf('/');
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** Go's codes.Code.String(), the grpc_code label. */
export const grpcCodeNames: readonly string[] = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists',
  'PermissionDenied', 'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented',
  'Internal', 'Unavailable', 'DataLoss', 'Unauthenticated',
];

/** A client that went away before the status was sent: the handler saw its context canceled. */
export const canceledCode: GrpcCode = GrpcCode.Canceled;
