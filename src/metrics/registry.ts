/**
 * A small Prometheus registry: counters, gauges and histograms with labels, written out in the text
 * exposition format 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats): for each family a
 * `# HELP` and a `# TYPE` line, then its samples, one per line, `name{label="value",...} value`.
 *
 * - Names are checked when a metric is defined (`[a-zA-Z_:][a-zA-Z0-9_:]*`, labels
 *   `[a-zA-Z_][a-zA-Z0-9_]*` and not `__`-prefixed, which Prometheus keeps for itself); a counter's
 *   name ends in `_total`, as OpenMetrics requires and Prometheus' linter asks.
 * - Label values are escaped (`\` `"` and newline), HELP text too (`\` and newline).
 * - Each metric has a bound on its series (`maxSeries`, 1,000 by default): a label set past it is
 *   not recorded but counted in `isched_metrics_series_dropped_total{metric}`, so that a bug that
 *   puts an address or a message id into a label cannot grow the process's memory without end.
 *   Labels whose values come from outside (a peer's domain) go through a CappedLabel first.
 * - A gauge may be read when the registry is written out (`collect`), for values that live elsewhere
 *   (the queue's depth in the database); a collector that throws leaves its gauge out of that scrape
 *   and is counted in `isched_metrics_collect_errors_total{metric}`.
 *
 * No dependency, no global state: the server makes one registry and hands out its metrics.
 */

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export type Labels<L extends string> = Readonly<Record<L, string>>;

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labels?: readonly L[];
  /** Label sets kept at most (default 1,000). */
  maxSeries?: number;
}

type Kind = "counter" | "gauge" | "histogram";

interface Family {
  readonly name: string;
  readonly help: string;
  readonly kind: Kind;
  /** The sample lines, written out. */
  lines(): string[];
}

/** A number as Prometheus reads it (Go's ParseFloat): +Inf, -Inf, NaN, or JavaScript's decimal form. */
export function formatValue(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

export const escapeLabelValue = (v: string): string =>
  v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

const escapeHelp = (v: string): string => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function labelText(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escapeLabelValue(values[i]!)}"`).join(",")}}`;
}

/** Series of one metric, keyed by their label values, in the order they first appeared. */
class Series<V> {
  readonly #map = new Map<string, { values: readonly string[]; state: V }>();
  constructor(
    readonly names: readonly string[],
    readonly max: number,
    readonly onDrop: () => void,
    readonly fresh: () => V,
  ) {}

  /** The state of this label set, or undefined when past the bound. */
  get(labels: Readonly<Record<string, string>>): V | undefined {
    const values = this.names.map((n) => {
      const v = labels[n];
      if (typeof v !== "string") throw new TypeError(`label ${n} has no value`);
      return v;
    });
    const key = values.join("\u0000");
    const found = this.#map.get(key);
    if (found) return found.state;
    if (this.#map.size >= this.max) {
      this.onDrop();
      return undefined;
    }
    const state = this.fresh();
    this.#map.set(key, { values, state });
    return state;
  }

  entries(): Iterable<{ values: readonly string[]; state: V }> {
    return this.#map.values();
  }

  clear(): void {
    this.#map.clear();
  }
}

export class Counter<L extends string> {
  readonly #series: Series<{ n: number }>;
  constructor(
    readonly name: string,
    names: readonly L[],
    max: number,
    onDrop: () => void,
  ) {
    this.#series = new Series(names, max, onDrop, () => ({ n: 0 }));
  }

  inc(labels: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`${this.name}: a counter only goes up (by ${by})`);
    const s = this.#series.get(labels);
    if (s) s.n += by;
  }

  /** The value of one series (tests, and the console if it wants the same figures). */
  value(labels: Labels<L>): number {
    for (const e of this.#series.entries()) {
      if (this.#series.names.every((n, i) => e.values[i] === labels[n as L])) return e.state.n;
    }
    return 0;
  }

  lines(): string[] {
    return [...this.#series.entries()].map(
      (e) => `${this.name}${labelText(this.#series.names, e.values)} ${formatValue(e.state.n)}`,
    );
  }
}

/** What a gauge's collector returns: one value, or one per label set. */
export type Collected<L extends string> = number | Iterable<readonly [Labels<L>, number]>;

export class Gauge<L extends string> {
  readonly #series: Series<{ v: number }>;
  constructor(
    readonly name: string,
    readonly names: readonly L[],
    max: number,
    onDrop: () => void,
    readonly collect: (() => Collected<L>) | undefined,
  ) {
    this.#series = new Series(names, max, onDrop, () => ({ v: 0 }));
  }

  set(labels: Labels<L>, v: number): void {
    const s = this.#series.get(labels);
    if (s) s.v = v;
  }

  inc(labels: Labels<L>, by = 1): void {
    const s = this.#series.get(labels);
    if (s) s.v += by;
  }

  dec(labels: Labels<L>, by = 1): void {
    this.inc(labels, -by);
  }

  lines(): string[] {
    if (this.collect) {
      const got = this.collect();
      // What the collector no longer reports (a certificate no longer served) is gone.
      this.#series.clear();
      if (typeof got === "number") this.set({} as Labels<L>, got);
      else for (const [labels, v] of got) this.set(labels, v);
    }
    return [...this.#series.entries()].map(
      (e) => `${this.name}${labelText(this.names, e.values)} ${formatValue(e.state.v)}`,
    );
  }
}

export class Histogram<L extends string> {
  readonly #series: Series<{ counts: number[]; sum: number; count: number }>;
  constructor(
    readonly name: string,
    readonly names: readonly L[],
    readonly buckets: readonly number[],
    max: number,
    onDrop: () => void,
  ) {
    this.#series = new Series(names, max, onDrop, () => ({
      counts: buckets.map(() => 0),
      sum: 0,
      count: 0,
    }));
  }

  observe(labels: Labels<L>, v: number): void {
    if (Number.isNaN(v)) throw new RangeError(`${this.name}: cannot observe NaN`);
    const s = this.#series.get(labels);
    if (!s) return;
    // Cumulative on output: here each observation counts in the first bucket that holds it.
    const i = this.buckets.findIndex((b) => v <= b);
    if (i !== -1) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  lines(): string[] {
    const out: string[] = [];
    const names = [...this.names, "le"];
    for (const e of this.#series.entries()) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += e.state.counts[i]!;
        out.push(`${this.name}_bucket${labelText(names, [...e.values, formatValue(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(names, [...e.values, "+Inf"])} ${e.state.count}`);
      out.push(`${this.name}_sum${labelText(this.names, e.values)} ${formatValue(e.state.sum)}`);
      out.push(`${this.name}_count${labelText(this.names, e.values)} ${e.state.count}`);
    }
    return out;
  }
}

export class Registry {
  readonly #families: Family[] = [];
  readonly #names = new Set<string>();
  readonly #dropped: Counter<"metric">;
  readonly #collectErrors: Counter<"metric">;

  constructor() {
    // Bounded by the number of metrics defined: their own names are the label values.
    this.#dropped = this.counter({
      name: "isched_metrics_series_dropped_total",
      help: "Label sets not recorded because their metric has as many series as it may keep.",
      labels: ["metric"],
    });
    this.#collectErrors = this.counter({
      name: "isched_metrics_collect_errors_total",
      help: "Scrapes in which a gauge could not read its value (it was left out of that scrape).",
      labels: ["metric"],
    });
  }

  counter<L extends string = never>(o: MetricOptions<L>): Counter<L> {
    if (!o.name.endsWith("_total")) throw new Error(`counter ${o.name}: its name must end in _total`);
    const labels = this.#define(o, "counter");
    const c = new Counter<L>(o.name, labels, o.maxSeries ?? 1000, () => this.#drop(o.name));
    this.#families.push({ name: o.name, help: o.help, kind: "counter", lines: () => c.lines() });
    return c;
  }

  gauge<L extends string = never>(o: MetricOptions<L> & { collect?: () => Collected<L> }): Gauge<L> {
    const labels = this.#define(o, "gauge");
    const g = new Gauge<L>(o.name, labels, o.maxSeries ?? 1000, () => this.#drop(o.name), o.collect);
    this.#families.push({ name: o.name, help: o.help, kind: "gauge", lines: () => g.lines() });
    return g;
  }

  histogram<L extends string = never>(o: MetricOptions<L> & { buckets: readonly number[] }): Histogram<L> {
    const labels = this.#define(o, "histogram");
    if (labels.includes("le" as L)) throw new Error(`histogram ${o.name}: "le" is the bucket label`);
    const buckets = [...o.buckets];
    if (
      buckets.length === 0 ||
      buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!))
    )
      throw new Error(`histogram ${o.name}: buckets must be finite and increasing`);
    const h = new Histogram<L>(o.name, labels, buckets, o.maxSeries ?? 1000, () => this.#drop(o.name));
    this.#families.push({ name: o.name, help: o.help, kind: "histogram", lines: () => h.lines() });
    return h;
  }

  /** The exposition text: every family with its HELP and TYPE lines, then its samples. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families) {
      let lines: string[];
      try {
        lines = f.lines();
      } catch {
        this.#collectErrors.inc({ metric: f.name });
        lines = [];
      }
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`, ...lines);
    }
    return `${out.join("\n")}\n`;
  }

  #define<L extends string>(o: MetricOptions<L>, kind: Kind): readonly L[] {
    if (!METRIC_NAME.test(o.name)) throw new Error(`${kind} ${o.name}: not a metric name`);
    // A histogram's series carry suffixes: those names are taken too.
    const taken =
      kind === "histogram" ? [o.name, `${o.name}_bucket`, `${o.name}_sum`, `${o.name}_count`] : [o.name];
    for (const n of taken) {
      if (this.#names.has(n)) throw new Error(`${kind} ${o.name}: the name ${n} is already defined`);
    }
    const labels = o.labels ?? [];
    for (const l of labels) {
      if (!LABEL_NAME.test(l) || l.startsWith("__"))
        throw new Error(`${kind} ${o.name}: "${l}" is not a label name`);
    }
    if (new Set(labels).size !== labels.length) throw new Error(`${kind} ${o.name}: a label is named twice`);
    for (const n of taken) this.#names.add(n);
    return labels;
  }

  #drop(metric: string): void {
    this.#dropped.inc({ metric });
  }
}

/**
 * A label whose values come from outside (a peer's domain): the first `max` distinct values are
 * kept as they are, any later one becomes `other`, so a metric has at most max + 1 series per other
 * label set however many peers there are. First come, first kept: the peers a server talks to are
 * the same from day to day, and a stable set keeps every series' history continuous.
 */
export class CappedLabel {
  readonly #kept = new Set<string>();
  constructor(
    readonly max: number,
    readonly other = "other",
  ) {}

  value(raw: string): string {
    if (this.#kept.has(raw)) return raw;
    if (this.#kept.size >= this.max || raw === this.other) return this.other;
    this.#kept.add(raw);
    return raw;
  }
}
