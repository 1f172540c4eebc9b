/**
 * What makes an `:authority` acceptable to nghttp2, and how to turn what Go gRPC clients send into
 * something that is.
 *
 * nghttp2 (lib/nghttp2_http.c, http_request_on_header) checks every octet of `:authority` against
 * RFC 3986 authority characters and answers a bad one with RST_STREAM(PROTOCOL_ERROR) before Node sees
 * the stream. Newer nghttp2 also refuses '@' (userinfo); we refuse it too, so a repaired value is
 * accepted by every version. An empty value passes the character check, but a request then lacks both
 * `:authority` and `host` and is refused as well (nghttp2_http_on_request_headers): so we always
 * replace, never drop.
 *
 * Seen in the wild: clientv3 3.5.0 sends `#initially=[http://127.0.0.1:2379]` (etcd issue 13192; one
 * endpoint fixed in 3.5.1 by etcd PR 13359, several endpoints only by PR 16324), and URL-shaped
 * values such as `http://127.0.0.1:2379`. The etcdctl 3.4.23 installed here (grpc-go 1.33.3) sends a
 * clean `127.0.0.1:PORT` even for `--endpoints http://127.0.0.1:PORT` (clientv3 3.4's ParseEndpoint
 * strips the scheme before building its `endpoint://` target; seen on a sniffing node:http2 server).
 */

const validChars = new Uint8Array(128);
for (const c of "!$%&'()*+,-.0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~") {
  validChars[c.charCodeAt(0)] = 1;
}

export function isValidAuthority(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    if (validChars[value.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

const initiallyPattern = /^#initially=\[(.*)\]$/s;
const schemePattern = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * Returns `value` if nghttp2 accepts it; else the host[:port] of the first endpoint it names; else
 * `fallback` (the address the client actually connected to).
 */
export function repairAuthority(value: string, fallback: string): string {
  if (isValidAuthority(value)) return value;
  const list = initiallyPattern.exec(value)?.[1] ?? value;
  for (const part of list.split(/[;,]/)) {
    const candidate = hostOf(part.trim());
    if (candidate !== '' && isValidAuthority(candidate)) return candidate;
  }
  return fallback;
}

function hostOf(endpoint: string): string {
  if (schemePattern.test(endpoint)) {
    try {
      return new URL(endpoint).host;
    } catch {
      return '';
    }
  }
  // "host:port/path" or "user@host:port": keep the authority part, without userinfo.
  const authority = endpoint.split('/')[0] ?? '';
  return authority.slice(authority.lastIndexOf('@') + 1);
}

/** `host:port` of a socket's local side, bracketing IPv6 literals. */
export function formatHostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
