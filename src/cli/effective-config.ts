/**
 * The effective configuration of a command, as `isched serve` prints it at start-up and `isched
 * validate` shows it: each flag's value and where it came from (the command line, its ISCHED_*
 * variable, or the default), with secrets redacted. The only secrets a flag value can hold are
 * passwords in URLs (`smtp://user:password@host`, `ischedule:https://user:password@host/`); secret
 * files are named by path and never read here.
 */

import { envName, type FlagSpec, kebab, nearest, type ParsedArgs } from "../config/flags.ts";
import { BENCHMARK_RETENTION_VARIABLE } from "../store/retention-policy.ts";
import { redactSecrets } from "../text/redact.ts";
import type { FlagTable } from "./command.ts";

export interface EffectiveLine {
  readonly flag: string;
  readonly value: string;
  /** `flag`, `env ISCHED_X` or `default`. */
  readonly from: string;
}

function defaultText(s: FlagSpec<unknown>): string {
  if (s.defaultText !== undefined) return s.defaultText;
  const d = s.defaultValue;
  if (d === undefined || (Array.isArray(d) && d.length === 0)) return "(none)";
  if (Array.isArray(d)) return d.join(",");
  if (typeof d === "object" && d !== null && "host" in d && "port" in d) return `${d.host}:${d.port}`;
  return String(d);
}

/** Every flag of `specs` (or only those given, with `onlyGiven`), in the table's order. */
export function effectiveLines<S extends FlagTable>(
  specs: S,
  parsed: Pick<ParsedArgs<S>, "sources">,
  o: { onlyGiven?: boolean } = {},
): EffectiveLine[] {
  const lines: EffectiveLine[] = [];
  for (const [key, s] of Object.entries(specs)) {
    const given = parsed.sources.get(key);
    if (!given && o.onlyGiven) continue;
    lines.push({
      flag: `--${kebab(key)}`,
      value: given ? redactSecrets(given.raw.join(" ")) : defaultText(s),
      from: !given ? "default" : given.source === "env" ? `env ${envName(key)}` : "flag",
    });
  }
  return lines;
}

/** The lines as an aligned block under a heading. */
export function formatEffective(lines: readonly EffectiveLine[], heading: string): string {
  const flagWidth = Math.max(0, ...lines.map((l) => l.flag.length)) + 2;
  const valueWidth = Math.min(48, Math.max(0, ...lines.map((l) => l.value.length)) + 2);
  const rows = lines.map(
    (l) =>
      `  ${l.flag.padEnd(flagWidth)}${l.value}${" ".repeat(Math.max(2, valueWidth - l.value.length))}(${l.from})`,
  );
  return [heading, ...rows].join("\n");
}

/**
 * ISCHED_* variables in `env` that are no flag's twin in any command: a typing mistake there would
 * otherwise be ignored in silence. ISCHED_DEBUG (stack traces) and BENCHMARK_RETENTION_VARIABLE
 * (store/retention-policy.ts) are not flags but are known.
 */
export function strayVariables(
  env: Readonly<Record<string, string | undefined>>,
  tables: readonly FlagTable[],
): { name: string; hint?: string }[] {
  const known = new Set(["ISCHED_DEBUG", BENCHMARK_RETENTION_VARIABLE]);
  for (const table of tables)
    for (const [key, s] of Object.entries(table)) if (s.env) known.add(envName(key));
  return Object.keys(env)
    .filter((name) => name.startsWith("ISCHED_") && !known.has(name) && (env[name] ?? "") !== "")
    .sort()
    .map((name) => ({ name, hint: nearest(name, known) }));
}
