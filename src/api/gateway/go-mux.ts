/**
 * What etcd does to a client HTTP request before any handler sees it: its access controller rewrites
 * /v3beta/... to /v3/... (embed/serve.go), then Go's http.ServeMux redirects a path that is not clean
 * ("/v3//kv/range", "/v3/kv/../kv/range", "//health") to its clean form with 301, as it does the bare
 * name of a subtree ("/v3" -> "/v3/").
 */
import { posix } from 'node:path';
import type { GatewayRequest, GatewayResponse } from './gateway-call.js';

/** Go's cleanPath: path.Clean, keeping a trailing slash. */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  const rooted = p.startsWith('/') ? p : `/${p}`;
  let clean = posix.normalize(rooted);
  if (clean.length > 1 && clean.endsWith('/')) clean = clean.slice(0, -1);
  if (clean.startsWith('//')) clean = clean.replace(/^\/+/, '/');
  if (rooted.endsWith('/') && clean !== '/') clean += '/';
  return clean;
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' })[c]!);
}

/** Go's http.Redirect with 301: a short HTML body for GET and HEAD only. */
export function sendRedirect(req: GatewayRequest, res: GatewayResponse, location: string): void {
  res.statusCode = 301;
  res.setHeader('Location', location);
  if (req.method === 'GET' || req.method === 'HEAD') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<a href="${htmlEscape(location)}">Moved Permanently</a>.\n\n`);
    return;
  }
  res.end();
}

/**
 * Rewrites /v3beta/ in req.url and answers an unclean path with its redirect. Returns the path to serve,
 * or null when the request was answered.
 */
export function preRoute(req: GatewayRequest, res: GatewayResponse): string | null {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const query = q < 0 ? '' : url.slice(q);
  let path = q < 0 ? url : url.slice(0, q);
  if (path.startsWith('/v3beta/')) {
    path = `/v3/${path.slice('/v3beta/'.length)}`;
    req.url = `${path}${query}`;
  }
  if (req.method === 'CONNECT') return path;
  const clean = cleanPath(path);
  if (clean !== path) {
    sendRedirect(req, res, `${clean}${query}`);
    return null;
  }
  if (path === '/v3') {
    sendRedirect(req, res, `/v3/${query}`);
    return null;
  }
  return path;
}
