/**
 * Normalisation of etcdctl output, so that two servers started the same way and driven by the same script
 * can be compared byte for byte. Each rule below exists because the value LEGITIMATELY differs between two
 * correct servers; everything else (revisions, raft terms, keys, values, versions of keys, counts, `more`,
 * exit codes, error messages and gRPC codes) must be identical.
 *
 * The rules, each one minimal:
 *  1. Member and cluster ids (decimal in json/fields/protobuf, %x hex in simple/table) -> <member-id>,
 *     <cluster-id>. etcd derives them from the peer URLs, which contain a port that differs per run.
 *     Only the ids learnt from the target itself are replaced, never "any big number".
 *  2. The member's own client and peer ports in URLs / endpoints -> <client-port>, <peer-port>: each
 *     server listens on a free port picked at run time.
 *  3. etcdctl's client-side retry warning (stderr): its timestamp and its per-process client UUID.
 *     The rest of that line, which carries the gRPC code and message, is kept.
 *  4. `endpoint health` "took": a wall-clock duration.
 *  5. `endpoint status`:
 *     - db size and db size in use: the storage engine's file layout, not part of the API;
 *       replaced only when positive.
 *     - raft index and raft applied index: the number of internal raft entries (conf changes, member
 *       attribute and cluster version proposals) is an implementation detail. Replaced only when
 *       positive, and the applied index only when equal to the raft index (a quiescent server has
 *       applied all it committed), so a server reporting 0 or lagging still shows as a mismatch.
 *     - server version: only its patch level may differ; major.minor is kept (clients gate features
 *       on it), e.g. 3.4.23 -> <version 3.4.x>.
 *  6. `-w table`: column widths and padding follow from rules 1-5 (a hex id may be 15 or 16 chars), so
 *     tables are compared cell by cell.
 *  7. `-w protobuf`: the bytes are etcdctl's re-encoding of the response; they are decoded with our
 *     generated codecs and compared as JSON after rules 1-2 (ids change varint lengths, hence lengths
 *     of enclosing messages).
 *  8. Lease ids the server chose (`lease grant`): each is random per server. Only the ids learnt from
 *     that target's own grant output are replaced (16-digit hex, short hex, decimal) -> <lease-NAME>;
 *     client-chosen ids (as 7e57) stay as they are.
 *  9. `lease timetolive`'s remaining TTL: it counts down in real time and is truncated to whole seconds,
 *     so two correct servers asked a few milliseconds apart may differ by a second. Replaced by
 *     <countdown> only when it is within 3 s below the granted TTL (the script asks right after a grant
 *     or keep-alive); a wrong value (the full TTL + 1, 0, -1) stays visible.
 * raft_term is NOT normalised: both servers start as a fresh single member and must elect themselves
 * the same way (etcd: term 2), and nothing in the script changes terms.
 */
import {
  DeleteRangeResponse, MemberListResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse,
} from '../../src/gen/etcd/etcdserver/etcdserverpb/rpc.js';
import type { CtlResult } from './harness.js';

export interface TargetFacts {
  clusterId: bigint;
  memberId: bigint;
  clientPort: number;
  peerPort: number;
  /** Server-chosen lease ids learnt so far, by the name the script gave them (rule 8). */
  leaseIds?: ReadonlyMap<string, bigint>;
}

export interface Normalised {
  code: number;
  stdout: string;
  stderr: string;
}

export type OutputFormat = 'simple' | 'json' | 'fields' | 'table' | 'protobuf';

/** What kind of command a row runs: its leading non-flag words, e.g. ['endpoint', 'status']. */
export function commandWords(args: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length && words.length < 2; i++) {
    const arg = args[i] ?? '';
    if (arg === '-w' || arg === '--write-out') i++;
    else if (!arg.startsWith('-')) words.push(arg);
  }
  return words;
}

export function outputFormat(args: readonly string[]): OutputFormat {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const value = arg.startsWith('--write-out=') || arg.startsWith('-w=') ? arg.slice(arg.indexOf('=') + 1)
      : arg === '-w' || arg === '--write-out' ? args[i + 1] ?? '' : undefined;
    if (value !== undefined) {
      if (!['simple', 'json', 'fields', 'table', 'protobuf'].includes(value)) throw new Error(`format ${value}`);
      return value as OutputFormat;
    }
  }
  return 'simple';
}

export function normalise(result: CtlResult, options: { args: readonly string[]; facts: TargetFacts }): Normalised {
  const words = commandWords(options.args);
  const format = outputFormat(options.args);
  let stdout = format === 'protobuf' && result.code === 0 ? decodeProtobuf(words, result.stdoutBytes) : result.stdout;
  const command = words.join(' ');
  if (command === 'endpoint status') stdout = normaliseStatus(stdout, format);
  let stderr = result.stderr;
  if (command === 'endpoint health') {
    // etcdctl prints the simple form of a healthy endpoint on stderr
    stdout = normaliseHealth(stdout, format);
    stderr = normaliseHealth(stderr, format);
  }
  if (format === 'table') stdout = normaliseTable(stdout);
  if (command === 'lease timetolive') stdout = normaliseCountdown(stdout, format);
  const ids = (text: string): string => replaceLeaseIds(replaceIdsAndPorts(text, options.facts), options.facts);
  return {
    code: result.code,
    stdout: ids(stdout),
    stderr: normaliseClientWarnings(ids(stderr)),
  };
}

// rule 8
export function replaceLeaseIds(text: string, facts: TargetFacts): string {
  let out = text;
  for (const [name, id] of facts.leaseIds ?? []) {
    const forms = [id.toString(16).padStart(16, '0'), id.toString(16), id.toString(10)];
    out = out.replace(new RegExp(`\\b(${forms.join('|')})\\b`, 'g'), `<lease-${name}>`);
  }
  return out;
}

// rule 9
function normaliseCountdown(text: string, format: OutputFormat): string {
  const near = (remaining: string, granted: string): boolean => {
    const gap = Number(granted) - Number(remaining);
    return Number(remaining) > 0 && gap >= 0 && gap <= 3;
  };
  if (format === 'simple') {
    return text.replace(/TTL\((\d+)s\), remaining\((-?\d+)s\)/g,
      (whole, granted: string, remaining: string) => near(remaining, granted) ? `TTL(${granted}s), remaining(<countdown>)` : whole);
  }
  if (format === 'json') {
    return text.replace(/"ttl":(-?\d+),"granted-ttl":(\d+)/g,
      (whole, remaining: string, granted: string) => near(remaining, granted) ? `"ttl":<countdown>,"granted-ttl":${granted}` : whole);
  }
  if (format === 'fields') {
    return text.replace(/"TTL" : (-?\d+)\n"GrantedTTL" : (\d+)/g,
      (whole, remaining: string, granted: string) => near(remaining, granted) ? `"TTL" : <countdown>\n"GrantedTTL" : ${granted}` : whole);
  }
  return text;
}

// rule 1 and 2
export function replaceIdsAndPorts(text: string, facts: TargetFacts): string {
  let out = text;
  for (const [id, placeholder] of [[facts.clusterId, '<cluster-id>'], [facts.memberId, '<member-id>']] as const) {
    out = out.replace(new RegExp(`\\b(${id.toString(10)}|${id.toString(16)})\\b`, 'g'), placeholder);
  }
  return out
    .replaceAll(`127.0.0.1:${facts.clientPort}`, '127.0.0.1:<client-port>')
    .replaceAll(`127.0.0.1:${facts.peerPort}`, '127.0.0.1:<peer-port>');
}

// rule 3
function normaliseClientWarnings(text: string): string {
  return text
    .replace(/"ts":"[^"]*"/g, '"ts":"<ts>"')
    .replace(/endpoint:\/\/client-[0-9a-f-]+\//g, 'endpoint://client-<uuid>/');
}

// rule 4
const goDuration = String.raw`(?:\d+(?:\.\d+)?(?:ms|µs|us|ns|h|m|s))+`;

function normaliseHealth(text: string, format: OutputFormat): string {
  if (format === 'simple') return text.replace(new RegExp(`took = ${goDuration}`, 'g'), 'took = <duration>');
  if (format === 'json') return text.replace(new RegExp(`"took":"${goDuration}"`, 'g'), '"took":"<duration>"');
  if (format === 'fields') return text.replace(new RegExp(`"Took" : ${goDuration}`, 'g'), '"Took" : <duration>');
  return text;
}

// rule 5
function version(value: string): string {
  const m = /^(\d+)\.(\d+)\.\d+$/.exec(value);
  return m === null ? value : `<version ${m[1]}.${m[2]}.x>`;
}

function dbSize(value: string): string {
  return /^[1-9]\d*$/.test(value) || /^[1-9]\d*(\.\d+)? [kMGT]?B$/.test(value) ? '<db-size>' : value;
}

function raftIndexes(index: string, applied: string): [string, string] {
  if (!/^[1-9]\d*$/.test(index)) return [index, applied];
  return ['<raft-index>', applied === index ? '<raft-index>' : applied];
}

function normaliseStatus(text: string, format: OutputFormat): string {
  if (format === 'simple') return text.split('\n').map(normaliseStatusLine).join('\n');
  if (format === 'json') {
    return replaceStatusFields(text, { version: /"version":"([^"]*)"/, dbSize: /"dbSize":(\d+)/,
      dbSizeInUse: /"dbSizeInUse":(\d+)/, raftIndex: /"raftIndex":(\d+)/, applied: /"raftAppliedIndex":(\d+)/ });
  }
  if (format === 'fields') {
    return replaceStatusFields(text, { version: /"Version" : "([^"]*)"/, dbSize: /"DBSize" : (\d+)/,
      dbSizeInUse: undefined, raftIndex: /"RaftIndex" : (\d+)/, applied: /"RaftAppliedIndex" : (\d+)/ });
  }
  return text;
}

/** simple: "endpoint, id, version, db size, is leader, is learner, raft term, raft index, applied, errors" */
function normaliseStatusLine(line: string): string {
  const cells = line.split(', ');
  if (cells.length < 9) return line;
  cells[2] = version(cells[2] ?? '');
  cells[3] = dbSize(cells[3] ?? '');
  [cells[7], cells[8]] = raftIndexes(cells[7] ?? '', cells[8] ?? '');
  return cells.join(', ');
}

interface StatusPatterns {
  version: RegExp; dbSize: RegExp; dbSizeInUse: RegExp | undefined; raftIndex: RegExp; applied: RegExp;
}

/** One status object per text (etcdctl prints one per endpoint; the tests use one endpoint). */
function replaceStatusFields(text: string, p: StatusPatterns): string {
  const swap = (t: string, re: RegExp | undefined, f: (v: string) => string): string => {
    if (re === undefined) return t;
    return t.replace(re, (whole, value: string) => whole.replace(value, f(value)));
  };
  const index = p.raftIndex.exec(text)?.[1] ?? '';
  const applied = p.applied.exec(text)?.[1] ?? '';
  const [indexOut, appliedOut] = raftIndexes(index, applied);
  let out = swap(text, p.version, version);
  out = swap(out, p.dbSize, dbSize);
  out = swap(out, p.dbSizeInUse, dbSize);
  out = swap(out, p.raftIndex, () => indexOut);
  return swap(out, p.applied, () => appliedOut);
}

// rule 6 (with rules 4 and 5 applied to the columns they concern)
function normaliseTable(text: string): string {
  let header: string[] = [];
  return text.split('\n').map((line) => {
    if (line.startsWith('+')) return '+';
    if (!line.startsWith('|')) return line;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (header.length === 0) {
      header = cells;
      return `| ${cells.join(' | ')} |`;
    }
    const at = (name: string): number => header.indexOf(name);
    const set = (name: string, f: (v: string) => string): void => {
      const i = at(name);
      if (i >= 0) cells[i] = f(cells[i] ?? '');
    };
    set('VERSION', version);
    set('DB SIZE', dbSize);
    set('TOOK', (v) => new RegExp(`^${goDuration}$`).test(v) ? '<duration>' : v);
    const [index, applied] = [at('RAFT INDEX'), at('RAFT APPLIED INDEX')];
    if (index >= 0 && applied >= 0) [cells[index], cells[applied]] = raftIndexes(cells[index] ?? '', cells[applied] ?? '');
    return `| ${cells.join(' | ')} |`;
  }).join('\n');
}

// rule 7
const protobufTypes: Record<string, { decode(b: Uint8Array): unknown; toJSON(m: never): unknown }> = {
  put: PutResponse, get: RangeResponse, del: DeleteRangeResponse, txn: TxnResponse, 'member list': MemberListResponse,
  // etcdctl 3.4 marshals clientv3's lease response structs, whose only protobuf part is the embedded
  // header: these commands print the response header alone.
  'lease grant': ResponseHeader, 'lease revoke': ResponseHeader, 'lease keep-alive': ResponseHeader,
  'lease timetolive': ResponseHeader, 'lease list': ResponseHeader,
};

function decodeProtobuf(words: readonly string[], bytes: Buffer): string {
  const name = protobufTypes[words.join(' ')] !== undefined ? words.join(' ') : (words[0] ?? '');
  const type = protobufTypes[name];
  if (type === undefined) return bytes.toString('utf8');
  try {
    return `protobuf(${name}) ${JSON.stringify(type.toJSON(type.decode(bytes) as never))}`;
  } catch (e) {
    return `protobuf(${name}) undecodable: ${String(e)}: ${bytes.toString('hex')}`;
  }
}
