/**
 * Normalisation of etcdctl output from a multi-member cluster, so that a real etcd cluster and an etcd-ts
 * cluster started the same way and driven by the same script can be compared. It applies every rule of
 * ../normalise.ts (client retry warnings, health "took", status db size / raft index / version patch,
 * table padding, protobuf decoding) and adds only what a cluster makes necessary:
 *
 *  C1. Every member id (hex, %16x space-padded hex, decimal) -> <id:NAME>, the cluster id -> <cluster-id>.
 *      etcd hashes ids from the peer URLs, whose ports differ per run. Only ids the cluster itself
 *      reported are replaced, never "any big number". %16x pads a 15-digit id with a space: the padding
 *      goes with the id (its width is a function of the id's value).
 *  C2. Every port the test allocated -> <NAME.client>, <NAME.peer>, <NAME.peer2> (a member's second
 *      peer port, after `member update`): free ports are picked at run time.
 *  C3. Member order: etcd lists members (and so `endpoint * --cluster` rows) by id, i.e. by a hash of
 *      ports; `endpoint health` prints in order of completion. After C1/C2 the records are sorted: lines
 *      of simple output (and of `endpoint health`'s stderr, where it prints healthy endpoints), table body
 *      rows, blocks of fields output, elements of json arrays of records, and the name=url entries of
 *      ETCD_INITIAL_CLUSTER in `member add` output.
 *  C4. Raft terms equal to the leader's term at the time of the row -> <term>: elections are randomised
 *      and a split vote costs a term, so the term a cluster reaches is not a property of the server. A
 *      member whose term differs from the leader's keeps its number and shows as a mismatch.
 *  C5. `endpoint status` json/fields hold one record per member: ../normalise.ts's status rule (raft
 *      index only when equal to the applied index, db size, version patch) is applied to each record.
 * Hashes (`endpoint hashkv`), revisions, names, learner flags, started/unstarted, leader flags, exit codes
 * and error messages are NOT normalised.
 */
import type { CtlResult } from '../harness.js';
import { commandWords, normalise, outputFormat, type Normalised, type OutputFormat } from '../normalise.js';

export interface ClusterFacts {
  clusterId: bigint;
  /** Member id -> member name, for every member the cluster ever reported (removed ones included). */
  ids: ReadonlyMap<bigint, string>;
  /** Port -> label such as m1.client or m3.peer2. */
  ports: ReadonlyMap<number, string>;
  /** The leader's raft term when the row ran. */
  term: bigint;
}

const recordCommands = new Set(['member list', 'endpoint status', 'endpoint health', 'endpoint hashkv']);

export function normaliseCluster(result: CtlResult, options: { args: readonly string[]; facts: ClusterFacts }): Normalised {
  const words = commandWords(options.args);
  const command = words.join(' ');
  const format = outputFormat(options.args);
  const facts = options.facts;
  const pre: CtlResult = { ...result, stdout: replaceIds(result.stdout, facts), stderr: replaceIds(result.stderr, facts) };
  // ../normalise.ts replaces one member's id and ports; here C1/C2 do that for all, so it gets facts that
  // match nothing but the cluster id (the member id is set to the cluster id, already replaced by then).
  const neutral = { clusterId: facts.clusterId, memberId: facts.clusterId, clientPort: 0, peerPort: 0 };
  const base = command === 'endpoint status' && (format === 'json' || format === 'fields')
    ? normaliseStatusRecords(pre, { args: options.args, format, neutral })
    : normalise(pre, { args: options.args, facts: neutral });
  let stdout = replacePorts(replaceIds(base.stdout, facts), facts);
  const stderr = replacePorts(replaceIds(base.stderr, facts), facts);
  stdout = replaceTerms(stdout, { format, command, term: facts.term });
  let sortedErr = stderr;
  if (recordCommands.has(command)) {
    stdout = sortRecords(stdout, format);
    // `endpoint health` prints the simple form of healthy endpoints on stderr, in order of completion
    if (command === 'endpoint health' && format === 'simple') sortedErr = sortRecords(stderr, 'simple');
  }
  if (command === 'member add') stdout = sortInitialCluster(stdout);
  if (format === 'json' || format === 'protobuf') stdout = sortJsonArray(stdout, '"members":[');
  return { code: base.code, stdout, stderr: sortedErr };
}

// C1
function replaceIds(text: string, facts: ClusterFacts): string {
  let out = text;
  const all: [bigint, string][] = [[facts.clusterId, '<cluster-id>'], ...[...facts.ids].map(([id, name]): [bigint, string] => [id, `<id:${name}>`])];
  for (const [id, placeholder] of all) {
    const hex = id.toString(16);
    // "%16x": a separating space plus padding up to 16 columns
    if (hex.length < 16) out = out.replace(new RegExp(` {${17 - hex.length}}${hex}\\b`, 'g'), ` ${hex}`);
    out = out.replace(new RegExp(`\\b(${id.toString(10)}|${hex})\\b`, 'g'), placeholder);
  }
  return out;
}

// C2
function replacePorts(text: string, facts: ClusterFacts): string {
  return text.replace(/127\.0\.0\.1:(\d+)\b/g, (whole, port: string) => {
    const label = facts.ports.get(Number(port));
    return label === undefined ? whole : `127.0.0.1:<${label}>`;
  });
}

// C4
function replaceTerms(text: string, options: { format: OutputFormat; command: string; term: bigint }): string {
  const t = options.term.toString();
  let out = text
    .replace(new RegExp(`"(raft_term|raftTerm)":(")?${t}\\b(")?`, 'g'), (_w, k: string, q1?: string, q2?: string) => `"${k}":${q1 ?? ''}<term>${q2 ?? ''}`)
    .replace(new RegExp(`"RaftTerm" : ${t}$`, 'gm'), '"RaftTerm" : <term>');
  if (options.command !== 'endpoint status') return out;
  if (options.format === 'simple') {
    out = out.split('\n').map((line) => {
      const cells = line.split(', ');
      if (cells.length >= 9 && cells[6] === t) cells[6] = '<term>';
      return cells.join(', ');
    }).join('\n');
  }
  if (options.format === 'table') out = replaceTableColumn(out, { column: 'RAFT TERM', from: t, to: '<term>' });
  return out;
}

function replaceTableColumn(text: string, options: { column: string; from: string; to: string }): string {
  let index = -1;
  return text.split('\n').map((line) => {
    if (!line.startsWith('|')) return line;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (index < 0) {
      index = cells.indexOf(options.column);
      return line;
    }
    if (cells[index] === options.from) cells[index] = options.to;
    return `| ${cells.join(' | ')} |`;
  }).join('\n');
}

// C5
function normaliseStatusRecords(result: CtlResult, options: { args: readonly string[]; format: OutputFormat;
  neutral: { clusterId: bigint; memberId: bigint; clientPort: number; peerPort: number } }): Normalised {
  const one = (stdout: string): string => normalise({ ...result, stdout, stdoutBytes: Buffer.from(stdout) },
    { args: options.args, facts: options.neutral }).stdout;
  const whole = normalise(result, { args: options.args, facts: options.neutral });
  if (result.code !== 0) return whole;
  if (options.format === 'fields') return { ...whole, stdout: result.stdout.split('\n\n').map(one).join('\n\n') };
  const trimmed = result.stdout.trimEnd();
  const elements = jsonArrayElements(trimmed, 0);
  if (elements === undefined) return whole;
  return { ...whole, stdout: `[${elements.map(one).join(',')}]${result.stdout.slice(trimmed.length)}` };
}

// C3
function sortRecords(text: string, format: OutputFormat): string {
  if (format === 'simple') {
    const lines = text.split('\n');
    const last = lines.at(-1) === '' ? lines.pop() : undefined;
    return [...lines.sort(), ...(last === undefined ? [] : [last])].join('\n');
  }
  if (format === 'table') return sortTableRows(text);
  if (format === 'fields') return sortFieldBlocks(text);
  if (format === 'json') return text.trimStart().startsWith('[') ? sortJsonArray(text, '') : text;
  return text;
}

function sortTableRows(text: string): string {
  const lines = text.split('\n');
  const borders = lines.flatMap((line, i) => (line.startsWith('+') ? [i] : []));
  const [, headerEnd, bodyEnd] = borders;
  if (headerEnd === undefined || bodyEnd === undefined) return text;
  const body = lines.slice(headerEnd + 1, bodyEnd).sort();
  return [...lines.slice(0, headerEnd + 1), ...body, ...lines.slice(bodyEnd)].join('\n');
}

/** Fields output: records separated by blank lines; member list puts a header before its first record. */
function sortFieldBlocks(text: string): string {
  const end = text.endsWith('\n\n') ? '\n\n' : text.endsWith('\n') ? '\n' : '';
  const blocks = text.slice(0, text.length - end.length).split('\n\n');
  const first = blocks[0] ?? '';
  const firstLines = first.split('\n');
  const recordStart = firstLines.findIndex((line, i) => i > 0 && line.startsWith('"ID" :'));
  const header = recordStart > 0 ? firstLines.slice(0, recordStart) : [];
  if (recordStart > 0) blocks[0] = firstLines.slice(recordStart).join('\n');
  const sorted = blocks.sort();
  return [...header, sorted.join('\n\n')].join('\n') + end;
}

function sortInitialCluster(text: string): string {
  return text.replace(/^ETCD_INITIAL_CLUSTER="([^"]*)"$/m, (_w, list: string) => `ETCD_INITIAL_CLUSTER="${list.split(',').sort().join(',')}"`);
}

/** Sorts the elements of the JSON array that starts right after `marker` (or the text itself when ''). */
function sortJsonArray(text: string, marker: string): string {
  const at = marker === '' ? text.indexOf('[') : text.indexOf(marker);
  if (at < 0) return text;
  const open = marker === '' ? at : at + marker.length - 1;
  const elements = jsonArrayElements(text, open);
  if (elements === undefined) return text;
  const close = open + 1 + elements.join(',').length;
  return `${text.slice(0, open + 1)}${[...elements].sort().join(',')}${text.slice(close)}`;
}

/** The top-level elements (as text) of the JSON array whose '[' is at `open`; undefined if malformed. */
function jsonArrayElements(text: string, open: number): string[] | undefined {
  if (text[open] !== '[') return undefined;
  const elements: string[] = [];
  let depth = 0;
  let inString = false;
  let start = open + 1;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) {
        if (i > start) elements.push(text.slice(start, i));
        return elements;
      }
    } else if (ch === ',' && depth === 1) {
      elements.push(text.slice(start, i));
      start = i + 1;
    }
  }
  return undefined;
}

/** C1 and C2 alone, for showing a command line (ids and ports in its arguments) in a comparable form. */
export function normaliseText(text: string, facts: ClusterFacts): string {
  return replacePorts(replaceIds(text, facts), facts);
}
