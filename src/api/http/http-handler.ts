/**
 * The HTTP endpoints etcd serves beside gRPC on the client port: /health, /version and /metrics (the
 * Prometheus text format, from prom-client), and the /v3 JSON gateway (src/api/gateway) when given one.
 * Other paths answer 404.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { Registry } from 'prom-client';
import { clusterVersion, etcdApiVersion } from '../../base/version.js';
import { preRoute } from '../gateway/go-mux.js';

export interface HealthSource {
  /** Resolves true when the member has a leader and can serve a linearizable read. */
  healthy(): Promise<boolean>;
}

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** etcd answers every HTTP request with these. */
function corsHeaders(res: Res): void {
  res.setHeader('Access-Control-Allow-Headers', 'accept, content-type, authorization');
  res.setHeader('Access-Control-Allow-Methods', 'POST, GET, OPTIONS, PUT, DELETE');
  res.setHeader('Access-Control-Allow-Origin', '*');
}

function send(res: Res, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.end(body);
}

export function createHttpHandler(options: {
  health: HealthSource;
  metrics: Registry;
  /** Serves /v3/... and /v3beta/...; returns false for other paths. */
  gateway?: (req: Req, res: Res) => boolean;
}): (req: Req, res: Res) => void {
  return (req, res) => {
    corsHeaders(res);
    // etcd's access controller answers every preflight itself.
    if (req.method === 'OPTIONS') {
      res.statusCode = 200;
      res.end();
      return;
    }
    const path = preRoute(req, res);
    if (path === null) return;
    if (options.gateway?.(req, res) === true) return;
    // etcd's /version and /health take GET only; /metrics any method; unknown paths are 404 whatever the method.
    if ((path === '/version' || path === '/health') && req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n');
      return;
    }
    switch (path) {
      case '/version':
        send(res, 200, 'application/json', JSON.stringify({ etcdserver: etcdApiVersion, etcdcluster: clusterVersion }));
        return;
      case '/health':
        options.health.healthy().then(
          (ok) => send(res, ok ? 200 : 503, 'text/plain; charset=utf-8', JSON.stringify({ health: String(ok) })),
          () => send(res, 503, 'text/plain; charset=utf-8', JSON.stringify({ health: 'false' })),
        );
        return;
      case '/metrics':
        options.metrics.metrics().then(
          (text) => send(res, 200, options.metrics.contentType, text),
          (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', String(err)),
        );
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
    }
  };
}
