import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { CappedLabel, formatValue, Registry } from "../../src/metrics/registry.ts";
import { parseExposition } from "./_exposition.ts";

const PYTHON = "/usr/bin/python3";

/** Prometheus' own Python client parses the text: an independent reader of the same format. */
function pythonParse(
  text: string,
): { name: string; type: string; samples: [string, Record<string, string>, number | string][] }[] {
  const script = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    value = lambda v: v if math.isfinite(v) else str(v)
    out.append({"name": f.name, "type": f.type, "samples": [[s.name, s.labels, value(s.value)] for s in f.samples]})
print(json.dumps(out))
`;
  const r = Bun.spawnSync([PYTHON, "-c", script], { stdin: new TextEncoder().encode(text) });
  if (r.exitCode !== 0) throw new Error(`the Python parser refused the text: ${r.stderr.toString()}`);
  return JSON.parse(r.stdout.toString());
}

function sample(): Registry {
  const r = new Registry();
  const c = r.counter<"method" | "path">({
    name: "demo_requests_total",
    help: 'Requests\nby "method" \\ path.',
    labels: ["method", "path"],
  });
  c.inc({ method: "POST", path: '/a"b' });
  c.inc({ method: "POST", path: '/a"b' }, 2);
  c.inc({ method: "GET", path: "C:\\dir\nnext" });
  const g = r.gauge({ name: "demo_temperature", help: "A gauge." });
  g.set({}, -1.5);
  const h = r.histogram<"route">({
    name: "demo_seconds",
    help: "A histogram.",
    labels: ["route"],
    buckets: [0.1, 1, 10],
  });
  for (const v of [0.05, 0.1, 0.5, 3, 100]) h.observe({ route: "x" }, v);
  r.gauge({ name: "demo_limit", help: "Infinite.", collect: () => Number.POSITIVE_INFINITY });
  return r;
}

describe("the exposition format", () => {
  test("HELP and TYPE before each family, escaped label values, cumulative buckets", () => {
    const text = sample().render();
    expect(text).toContain('# HELP demo_requests_total Requests\\nby "method" \\\\ path.\n');
    expect(text).toContain("# TYPE demo_requests_total counter\n");
    expect(text).toContain('demo_requests_total{method="POST",path="/a\\"b"} 3\n');
    expect(text).toContain('demo_requests_total{method="GET",path="C:\\\\dir\\nnext"} 1\n');
    expect(text).toContain(
      [
        'demo_seconds_bucket{route="x",le="0.1"} 2',
        'demo_seconds_bucket{route="x",le="1"} 3',
        'demo_seconds_bucket{route="x",le="10"} 4',
        'demo_seconds_bucket{route="x",le="+Inf"} 5',
        'demo_seconds_sum{route="x"} 103.65',
        'demo_seconds_count{route="x"} 5',
      ].join("\n"),
    );
    expect(text).toContain("demo_limit +Inf\n");
  });

  test("a strict reader of the format takes it, and reads back every label value", () => {
    const families = parseExposition(sample().render());
    const requests = families.find((f) => f.name === "demo_requests_total")!;
    expect(requests.help).toBe('Requests\nby "method" \\ path.');
    expect(requests.samples.map((s) => s.labels.path)).toEqual(['/a"b', "C:\\dir\nnext"]);
    expect(families.map((f) => [f.name, f.type])).toEqual([
      ["isched_metrics_series_dropped_total", "counter"],
      ["isched_metrics_collect_errors_total", "counter"],
      ["demo_requests_total", "counter"],
      ["demo_temperature", "gauge"],
      ["demo_seconds", "histogram"],
      ["demo_limit", "gauge"],
    ]);
  });

  test.skipIf(!existsSync(PYTHON))("Prometheus' Python client reads the same values", () => {
    const families = pythonParse(sample().render());
    const requests = families.find((f) => f.name === "demo_requests")!;
    expect(requests.type).toBe("counter");
    expect(requests.samples).toEqual([
      ["demo_requests_total", { method: "POST", path: '/a"b' }, 3],
      ["demo_requests_total", { method: "GET", path: "C:\\dir\nnext" }, 1],
    ]);
    expect(families.find((f) => f.name === "demo_limit")!.samples).toEqual([["demo_limit", {}, "inf"]]);
    const histogram = families.find((f) => f.name === "demo_seconds")!;
    expect(histogram.samples.map(([n, l, v]) => `${n}${l.le ?? ""}=${v}`)).toEqual([
      "demo_seconds_bucket0.1=2",
      "demo_seconds_bucket1=3",
      "demo_seconds_bucket10=4",
      "demo_seconds_bucket+Inf=5",
      "demo_seconds_sum=103.65",
      "demo_seconds_count=5",
    ]);
  });

  test("values are written as Go's ParseFloat reads them", () => {
    expect([0, 3, -1.5, 1e21, 1e-7, Infinity, -Infinity, Number.NaN].map(formatValue)).toEqual([
      "0",
      "3",
      "-1.5",
      "1e+21",
      "1e-7",
      "+Inf",
      "-Inf",
      "NaN",
    ]);
    for (const v of ["1e+21", "1e-7"])
      expect(parseExposition(`# TYPE x gauge\nx ${v}\n`)[0]!.samples[0]!.value).toBe(Number(v));
  });

  test("the strict reader refuses what Prometheus would refuse", () => {
    const refused: [string, string][] = [
      ["x 1", "newline"],
      ["# TYPE x gauge\n\nx 1\n", "blank line"],
      ['x{a="1",a="2"} 1\n', "label a twice"],
      ['x{__a="1"} 1\n', "reserved"],
      ['x{a="\\t"} 1\n', "escape only"],
      ['x{a="1} 1\n', "not closed"],
      ["x one\n", "not a value"],
      ["# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", "one group"],
      ["x 1\nx 2\n", "appears twice"],
      ["x 1\n# TYPE x gauge\n", "after its samples"],
      ["# TYPE x counter\nx -1\n", "below zero"],
      [
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
        "not cumulative",
      ],
      ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', "+Inf"],
      ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', "not _count"],
      ["# TYPE x gauges\n", "not a metric type"],
    ];
    for (const [text, why] of refused) expect(() => parseExposition(text), why).toThrow(why);
  });
});

describe("defining metrics", () => {
  test("bad names, counters without _total, names taken twice, and histograms' own label are refused", () => {
    const r = new Registry();
    r.histogram({ name: "lat_seconds", help: "h", buckets: [1] });
    expect(() => r.gauge({ name: "2bad", help: "x" })).toThrow("not a metric name");
    expect(() => r.counter({ name: "hits", help: "x" })).toThrow("must end in _total");
    expect(() => r.gauge({ name: "lat_seconds_count", help: "x" })).toThrow("already defined");
    expect(() => r.gauge({ name: "g", help: "x", labels: ["__x"] })).toThrow('"__x" is not a label name');
    expect(() => r.gauge({ name: "g", help: "x", labels: ["a", "a"] })).toThrow("a label is named twice");
    expect(() => r.histogram({ name: "h", help: "x", labels: ["le"], buckets: [1] })).toThrow("bucket label");
    expect(() => r.histogram({ name: "h2", help: "x", buckets: [2, 1] })).toThrow("increasing");
    expect(() => r.histogram({ name: "h3", help: "x", buckets: [] })).toThrow("increasing");
  });

  test("a counter only goes up, and a histogram refuses NaN", () => {
    const r = new Registry();
    expect(() => r.counter({ name: "c_total", help: "c" }).inc({}, -1)).toThrow("only goes up");
    expect(() => r.histogram({ name: "h", help: "h", buckets: [1] }).observe({}, Number.NaN)).toThrow("NaN");
  });
});

describe("bounded series", () => {
  test("label sets past a metric's bound are not kept, and are counted", () => {
    const r = new Registry();
    const c = r.counter<"id">({ name: "by_id_total", help: "x", labels: ["id"], maxSeries: 3 });
    for (let i = 0; i < 10; i++) c.inc({ id: String(i) });
    const families = parseExposition(r.render());
    expect(families.find((f) => f.name === "by_id_total")!.samples.length).toBe(3);
    expect(families.find((f) => f.name === "isched_metrics_series_dropped_total")!.samples).toEqual([
      { name: "isched_metrics_series_dropped_total", labels: { metric: "by_id_total" }, value: 7 },
    ]);
  });

  test("a capped label keeps its first values and calls the rest other", () => {
    const peers = new CappedLabel(2);
    expect(["a", "b", "c", "a", "d", "other"].map((p) => peers.value(p))).toEqual([
      "a",
      "b",
      "other",
      "a",
      "other",
      "other",
    ]);
  });

  test("a gauge read at scrape time shows what its reader says now; a reader that fails is left out and counted", () => {
    const r = new Registry();
    let depth = 5;
    let fail = false;
    r.gauge<"state">({
      name: "depth",
      help: "x",
      labels: ["state"],
      collect: () => {
        if (fail) throw new Error("database is locked");
        return depth === 5 ? [[{ state: "a" }, 5]] : [[{ state: "b" }, depth]];
      },
    });
    const samples = () => parseExposition(r.render()).find((f) => f.name === "depth")!.samples;
    expect(samples()).toEqual([{ name: "depth", labels: { state: "a" }, value: 5 }]);
    depth = 7;
    expect(samples()).toEqual([{ name: "depth", labels: { state: "b" }, value: 7 }]);
    fail = true;
    expect(samples()).toEqual([]);
    expect(r.render()).toContain('isched_metrics_collect_errors_total{metric="depth"} 1\n');
  });
});
