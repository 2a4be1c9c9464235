/** Attempts by outcome as stacked bars, drawn as inline SVG (no library, nothing to download). */
import type { OutcomeBucket } from "../../src/store/sqlite/console-stats.ts";
import { h, svg, utc } from "../dom.ts";

export const OUTCOMES = ["delivered", "sent-imip", "pending", "temporary", "permanent", "cancelled"] as const;

export function outcomeChart(
  title: string,
  buckets: readonly OutcomeBucket[],
  label: (ms: number) => string,
): HTMLElement {
  const width = 480;
  const height = 140;
  const pad = 24;
  const totals = buckets.map((b) => OUTCOMES.reduce((n, o) => n + (b.counts[o] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const barW = (width - pad) / Math.max(1, buckets.length);
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height + 18}`, role: "img", "aria-label": title, class: "chart" },
    svg("line", { x1: pad, y1: height, x2: width, y2: height, class: "axis" }),
    svg("text", { x: 0, y: 10, class: "tick" }, String(max)),
    svg("text", { x: 0, y: height, class: "tick" }, "0"),
    buckets.map((b, i) => {
      let y = height;
      const x = pad + i * barW + 1;
      const parts = OUTCOMES.map((o) => {
        const n = b.counts[o] ?? 0;
        if (n === 0) return null;
        const hgt = (n / max) * (height - 12);
        y -= hgt;
        return svg(
          "rect",
          { x, y, width: Math.max(1, barW - 2), height: hgt, class: `bar outcome-${o}` },
          svg("title", null, `${utc(b.startMs)} UTC: ${n} ${o}`),
        );
      });
      const tick =
        i % Math.ceil(buckets.length / 6) === 0
          ? svg("text", { x, y: height + 14, class: "tick" }, label(b.startMs))
          : null;
      return [parts, tick];
    }),
  );
  const legend = h(
    "ul",
    { class: "legend" },
    OUTCOMES.map((o) => h("li", null, h("span", { class: `swatch outcome-${o}` }), o)),
  );
  const sum = totals.reduce((a, b) => a + b, 0);
  return h(
    "figure",
    { class: "card chart-card" },
    h("figcaption", null, `${title}: ${sum} attempts`),
    chart,
    legend,
  );
}
