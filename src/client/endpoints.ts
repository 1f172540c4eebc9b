/** Endpoint strings as etcd clients accept them: "host:port", "http://host:port", "https://host:port", "unix://path". */

export interface Endpoint {
  /** As the user wrote it; etcdctl prints endpoints this way. */
  readonly raw: string;
  /** The gRPC target to dial. */
  readonly target: string;
  readonly secure: boolean;
}

export class EndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointError';
  }
}

export function parseEndpoint(raw: string): Endpoint {
  const text = raw.trim();
  if (text.length === 0) throw new EndpointError('empty endpoint');
  const schemeEnd = text.indexOf('://');
  if (schemeEnd < 0) return { raw, target: hostPort(text, raw), secure: false };
  const scheme = text.slice(0, schemeEnd).toLowerCase();
  const rest = text.slice(schemeEnd + 3);
  switch (scheme) {
    case 'http':
      return { raw, target: hostPort(stripPath(rest), raw), secure: false };
    case 'https':
      return { raw, target: hostPort(stripPath(rest), raw), secure: true };
    case 'unix':
    case 'unixs':
      if (rest.length === 0) throw new EndpointError(`endpoint ${raw}: missing socket path`);
      return { raw, target: `unix:${rest}`, secure: scheme === 'unixs' };
    default:
      throw new EndpointError(`endpoint ${raw}: unsupported scheme ${scheme}`);
  }
}

function stripPath(rest: string): string {
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}

function hostPort(text: string, raw: string): string {
  if (text.length === 0) throw new EndpointError(`endpoint ${raw}: missing host`);
  if (text.startsWith('[') && !text.includes(']')) throw new EndpointError(`endpoint ${raw}: unterminated IPv6 address`);
  return text;
}
