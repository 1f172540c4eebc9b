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
