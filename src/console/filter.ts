/**
 * The console's filter language, shared by the Messages page, the API (`?q=`) and `isched queue
 * list`: whitespace-separated `key:value` terms, all of which must match; `key:a,b` matches either
 * value; a leading `-` negates a term; a value with spaces goes in double quotes.
 *
 *   peer:example.org  status:failed,broken  -status:delivered  method:REQUEST  uid:"abc 123"
 *   organizer:alice@example.com  recipient:bob@example.org  dkim:fail  direction:in
 *   after:2026-11-01  before:2026-11-25T12:00  after:2h (two hours ago)
 *
 * Every mistake is a FilterError naming the term and what would be right, with its position.
 */

import { isDomainName, normalizeDomain } from "../dns/names.ts";
import type { FilterTerm, MessageFilter, ValueKey } from "../store/store.ts";
import { nearest } from "../text/suggest.ts";
import { FILTER_KEYS, STATUS_WORDS } from "./filter-help.ts";

export class FilterError extends Error {
  override readonly name = "FilterError";
  constructor(
    message: string,
    /** Offset of the offending term in the query. */
    readonly position: number,
    /** The whole query with the mistake replaced by the nearest right word, when there is one. */
    readonly suggestion?: string,
  ) {
    super(message);
  }
}

const ALIASES: Readonly<Record<string, (typeof FILTER_KEYS)[number]>> = {
  dir: "direction",
  from: "originator",
  to: "recipient",
  domain: "peer",
};

const STATUS_VALUES = new Set<string>(STATUS_WORDS);
const DKIM_VALUES = new Set(["pass", "fail", "none", "trusted"]);
const DIRECTIONS: Readonly<Record<string, string>> = {
  in: "inbound",
  inbound: "inbound",
  out: "outbound",
  outbound: "outbound",
};

interface RawTerm {
  negated: boolean;
  key: string;
  value: string;
  /** A quoted value is one value, commas and all. */
  quoted: boolean;
  position: number;
}

/** Splits a query into terms, honouring double quotes in values. */
function tokenize(query: string): RawTerm[] {
  const terms: RawTerm[] = [];
  const re = /\s*(-?)([A-Za-z]+):("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
  let i = 0;
  while (i < query.length) {
    const rest = query.slice(i);
    if (/^\s+$/.test(rest)) break;
    re.lastIndex = i;
    const m = re.exec(query);
    if (!m) {
      const start = i + (rest.length - rest.trimStart().length);
      const word = query.slice(start).split(/\s/)[0] ?? "";
      throw new FilterError(
        `"${word}" is not a term: write key:value (keys: ${FILTER_KEYS.join(", ")})`,
        start,
      );
    }
    const position = m.index + (m[0].length - m[0].trimStart().length);
    let value = m[3]!;
    const quoted = value.startsWith('"');
    if (quoted) value = value.slice(1, -1).replace(/\\(.)/g, "$1");
    terms.push({ negated: m[1] === "-", key: m[2]!.toLowerCase(), value, quoted, position });
    i = re.lastIndex;
    if (i < query.length && !/\s/.test(query[i]!)) {
      throw new FilterError(`put a space after the term "${m[0].trim()}"`, i);
    }
  }
  return terms;
}

/** `2026-11-25`, `2026-11-25T14:30[:05][Z]` (UTC), or a duration ago: `90m`, `2h`, `3d`, `1w`. */
export function parseTime(raw: string, nowMs: number): number | undefined {
  const ago = /^(\d+)(m|h|d|w)$/.exec(raw);
  if (ago) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 }[
      ago[2] as "m" | "h" | "d" | "w"
    ];
    return nowMs - Number(ago[1]) * unit;
  }
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?Z?)?$/.exec(raw);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  const ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-31 over into March: refuse dates that do not exist.
  if (back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d! || h! > 23 || mi! > 59 || s! > 59)
    return undefined;
  return ms;
}

/** A calendar address as stored: `mailto:` added to a bare e-mail address. */
function address(value: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.test(value) ? value : `mailto:${value}`;
}

/** Each key's check and normal form of one value; throws a message naming what is wrong. */
const NORMALIZE: Readonly<Record<ValueKey, (v: string) => string>> = {
  peer: (v) => {
    if (!isDomainName(v)) throw new Error(`peer:${v} is not a domain name`);
    return normalizeDomain(v);
  },
  status: (v) => {
    if (!STATUS_VALUES.has(v.toLowerCase()))
      throw new Error(`status:${v} is not one of ${[...STATUS_VALUES].join(", ")}`);
    return v.toLowerCase();
  },
  method: (v) => {
    if (!/^[A-Za-z-]+$/.test(v)) throw new Error(`method:${v} is not an iTIP method`);
    return v.toUpperCase();
  },
  dkim: (v) => {
    if (!DKIM_VALUES.has(v.toLowerCase()))
      throw new Error(`dkim:${v} is not one of pass, fail, none, trusted`);
    return v.toLowerCase();
  },
  direction: (v) => {
    const d = DIRECTIONS[v.toLowerCase()];
    if (!d) throw new Error(`direction:${v} is not in or out`);
    return d;
  },
  organizer: address,
  originator: address,
  recipient: address,
  uid: (v) => v,
};

function values(key: ValueKey, raw: string, quoted: boolean, position: number): string[] {
  const items = quoted ? [raw] : raw.split(",").map((v) => v.trim());
  if (items.some((v) => v === ""))
    throw new FilterError(`${key}: needs a value, e.g. ${example(key)}`, position);
  try {
    return items.map(NORMALIZE[key]);
  } catch (e) {
    throw new FilterError((e as Error).message, position);
  }
}

function example(key: ValueKey): string {
  return {
    peer: "peer:example.org",
    status: "status:failed",
    method: "method:REQUEST",
    uid: "uid:123@example.com",
    organizer: "organizer:alice@example.com",
    originator: "originator:alice@example.com",
    recipient: "recipient:bob@example.org",
    dkim: "dkim:fail",
    direction: "direction:in",
  }[key];
}

export function parseFilter(query: string, nowMs: number): MessageFilter {
  const out: FilterTerm[] = [];
  for (const t of tokenize(query)) {
    const key = ALIASES[t.key] ?? FILTER_KEYS.find((k) => k === t.key);
    if (!key) {
      const hint = nearest(t.key, FILTER_KEYS);
      const start = t.position + (t.negated ? 1 : 0);
      throw new FilterError(
        `unknown key "${t.key}:"${hint ? ` (did you mean ${hint}?)` : ""}; use one of ${FILTER_KEYS.join(", ")}`,
        t.position,
        hint ? `${query.slice(0, start)}${hint}${query.slice(start + t.key.length)}` : undefined,
      );
    }
    if (key === "before" || key === "after") {
      const atMs = parseTime(t.value, nowMs);
      if (atMs === undefined) {
        throw new FilterError(
          `${key}:${t.value} is not a time: write 2026-11-25, 2026-11-25T14:30 (UTC) or 2h, 3d`,
          t.position,
        );
      }
      out.push({ key, negated: t.negated, atMs });
    } else {
      out.push({ key, negated: t.negated, values: values(key, t.value, t.quoted, t.position) });
    }
  }
  return out;
}
