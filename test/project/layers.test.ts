/**
 * The dependency rules of docs/architecture.md ("Layers"), kept by the suite: every import of every
 * file under src/ (type-only ones included) points down the layer list or stays in its folder, and
 * no import cycle exists, between files or between folders.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  cycles,
  type ImportEdge,
  importCycles,
  importGraph,
  layerBreaks,
  readLayers,
  unitOf,
} from "../support/import-graph.ts";

const ROOT = join(import.meta.dir, "..", "..");
const layers = readLayers(readFileSync(join(ROOT, "docs", "architecture.md"), "utf8"));
const graph = importGraph(ROOT);
const describeEdge = (e: ImportEdge) => `${e.from} -> ${e.to}`;

describe("src/ keeps the layers of docs/architecture.md", () => {
  test("every folder of src/ (and every file at its root) is in the layer list", () => {
    const units = [...new Set(graph.files.map(unitOf))].sort();
    expect(units.filter((u) => !layers.has(u))).toEqual([]);
    // And the list names nothing that is not there.
    expect([...layers.keys()].filter((u) => !units.includes(u))).toEqual([]);
  });

  test("no import points up the list, or sideways to another folder of the same layer", () => {
    expect(layerBreaks(graph.edges, layers).map((b) => `${describeEdge(b.edge)}: ${b.why}`)).toEqual([]);
  });

  test("no import cycle, between files or between folders", () => {
    expect(importCycles(graph)).toEqual({ files: [], folders: [] });
  });

  test("the graph is the real one: it sees the imports the composition root makes", () => {
    const fromApp = graph.edges.filter((e) => e.from === "server/app.ts").map((e) => e.to);
    expect(fromApp).toContain("delivery/dispatcher.ts");
    expect(fromApp).toContain("intake/accept.ts");
    expect(graph.edges.some((e) => e.typeOnly)).toBe(true);
  });
});

describe("the checks themselves", () => {
  const ranks = new Map([
    ["net", 1],
    ["dns", 2],
    ["inbound", 3],
    ["smtp-intake", 3],
    ["server", 4],
  ]);
  const edge = (from: string, to: string): ImportEdge => ({ from, to, typeOnly: true });

  test("an upward import, a sideways one and a folder missing from the list are each refused", () => {
    const found = layerBreaks(
      [
        edge("dns/client.ts", "server/config.ts"),
        edge("inbound/endpoint.ts", "smtp-intake/server.ts"),
        edge("web/x.ts", "net/cidr.ts"),
        edge("server/app.ts", "dns/client.ts"),
        edge("dns/a.ts", "dns/b.ts"),
      ],
      ranks,
    );
    expect(found.map((b) => describeEdge(b.edge))).toEqual([
      "dns/client.ts -> server/config.ts",
      "inbound/endpoint.ts -> smtp-intake/server.ts",
      "web/x.ts -> net/cidr.ts",
    ]);
  });

  test("a cycle is found, however long", () => {
    const next: Record<string, string[]> = { a: ["b"], b: ["c"], c: ["a"], d: ["a"] };
    expect(cycles(Object.keys(next), (n) => next[n] ?? [])).toEqual([["a", "b", "c"]]);
  });
});
