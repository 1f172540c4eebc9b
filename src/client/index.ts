/**
 * etcd-ts's client library for etcd's v3 API (works against etcd and etcd-ts alike).
 *
 * Unary calls only for now: Watch and LeaseKeepAlive are bidirectional streams and come later, built on the
 * same Connection (one channel per endpoint) with their own failover rules (a watch resumes from its last
 * revision on another endpoint; keep-alives restart against the new leader).
 */
export {
  EtcdClient,
  KV,
  Maintenance,
  Cluster,
  Lease,
  toBuffer,
  dialTimeoutMsDefault,
  requestTimeoutMsDefault,
  type Bytes,
  type EtcdClientOptions,
  type RangeInput,
  type PutInput,
  type DeleteRangeInput,
} from './etcd-client.js';
export { ClientError, isClientError, grpcCodeName, type ClientErrorOptions } from './errors.js';
export type { AttemptFailure, CallOptions } from './invoker.js';
export { parseEndpoint, EndpointError, type Endpoint } from './endpoints.js';
export { prefixRangeEnd, fromKeyRangeEnd } from './ranges.js';
export { Watcher, KeepAlives, Locks, Elections, leaseNotFoundDetails, type StreamOptions } from './streams.js';
export { AuthApi } from './auth-api.js';
