/**
 * Test support: the Prometheus text format parsed (by parse-prometheus-text-format, a dev dependency
 * without types) into families keyed by name, and small lookups over them.
 */
import { createRequire } from 'node:module';

export interface Sample {
  readonly value?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly buckets?: Readonly<Record<string, string>>;
  readonly count?: string;
  readonly sum?: string;
}

export interface Family {
  readonly name: string;
  readonly help: string;
  /** COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED. */
  readonly type: string;
  readonly metrics: readonly Sample[];
}

const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

export function parseMetrics(text: string): Map<string, Family> {
  return new Map(parse(text).map((f) => [f.name, f]));
}

/** The sample of `name` whose labels include `labels`; undefined when there is none. */
export function sample(families: ReadonlyMap<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}): Sample | undefined {
  return families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
}

/** A counter's or gauge's value (0 when the series is absent), or a histogram's count. */
export function valueOf(families: ReadonlyMap<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}): number {
  const s = sample(families, name, labels);
  if (s === undefined) return 0;
  return Number(s.count ?? s.value ?? 0);
}

/**
 * The value of one series read from the text directly, by its full name (e.g. a histogram's
 * name_count) and a subset of its labels; for labelled histograms, which the parser folds together.
 */
export function rawValue(text: string, series: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null || m[1] !== series) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((p) => [p[1], p[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}
