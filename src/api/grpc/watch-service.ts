/**
 * etcd's Watch service: one bidirectional stream per client connection carrying many watchers. This
 * file only adapts the transport: requests are decoded and handed to a WatchStream (src/watch), which
 * writes pre-encoded WatchResponse bytes back, already gRPC-framed and many per write (FramedMessages,
 * which our call objects pass through as they are; the HTTP/JSON gateway gets them one by one). Otherwise
 * only the grpc-js call surface is used ('data', 'drain', 'error', 'cancelled' events; write() and its
 * back-pressure result).
 */
import { Metadata, type ServerDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { EtcdError } from '../../base/errors.js';
import type { Credentials } from '../../base/request-context.js';
import { credentialsOf, type CallWithCredentials } from './unary.js';
import type { Logger } from '../../base/logger.js';
import { WatchRequest, WatchResponse, type ResponseHeader } from '../../gen/etcd/etcdserver/etcdserverpb/rpc.js';
import { WatchStream, type ResponseSink } from '../../watch/watch-stream.js';
import type { WatchableStore } from '../../watch/watchable-store.js';
import { FramedMessages } from '../h2/grpc-wire.js';
import type { ServiceRegistration } from './services.js';

/** etcd lets a frame exceed --max-request-bytes by this much; fragmenting uses the same allowance. */
const grpcOverheadBytes = 512 * 1024;

/**
 * The Watch method with responses serialized by the stream itself (so an event's encoding is shared by
 * every watcher that receives it); requests use the generated codec.
 */
export const watchServiceDefinition = {
  watch: {
    path: '/etcdserverpb.Watch/Watch',
    requestStream: true,
    responseStream: true,
    requestSerialize: (value: WatchRequest): Buffer => Buffer.from(WatchRequest.encode(value).finish()),
    requestDeserialize: (bytes: Buffer): WatchRequest => WatchRequest.decode(bytes),
    responseSerialize: (bytes: Buffer): Buffer => bytes,
    responseDeserialize: (bytes: Buffer): Buffer => bytes,
  },
} as const;

export interface WatchServiceOptions {
  readonly store: WatchableStore;
  /** The response header at a revision (cluster id, member id, raft term). */
  readonly header: (revision: number) => ResponseHeader;
  readonly requestBytesMax: number;
  readonly progressIntervalMs: number;
  readonly log: Logger;
  /** Read permission on a watch's range, checked at creation (auth); throws the refusing EtcdError. */
  readonly authorizeCreate?: (credentials: Credentials, range: { key: Buffer; rangeEnd: Buffer }) => Promise<void>;
}

export function watchService(options: WatchServiceOptions): ServiceRegistration {
  return {
    definition: watchServiceDefinition,
    implementation: { watch: (call: ServerDuplexStream<WatchRequest, Buffer>) => serveWatch(call, options) },
  };
}

function statusOf(err: EtcdError): Partial<ServiceError> {
  return { code: err.grpcCode, details: err.message, metadata: new Metadata() };
}

function serveWatch(call: ServerDuplexStream<WatchRequest, Buffer>, o: WatchServiceOptions): void {
  const sink: ResponseSink = {
    // Pre-framed: our call objects (src/api/h2/grpc-js-compat.ts) write them as they are.
    write: (framed, count) => call.write(new FramedMessages(framed, count) as unknown as Buffer),
    // grpc-js turns an 'error' emitted on a server stream into the call's status.
    fail: (err) => void call.emit('error', statusOf(err)),
  };
  const stream = new WatchStream(o.store, sink, {
    header: o.header,
    fragmentBytesMax: o.requestBytesMax + grpcOverheadBytes,
    progressIntervalMs: o.progressIntervalMs,
  });
  const authorize = o.authorizeCreate;
  // With auth, a create waits for its check; later requests queue behind it so the stream keeps its order.
  let pending: Promise<void> = Promise.resolve();
  const credentials = authorize ? credentialsOf(call as unknown as CallWithCredentials) : {};
  const handle = (req: WatchRequest): void => {
    const r = req.requestUnion;
    switch (r?.$case) {
      case 'createRequest':
        return stream.create(r.value);
      case 'cancelRequest':
        return stream.cancel(r.value.watchId);
      case 'progressRequest':
        return stream.requestProgress();
      default:
        return undefined; // etcd ignores requests it does not know
    }
  };
  call.on('data', (req: WatchRequest) => {
    if (!authorize) return handle(req);
    const r = req.requestUnion;
    pending = pending.then(async () => {
      if (r?.$case !== 'createRequest') return handle(req);
      try {
        await authorize(credentials, r.value);
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        return void call.write(deniedResponse(o, err));
      }
      return handle(req);
    }).catch((err: unknown) => o.log.error('watch request failed', { error: String(err) }));
    return undefined;
  });
  call.on('drain', () => stream.onDrain());
  // A client that half-closes still receives events until it goes away, as with etcd.
  call.on('end', () => {});
  call.on('error', () => stream.close());
  call.on('cancelled', () => stream.close());
  call.on('close', () => stream.close());
}

/** etcd's answer to a create the user may not make: created and canceled at once, with the reason. */
function deniedResponse(o: WatchServiceOptions, err: EtcdError): Buffer {
  // etcd names these three errors; anything else is reported as a permission denial. The reason is the
  // text of Go's gRPC status error.
  const named = ['InvalidAuthToken', 'AuthOldRevision', 'UserEmpty'].includes(err.kind) ? err : new EtcdError('PermissionDenied');
  const codeNames: Record<number, string> = { 3: 'InvalidArgument', 7: 'PermissionDenied', 16: 'Unauthenticated' };
  const reason = `rpc error: code = ${codeNames[named.grpcCode] ?? 'Unknown'} desc = ${named.message}`;
  return Buffer.from(WatchResponse.encode({
    header: o.header(o.store.history.revision()), watchId: -1n, created: true, canceled: true,
    compactRevision: 0n, cancelReason: reason, fragment: false, events: [],
  }).finish());
}
