/**
 * Health endpoints.
 *
 * /health is etcd 3.4's: GET only; alarms not excluded by ?exclude=NAME make it false, then no leader,
 * then a linearizable read that fails within a second. 200 {"health":"true"} or 503 {"health":"false"}
 * (3.4 has no "reason" field).
 *
 * /livez and /readyz are etcd 3.5's (3.4 has neither): named checks run in order, a failure is 503 with
 * one "[-]name failed: reason" line per failed check; success is "ok", preceded by "[+]name ok" lines when
 * ?verbose is given. ?exclude=name skips a check; /readyz/<name> runs only that one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

/** What the checks need from the member. */
export interface HealthSource {
  /** Names of the active alarms (NOSPACE, CORRUPT), as etcd's AlarmType strings. */
  alarms(): Promise<readonly string[]>;
  hasLeader(): boolean;
  /** Resolves once a read would be linearizable (a ReadIndex round); /health's quorum check. */
  quorumRead(): Promise<void>;
  /** A linearizable Range of one key; rejects with the server's error. */
  linearizableRead(): Promise<void>;
  /** A serializable (local) Range of one key. */
  serializableRead(): Promise<void>;
  isLearner(): boolean;
  /** Each /health answer, for etcd_server_health_{success,failures}. */
  onHealth?(healthy: boolean): void;
}

type Req = IncomingMessage | Http2ServerRequest;
type Res = ServerResponse | Http2ServerResponse;

/** etcd's /health gives its quorum read one second. */
const healthReadTimeoutMs = 1000;

interface Check {
  readonly name: string;
  run(source: HealthSource): Promise<void>;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const livezChecks: readonly Check[] = [
  { name: 'serializable_read', run: (s) => s.serializableRead() },
];

const readyzChecks: readonly Check[] = [
  {
    name: 'data_corruption',
    run: async (s) => {
      if ((await s.alarms()).includes('CORRUPT')) throw new Error('alarm activated: CORRUPT');
    },
  },
  { name: 'serializable_read', run: (s) => s.serializableRead() },
  { name: 'linearizable_read', run: (s) => s.linearizableRead() },
  {
    name: 'non_learner',
    run: async (s) => {
      if (s.isLearner()) throw new Error('not supported for learner');
    },
  },
];

/** Go's http.Error: the text plus a newline, plain text, no sniffing. */
function httpError(res: Res, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(`${text}\n`);
}

function refuseMethod(req: Req, res: Res): boolean {
  if (req.method === 'GET') return false;
  res.setHeader('Allow', 'GET');
  httpError(res, 405, 'Method Not Allowed');
  return true;
}

function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((_, reject) => {
    timer = setTimeout(() => reject(new Error('context deadline exceeded')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** etcd 3.4's checkHealth. */
export async function checkHealth(source: HealthSource, excluded: ReadonlySet<string>): Promise<boolean> {
  const alarms = await source.alarms();
  if (alarms.some((a) => !excluded.has(a))) return false;
  if (!source.hasLeader()) return false;
  try {
    await withTimeout(source.quorumRead(), healthReadTimeoutMs);
    return true;
  } catch {
    return false;
  }
}

async function serveHealth(source: HealthSource, url: URL, res: Res): Promise<void> {
  const excluded = new Set(url.searchParams.getAll('exclude').filter((a) => a.length > 0));
  let healthy: boolean;
  try {
    healthy = await checkHealth(source, excluded);
  } catch {
    healthy = false;
  }
  source.onHealth?.(healthy);
  if (!healthy) {
    httpError(res, 503, JSON.stringify({ health: 'false' }));
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(JSON.stringify({ health: 'true' }));
}

/** Runs the checks in order; the report has a line per failed check, and per passed one when verbose. */
export async function runChecks(source: HealthSource, checks: readonly Check[], verbose: boolean): Promise<{ ok: boolean; report: string }> {
  let ok = true;
  let report = '';
  for (const check of checks) {
    try {
      await check.run(source);
      if (verbose) report += `[+]${check.name} ok\n`;
    } catch (err) {
      ok = false;
      report += `[-]${check.name} failed: ${errorText(err)}\n`;
    }
  }
  return { ok, report };
}

async function serveChecks(source: HealthSource, checks: readonly Check[], url: URL, res: Res): Promise<void> {
  const verbose = url.searchParams.has('verbose');
  const { ok, report } = await runChecks(source, checks, verbose);
  if (!ok) {
    // etcd always explains a failure, verbose or not.
    httpError(res, 503, report);
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.end(`${report}ok\n`);
}

/** The checks a path names: the root runs all but ?exclude=d ones, a sub-path only its own. */
function checksFor(path: string, url: URL): readonly Check[] | undefined {
  for (const [root, checks] of [['/livez', livezChecks], ['/readyz', readyzChecks]] as const) {
    if (path === root) {
      const excluded = new Set(url.searchParams.getAll('exclude'));
      return checks.filter((c) => !excluded.has(c.name));
    }
    if (path.startsWith(`${root}/`)) {
      const one = checks.find((c) => `${root}/${c.name}` === path);
      return one === undefined ? undefined : [one];
    }
  }
  return undefined;
}

/** Whether the path is one of the health endpoints. */
export function isHealthPath(path: string): boolean {
  return path === '/health' || checksFor(path, new URL('http://x/')) !== undefined;
}

/** Serves /health, /livez[/name] and /readyz[/name]; the caller routes only those paths here. */
export function serveHealthEndpoint(source: HealthSource, req: Req, res: Res): void {
  if (refuseMethod(req, res)) return;
  const url = new URL(req.url ?? '/', 'http://localhost');
  const failed = (err: unknown): void => httpError(res, 500, errorText(err));
  if (url.pathname === '/health') {
    serveHealth(source, url, res).catch(failed);
    return;
  }
  const checks = checksFor(url.pathname, url);
  if (checks === undefined) {
    httpError(res, 404, '404 page not found');
    return;
  }
  serveChecks(source, checks, url, res).catch(failed);
}
