/**
 * The HTTP endpoints etcd serves beside gRPC on the client port: /health, /version and /metrics (the
 * Prometheus text format, from prom-client), etcd 3.5's /livez and /readyz, and the /v3 JSON gateway
 * (src/api/gateway) when given one. Other paths answer 404.
 *
 * createMetricsHandler serves a --listen-metrics-urls listener as etcd does: /metrics and the health
 * endpoints only, without the client port's CORS headers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Registry } from 'prom-client';
import { clusterVersion, etcdApiVersion } from '../../base/version.js';
import { isHealthPath, serveHealthEndpoint, type HealthSource } from './health.js';
import { preRoute } from '../gateway/go-mux.js';

export type { HealthSource } from './health.js';

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** etcd answers every HTTP request on the client port with these. */
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

function notFound(res: Res): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  send(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
}

function pathOf(req: Req): string {
  return (req.url ?? '/').split('?')[0] ?? '/';
}

function serveMetrics(registry: Registry, res: Res): void {
  registry.metrics().then(
    (text) => send(res, 200, registry.contentType, text),
    (err: unknown) => send(res, 500, 'text/plain; charset=utf-8', String(err)),
  );
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
    if (isHealthPath(path)) {
      serveHealthEndpoint(options.health, req, res);
      return;
    }
    // promhttp answers whatever the method.
    if (path === '/metrics') {
      serveMetrics(options.metrics, res);
      return;
    }
    if (path !== '/version') {
      // Unknown paths are 404 whatever the method.
      notFound(res);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      send(res, 405, 'text/plain; charset=utf-8', 'Method Not Allowed\n');
      return;
    }
    send(res, 200, 'application/json', JSON.stringify({ etcdserver: etcdApiVersion, etcdcluster: clusterVersion }));
  };
}

/** The --listen-metrics-urls handler: /metrics (any method, as promhttp) and the health endpoints. */
export function createMetricsHandler(options: { health: HealthSource; metrics: Registry }): (req: Req, res: Res) => void {
  return (req, res) => {
    const path = pathOf(req);
    if (path === '/metrics') serveMetrics(options.metrics, res);
    else if (isHealthPath(path)) serveHealthEndpoint(options.health, req, res);
    else notFound(res);
  };
}
