/**
 * etcd-ts's client library for etcd's v3 API (works against etcd and etcd-ts alike).
 *
 * Unary calls fail over between endpoints. Watch, LeaseKeepAlive and Election.Observe streams (streams.ts)
 * open on the current endpoint and do not fail over or resume yet: a caller resumes a watch from its last
 * revision + 1 itself. Lock and Campaign wait without a deadline unless given one.
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
