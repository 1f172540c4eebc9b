import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';

type PeerHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** Several handlers of non-raft peer requests as one: the first that takes the request answers it. */
export function orHandlers(...handlers: PeerHandler[]): PeerHandler {
  return (stream, headers) => handlers.some((h) => h(stream, headers));
}
