/**
 * Command-line flag parsing: one declarative table per command, typed results, and one precise
 * line for every mistake (unknown flag with the nearest suggestion, missing value, malformed value).
 *
 * Flags are `--name value` or `--name=value`; booleans are `--name` (or `--name=true|false`);
 * `--` ends the flags. Keys are camelCase in code and kebab-case on the command line. A word such as
 * `-method:CANCEL` (one dash, then `key:`) is a positional: a negated term of the filter language,
 * which no flag name can be mistaken for, since flag names never hold a colon.
 *
 * Every flag also has an environment twin, `ISCHED_` and the name in capitals with `_` for `-`
 * (`--tls-cert` is ISCHED_TLS_CERT), for systemd's EnvironmentFile= and containers. A flag on the
 * command line wins over its variable; an empty variable counts as unset; a repeatable flag's
 * variable holds its values separated by spaces. A mistake in a variable's value names the variable.
 */
import { nearest } from "../text/suggest.ts";
import { formatDuration, parseDuration } from "../time/duration.ts";
import { UsageError } from "./errors.ts";

export interface FlagSpec<T> {
  /** Shown in help after the flag name, e.g. `FILE`; absent for booleans. */
  readonly placeholder?: string;
  readonly help: string;
  readonly repeatable: boolean;
  readonly boolean: boolean;
  /** The value used when the flag is absent. */
  readonly defaultValue: T;
  /** How help shows the default, when it differs from String(defaultValue). */
  readonly defaultText?: string;
  /** Converts one raw value; throws a plain Error whose message says what is wrong with the value. */
  readonly parse: (raw: string) => unknown;
  /** False for a flag that must be typed each time (`--yes`): it has no environment twin. */
  readonly env: boolean;
}

type Specs = Record<string, FlagSpec<unknown>>;
export type FlagValues<S extends Specs> = { [K in keyof S]: S[K] extends FlagSpec<infer T> ? T : never };

interface BaseOptions {
  help: string;
  placeholder?: string;
  /** Default true: the flag can also be set as ISCHED_NAME. */
  env?: boolean;
}

function spec<T>(
  parse: (raw: string) => unknown,
  o: BaseOptions & { defaultValue: T; defaultText?: string; repeatable?: boolean; boolean?: boolean },
): FlagSpec<T> {
  return {
    defaultText: o.defaultText,
    help: o.help,
    placeholder: o.boolean ? undefined : (o.placeholder ?? "VALUE"),
    repeatable: o.repeatable ?? false,
    boolean: o.boolean ?? false,
    defaultValue: o.defaultValue,
    parse,
    env: o.env ?? true,
  };
}

const asString = (raw: string): string => {
  if (raw === "") throw new Error("the value is empty");
  return raw;
};

function parseInteger(raw: string, min: number, max: number): number {
  if (!/^-?\d+$/.test(raw)) throw new Error(`"${raw}" is not a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw new Error(`${raw} is outside ${min}..${max}`);
  return n;
}

/** Declarations for each kind of flag. */
export const flag = {
  string(o: BaseOptions): FlagSpec<string | undefined> {
    return spec<string | undefined>(asString, { ...o, defaultValue: undefined });
  },
  stringWithDefault(o: BaseOptions & { defaultValue: string }): FlagSpec<string> {
    return spec<string>(asString, o);
  },
  /** May be given many times; also accepts comma-separated values when `commaSeparated`. */
  list(o: BaseOptions & { commaSeparated?: boolean }): FlagSpec<string[]> {
    return spec<string[]>(
      (raw) => {
        const parts = o.commaSeparated ? raw.split(",").map((s) => s.trim()) : [raw];
        if (parts.some((p) => p === "")) throw new Error(`"${raw}" has an empty item`);
        return parts;
      },
      { ...o, defaultValue: [], repeatable: true },
    );
  },
  int(o: BaseOptions & { defaultValue: number; min?: number; max?: number }): FlagSpec<number> {
    const min = o.min ?? Number.MIN_SAFE_INTEGER;
    const max = o.max ?? Number.MAX_SAFE_INTEGER;
    return spec<number>((raw) => parseInteger(raw, min, max), { placeholder: "N", ...o });
  },
  optionalInt(o: BaseOptions & { min?: number; max?: number }): FlagSpec<number | undefined> {
    const min = o.min ?? Number.MIN_SAFE_INTEGER;
    const max = o.max ?? Number.MAX_SAFE_INTEGER;
    return spec<number | undefined>((raw) => parseInteger(raw, min, max), {
      placeholder: "N",
      ...o,
      defaultValue: undefined,
    });
  },
  bool(o: BaseOptions): FlagSpec<boolean> {
    return spec<boolean>(
      (raw) => {
        if (raw === "true" || raw === "yes" || raw === "1") return true;
        if (raw === "false" || raw === "no" || raw === "0") return false;
        throw new Error(`"${raw}" is not true or false`);
      },
      { ...o, defaultValue: false, boolean: true },
    );
  },
  oneOf<const V extends string>(values: readonly V[], o: BaseOptions & { defaultValue: V }): FlagSpec<V> {
    return spec<V>(
      (raw) => {
        if ((values as readonly string[]).includes(raw)) return raw;
        throw new Error(`"${raw}" is not one of ${values.join(", ")}`);
      },
      { placeholder: values.join("|"), ...o },
    );
  },
  /** A duration such as `90s`, `5m`, `1h30m`, `2d`; the value is in milliseconds. */
  durationMs(o: BaseOptions & { defaultValue: number }): FlagSpec<number> {
    return spec<number>(parseDuration, {
      placeholder: "DURATION",
      defaultText: formatDuration(o.defaultValue),
      ...o,
    });
  },
  /** Any custom conversion; `parse` throws an Error describing the problem. */
  custom<T>(
    parse: (raw: string) => T,
    o: BaseOptions & { defaultValue: T; defaultText?: string; repeatable?: boolean },
  ): FlagSpec<T> {
    return spec<T>(parse, o);
  },
};

export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The environment twin of a flag key: `tlsCert` is ISCHED_TLS_CERT. */
export const envName = (key: string): string => `ISCHED_${kebab(key).replace(/-/g, "_").toUpperCase()}`;

/** Where a flag's value came from. */
export type FlagSource = "flag" | "env" | "default";

export { editDistance, nearest } from "../text/suggest.ts";

/** `-key:value`: a negated filter term (src/console/filter.ts), not a flag. */
const NEGATED_TERM = /^-[A-Za-z]+:/;

export interface ParsedArgs<S extends Specs> {
  flags: FlagValues<S>;
  positionals: string[];
  /** Names (camelCase keys) of the flags given explicitly, on the command line or in the environment. */
  given: Set<keyof S>;
  /** For each flag given: where, and its values as typed (for the effective configuration). */
  sources: Map<string, { source: Exclude<FlagSource, "default">; raw: string[] }>;
  /** ISCHED_* variables that are no flag of any command (main.ts fills it in): likely typing mistakes. */
  strayVariables?: readonly { name: string; hint?: string }[];
}

/**
 * A configuration message that names a flag (`--deliver: ...`) names its variable too when the value
 * came from the environment, so that the operator looks in the right place.
 */
export function attributeToSource<S extends Specs>(
  message: string,
  parsed: Pick<ParsedArgs<S>, "sources">,
): string {
  const m = /^--([a-z0-9-]+)/.exec(message);
  if (!m) return message;
  const key = m[1]!.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  if (parsed.sources.get(key)?.source !== "env") return message;
  return `${envName(key)} (${m[0]})${message.slice(m[0].length)}`;
}

/**
 * Parses `argv` against `specs`, then fills flags not on the command line from their ISCHED_*
 * variables in `env`. `context` names the command in messages ("keygen"). Throws UsageError with
 * one line for any mistake.
 */
export function parseFlags<S extends Specs>(
  argv: readonly string[],
  specs: S,
  context: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParsedArgs<S> {
  const byName = new Map<string, string>();
  for (const key of Object.keys(specs)) byName.set(kebab(key), key);
  const values: Record<string, unknown> = {};
  const given = new Set<keyof S>();
  const sources: ParsedArgs<S>["sources"] = new Map();
  const positionals: string[] = [];
  const where = context ? ` for '${context}'` : "";

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-" || NEGATED_TERM.test(arg)) {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const key = byName.get(name);
    if (key === undefined) {
      const hint = nearest(name, byName.keys());
      throw new UsageError(`unknown flag --${name}${where}${hint ? ` (did you mean --${hint}?)` : ""}`);
    }
    const s = specs[key]!;
    let raw: string;
    if (eq !== -1) raw = body.slice(eq + 1);
    else if (s.boolean) raw = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        throw new UsageError(`flag --${name} needs a value (${s.placeholder})`);
      }
      raw = next;
      i++;
    }
    const parsed = parseValue(s, raw, `flag --${name}`);
    if (s.repeatable) {
      const prior = (given.has(key) ? values[key] : []) as unknown[];
      values[key] = [...prior, ...(Array.isArray(parsed) ? parsed : [parsed])];
    } else if (given.has(key)) throw new UsageError(`flag --${name} is given more than once`);
    else values[key] = parsed;
    given.add(key);
    const typed = sources.get(key);
    if (typed) typed.raw.push(raw);
    else sources.set(key, { source: "flag", raw: [raw] });
  }
  for (const key of Object.keys(specs)) {
    if (given.has(key)) continue;
    const s = specs[key]!;
    const variable = envName(key);
    const text = s.env ? env[variable]?.trim() : undefined;
    if (text === undefined || text === "") {
      values[key] = s.defaultValue;
      continue;
    }
    const where = `${variable} (--${kebab(key)})`;
    // A repeatable flag's variable holds several values; their own syntax has no spaces.
    const raws = s.repeatable ? text.split(/\s+/) : [text];
    const parsed = raws.map((raw) => parseValue(s, raw, where));
    values[key] = s.repeatable ? parsed.flatMap((p) => (Array.isArray(p) ? p : [p])) : parsed[0];
    given.add(key);
    sources.set(key, { source: "env", raw: raws });
  }
  return { flags: values as FlagValues<S>, positionals, given, sources };
}

function parseValue(s: FlagSpec<unknown>, raw: string, where: string): unknown {
  try {
    return s.parse(raw);
  } catch (e) {
    throw new UsageError(`${where}: ${(e as Error).message}`);
  }
}

/** Help lines for a flag table, aligned. */
export function describeFlags(specs: Specs): string {
  const rows = Object.entries(specs).map(([key, s]) => {
    const left = `  --${kebab(key)}${s.placeholder ? ` ${s.placeholder}` : ""}`;
    const d = s.defaultValue;
    const showDefault = d !== undefined && d !== false && !(Array.isArray(d) && d.length === 0);
    const shown = s.defaultText ?? formatDefault(d);
    const twin = s.env ? ` [env ${envName(key)}]` : "";
    const right = `${s.help}${s.repeatable ? " (repeatable)" : ""}${showDefault ? ` [default: ${shown}]` : ""}${twin}`;
    return [left, right] as const;
  });
  const width = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  return rows
    .map(([l, r]) => (l.length + 2 > width ? `${l}\n${" ".repeat(width)}${r}` : `${l.padEnd(width)}${r}`))
    .join("\n");
}

function formatDefault(d: unknown): string {
  if (Array.isArray(d)) return d.join(",");
  return String(d);
}
