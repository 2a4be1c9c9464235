/**
 * A strict reader of Prometheus' text exposition format 0.0.4, for tests: it throws, naming the
 * line, on anything the format does not allow (prometheus.io/docs/instrumenting/exposition_formats,
 * and the rules of Go's expfmt text parser, which Prometheus scrapes with):
 *
 * - every line ends with \n, the last one included; no blank lines;
 * - `# HELP name text` and `# TYPE name kind` at most once per name, TYPE before the name's first
 *   sample; kinds counter, gauge, histogram, summary, untyped;
 * - a sample is `name{label="value",...} value`, names `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
 *   `[a-zA-Z_][a-zA-Z0-9_]*` (not `__`), each once; values escape only `\\`, `\"` and `\n`;
 *   the value is a float as Go reads it (NaN, +Inf, -Inf included);
 * - a family's lines are one group (no interleaving with another family), each series once;
 * - a histogram has `_bucket` series with `le`, increasing, cumulative, ending at `+Inf` equal to
 *   `_count`, and `_sum` and `_count` for each label set;
 * - a counter's value is not negative.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help?: string;
  type: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/;

function parseValue(text: string, where: string): number {
  if (!FLOAT.test(text)) throw new Error(`${where}: "${text}" is not a value`);
  if (text.endsWith("Inf")) return text.startsWith("-") ? -Infinity : Infinity;
  if (text.endsWith("NaN")) return Number.NaN;
  return Number(text);
}

function unescapeHelp(text: string, where: string): string {
  return text.replace(/\\(.)/g, (_, c: string) => {
    if (c === "\\") return "\\";
    if (c === "n") return "\n";
    throw new Error(`${where}: HELP escapes only \\\\ and \\n, not \\${c}`);
  });
}

function parseSample(line: string, where: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new Error(`${where}: no metric name`);
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith("{")) {
    rest = rest.slice(1);
    while (!rest.startsWith("}")) {
      const label = LABEL.exec(rest)?.[0];
      if (!label) throw new Error(`${where}: a label name is expected at "${rest}"`);
      if (label.startsWith("__")) throw new Error(`${where}: label ${label} is reserved`);
      if (Object.hasOwn(labels, label)) throw new Error(`${where}: label ${label} twice`);
      rest = rest.slice(label.length);
      if (!rest.startsWith('="')) throw new Error(`${where}: ="..." is expected after ${label}`);
      rest = rest.slice(2);
      let value = "";
      for (;;) {
        const c = rest[0];
        if (c === undefined) throw new Error(`${where}: the value of ${label} is not closed`);
        if (c === '"') break;
        if (c === "\n") throw new Error(`${where}: a raw newline in a label value`);
        if (c === "\\") {
          const e = rest[1];
          if (e === "\\") value += "\\";
          else if (e === '"') value += '"';
          else if (e === "n") value += "\n";
          else throw new Error(`${where}: label values escape only \\\\, \\" and \\n, not \\${e}`);
          rest = rest.slice(2);
          continue;
        }
        value += c;
        rest = rest.slice(1);
      }
      labels[label] = value;
      rest = rest.slice(1);
      if (rest.startsWith(",")) rest = rest.slice(1);
      else if (!rest.startsWith("}")) throw new Error(`${where}: , or } is expected at "${rest}"`);
    }
    rest = rest.slice(1);
  }
  const m = /^ ([^ ]+)(?: (-?\d+))?$/.exec(rest);
  if (!m) throw new Error(`${where}: " VALUE [TIMESTAMP]" is expected, not "${rest}"`);
  return { name, labels, value: parseValue(m[1]!, where) };
}

/** The family a sample belongs to: histograms' suffixes name their family. */
function familyOf(sample: string, types: Map<string, string>): string {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = sample.slice(0, -suffix.length);
    if (sample.endsWith(suffix) && (types.get(base) === "histogram" || types.get(base) === "summary"))
      return base;
  }
  return sample;
}

const seriesKey = (s: Sample) =>
  `${s.name}{${Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(s.labels[k])}`)
    .join(",")}}`;

export function parseExposition(text: string): Family[] {
  if (!text.endsWith("\n")) throw new Error("the text does not end with a newline");
  const families = new Map<string, Family>();
  const types = new Map<string, string>();
  const closed = new Set<string>();
  const seen = new Set<string>();
  let current: string | undefined;
  const enter = (name: string, where: string) => {
    if (current === name) return;
    if (closed.has(name)) throw new Error(`${where}: ${name}'s lines are not in one group`);
    if (current !== undefined) closed.add(current);
    current = name;
  };
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { name, type: "untyped", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  text
    .slice(0, -1)
    .split("\n")
    .forEach((line, i) => {
      const where = `line ${i + 1}`;
      if (line === "") throw new Error(`${where}: a blank line`);
      if (line.startsWith("#")) {
        const m = /^# (HELP|TYPE) ([^ ]+)(?: (.*))?$/.exec(line);
        if (!m) return; // another comment
        const [, what, name, rest] = m as unknown as [string, string, string, string | undefined];
        if (!NAME.test(name) || NAME.exec(name)![0] !== name)
          throw new Error(`${where}: "${name}" is not a metric name`);
        enter(name, where);
        const f = family(name);
        if (what === "HELP") {
          if (f.help !== undefined) throw new Error(`${where}: a second HELP for ${name}`);
          f.help = unescapeHelp(rest ?? "", where);
        } else {
          if (types.has(name)) throw new Error(`${where}: a second TYPE for ${name}`);
          if (f.samples.length > 0) throw new Error(`${where}: TYPE for ${name} after its samples`);
          if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest ?? ""))
            throw new Error(`${where}: "${rest}" is not a metric type`);
          types.set(name, rest!);
          f.type = rest!;
        }
        return;
      }
      const sample = parseSample(line, where);
      const name = familyOf(sample.name, types);
      enter(name, where);
      const key = seriesKey(sample);
      if (seen.has(key)) throw new Error(`${where}: the series ${key} appears twice`);
      seen.add(key);
      const f = family(name);
      if (f.type === "counter" && !(sample.value >= 0)) throw new Error(`${where}: a counter below zero`);
      if (f.type === "histogram" && sample.name === name)
        throw new Error(`${where}: a histogram's samples are ${name}_bucket, _sum and _count`);
      f.samples.push(sample);
    });
  for (const f of families.values()) if (f.type === "histogram") checkHistogram(f);
  return [...families.values()];
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name === `${f.name}_bucket`) {
      if (le === undefined) throw new Error(`${f.name}: a bucket without le`);
      g.buckets.push([parseValue(le, `${f.name} le`), s.value]);
    } else if (s.name === `${f.name}_sum`) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [key, g] of groups) {
    if (g.sum === undefined || g.count === undefined)
      throw new Error(`${f.name}${key}: no _sum or no _count`);
    const last = g.buckets.at(-1);
    if (!last || last[0] !== Infinity) throw new Error(`${f.name}${key}: the last bucket is not le="+Inf"`);
    if (last[1] !== g.count) throw new Error(`${f.name}${key}: the +Inf bucket is not _count`);
    g.buckets.forEach(([le, n], i) => {
      if (i === 0) return;
      const [ple, pn] = g.buckets[i - 1]!;
      if (!(le > ple)) throw new Error(`${f.name}${key}: buckets are not in increasing le order`);
      if (n < pn) throw new Error(`${f.name}${key}: buckets are not cumulative`);
    });
  }
}
