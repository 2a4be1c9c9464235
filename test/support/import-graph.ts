/**
 * The import graph of `src/` and the layer rules of docs/architecture.md, for
 * test/project/layers.test.ts. Every `import ... from "./x.ts"` and `export ... from` of a relative
 * path counts, type-only ones included (a type is a dependency of the reader, if not of the
 * runtime); imports of packages and of files outside `src/` (the page, package.json) are not edges.
 *
 * Run on its own to measure another checkout: `bun test/support/import-graph.ts [REPO]` prints the
 * imports that break the layers of REPO's own docs/architecture.md (or of this one's when REPO has
 * none), and the cycles between files and between folders.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface ImportEdge {
  /** Both relative to `src/`, e.g. "inbound/intake.ts". */
  readonly from: string;
  readonly to: string;
  readonly typeOnly: boolean;
}

/** Every file of `src/` (`.ts`) with its relative imports. */
export function importGraph(repo: string): { files: string[]; edges: ImportEdge[] } {
  const src = join(repo, "src");
  const files = [...new Bun.Glob("**/*.ts").scanSync(src)].sort();
  const edges: ImportEdge[] = [];
  for (const file of files) {
    const text = readFileSync(join(src, file), "utf8");
    // `import x from "./a.ts"`, `import type {...} from`, `export {...} from`, `export * from`.
    for (const m of text.matchAll(
      /^\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*"(\.{1,2}\/[^"]+)"/gms,
    )) {
      const to = relative(src, resolve(dirname(join(src, file)), m[4]!));
      if (to.startsWith("..")) continue;
      const names = m[3]!.trim();
      const allTypes =
        /^\{[^}]*\}$/s.test(names) &&
        names
          .slice(1, -1)
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
          .every((s) => s.startsWith("type "));
      edges.push({ from: file, to, typeOnly: m[2] !== undefined || allTypes });
    }
  }
  return { files, edges };
}

/** The folder a file belongs to for the layer rules: its first directory, or the file itself at the root. */
export function unitOf(file: string): string {
  const slash = file.indexOf("/");
  return slash === -1 ? file : file.slice(0, slash);
}

/**
 * The layers of docs/architecture.md: the numbered list between `<!-- layers -->` and
 * `<!-- /layers -->`, lowest first; each item names its folders (and root files) in backticks
 * before the dash. Returns folder -> rank (1 = lowest).
 */
export function readLayers(architectureMd: string): Map<string, number> {
  const section = /<!-- layers -->([\s\S]*?)<!-- \/layers -->/.exec(architectureMd)?.[1];
  if (section === undefined) throw new Error("docs/architecture.md has no <!-- layers --> section");
  const ranks = new Map<string, number>();
  for (const line of section.split("\n")) {
    const m = /^(\d+)\.\s+(.*?)\s+—/.exec(line);
    if (!m) continue;
    for (const name of m[2]!.matchAll(/`([^`]+)`/g)) ranks.set(name[1]!, Number(m[1]));
  }
  return ranks;
}

export interface LayerBreak {
  readonly edge: ImportEdge;
  readonly why: string;
}

/**
 * Imports that break the layers: a folder imports only its own files and those of lower layers;
 * two folders of one layer do not import each other; every folder must be in the list.
 */
export function layerBreaks(edges: readonly ImportEdge[], ranks: ReadonlyMap<string, number>): LayerBreak[] {
  const out: LayerBreak[] = [];
  for (const edge of edges) {
    const a = unitOf(edge.from);
    const b = unitOf(edge.to);
    if (a === b) continue;
    const ra = ranks.get(a);
    const rb = ranks.get(b);
    if (ra === undefined || rb === undefined) {
      out.push({ edge, why: `${ra === undefined ? a : b} is in no layer of docs/architecture.md` });
    } else if (rb > ra) out.push({ edge, why: `${a} (layer ${ra}) imports ${b}, above it (layer ${rb})` });
    else if (rb === ra) out.push({ edge, why: `${a} and ${b} share layer ${ra}: neither imports the other` });
  }
  return out;
}

/** Strongly connected groups of more than one node (Tarjan), each sorted. */
export function cycles(nodes: Iterable<string>, next: (node: string) => readonly string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next(v)) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || next(v).includes(v)) found.push(group.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return found;
}

/** Cycles between files (type-only imports included), and between folders. */
export function importCycles(graph: { files: string[]; edges: readonly ImportEdge[] }): {
  files: string[][];
  folders: string[][];
} {
  const byFile = new Map<string, string[]>(graph.files.map((f) => [f, []]));
  const byFolder = new Map<string, Set<string>>();
  for (const e of graph.edges) {
    if (byFile.has(e.to)) byFile.get(e.from)!.push(e.to);
    const a = unitOf(e.from);
    const b = unitOf(e.to);
    if (a === b) continue;
    if (!byFolder.has(a)) byFolder.set(a, new Set());
    byFolder.get(a)!.add(b);
  }
  return {
    files: cycles(byFile.keys(), (f) => byFile.get(f) ?? []),
    folders: cycles(new Set(graph.files.map(unitOf)), (f) => [...(byFolder.get(f) ?? [])]),
  };
}

if (import.meta.main) {
  const repo = resolve(process.argv[2] ?? join(import.meta.dir, "..", ".."));
  const own = join(repo, "docs", "architecture.md");
  const doc = readFileSync(
    existsSync(own) && readFileSync(own, "utf8").includes("<!-- layers -->")
      ? own
      : join(import.meta.dir, "..", "..", "docs", "architecture.md"),
    "utf8",
  );
  const graph = importGraph(repo);
  const breaks = layerBreaks(graph.edges, readLayers(doc));
  const found = importCycles(graph);
  for (const b of breaks)
    console.log(`${b.edge.from} -> ${b.edge.to}${b.edge.typeOnly ? " (type)" : ""}: ${b.why}`);
  for (const c of found.files) console.log(`file cycle: ${c.join(" -> ")}`);
  for (const c of found.folders) console.log(`folder cycle: ${c.join(", ")}`);
  console.log(
    `${graph.files.length} files, ${graph.edges.length} imports: ${breaks.length} against the layers ` +
      `(${breaks.filter((b) => b.edge.typeOnly).length} type-only), ${found.files.length} file cycles, ` +
      `${found.folders.length} folder cycles`,
  );
}
