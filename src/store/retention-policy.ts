/**
 * How long isched keeps what it stores (the pruner, pruner.ts, applies it):
 *
 * - a message's body: `--retain-bodies` (default 30 days); after that the message keeps its metadata
 *   (who, what, when, every delivery and attempt), and the body's size;
 * - a message with its deliveries and attempts: `--retain` (default 400 days: a year and a month, so
 *   that last year's same week can still be looked up);
 * - a refused request's record: 7 days (it is metadata only, and a flood of them is bounded by count
 *   and bytes already, store/refusals.ts).
 *
 * Pure: durations in milliseconds, `undefined` for "forever". The parsers throw an Error that says
 * what is wrong with the value; the flag parser puts the flag's name in front.
 */
import { formatDuration, readDuration } from "../time/duration.ts";

const DAY_MS = 86_400_000;

export interface RetentionPolicy {
  /** Message bodies are emptied this long after the message was received; undefined: kept. */
  readonly bodiesMs: number | undefined;
  /** Messages (with deliveries and attempts) are deleted this long after; undefined: kept. */
  readonly messagesMs: number | undefined;
  /** Refused requests' records are deleted this long after. */
  readonly refusalsMs: number;
}

export const DEFAULT_RETAIN_BODIES_MS = 30 * DAY_MS;
export const DEFAULT_RETAIN_MS = 400 * DAY_MS;
export const RETAIN_REFUSALS_MS = 7 * DAY_MS;

/**
 * The shortest `--retain`: a message must outlive every key that answers for it. Replay and iTIP
 * keys live as long as the signature can be verified (24 hours at most for x=, draft §7.1's
 * expiry, plus the clock skew allowed) or a day for trusted requests (src/inbound/replays.ts); a
 * week also keeps every refusal record's own 7 days inside it.
 */
export const MIN_RETAIN_MS = 7 * DAY_MS;
/**
 * The shortest `--retain-bodies`: a day. Shorter is a typing slip (`30m` for `30d`) that would take
 * the body of yesterday's problem away before anyone looked at it in the console.
 */
export const MIN_RETAIN_BODIES_MS = DAY_MS;
/** Longer than any deployment lives: a typing slip (`4000000d`), not a wish. */
export const MAX_RETAIN_MS = 100 * 365 * DAY_MS;

export const DEFAULT_RETENTION: RetentionPolicy = {
  bodiesMs: DEFAULT_RETAIN_BODIES_MS,
  messagesMs: DEFAULT_RETAIN_MS,
  refusalsMs: RETAIN_REFUSALS_MS,
};

/**
 * A retention period: a duration with its unit (`400d`, `12h`, `1d12h`) or `forever`. A bare
 * number is refused: elsewhere it means seconds, and `--retain 400` (meant as days) would delete
 * every message older than seven minutes.
 */
export function parseRetentionPeriod(raw: string, o: { minMs: number }): number | undefined {
  const text = raw.trim();
  if (text === "forever") return undefined;
  if (/^\d+$/.test(text))
    throw new Error(`"${raw}" has no unit: write ${text}d for days (or h, m, s), or forever`);
  const ms = readDuration(text);
  if (ms === undefined) throw new Error(`"${raw}" is not a duration (examples: 400d, 30d, 12h) or forever`);
  if (ms < o.minMs) throw new Error(`${raw} is shorter than the least allowed, ${formatDuration(o.minMs)}`);
  if (ms > MAX_RETAIN_MS)
    throw new Error(`${raw} is longer than 100 years: write forever to keep everything`);
  return ms;
}

/** `--retain`'s value. */
export const parseRetain = (raw: string): number | undefined =>
  parseRetentionPeriod(raw, { minMs: MIN_RETAIN_MS });

/** `--retain-bodies`' value. */
export const parseRetainBodies = (raw: string): number | undefined =>
  parseRetentionPeriod(raw, { minMs: MIN_RETAIN_BODIES_MS });

/** How a period reads back (`isched validate`, the start-up summary). */
export const formatRetentionPeriod = (ms: number | undefined): string =>
  ms === undefined ? "forever" : formatDuration(ms);

/**
 * The policy of `--retain` and `--retain-bodies`, checked together: a body cannot outlive its
 * message. Throws an Error naming both flags.
 */
export function retentionPolicy(o: {
  retainMs: number | undefined;
  retainBodiesMs: number | undefined;
}): RetentionPolicy {
  const bodies = o.retainBodiesMs;
  const messages = o.retainMs;
  if (messages !== undefined && (bodies === undefined || bodies > messages))
    throw new Error(
      `--retain-bodies ${formatRetentionPeriod(bodies)} is longer than --retain ${formatRetentionPeriod(messages)}: ` +
        "a body is deleted with its message, so keep bodies at most as long",
    );
  return { bodiesMs: bodies, messagesMs: messages, refusalsMs: RETAIN_REFUSALS_MS };
}

/**
 * The variable that compresses retention for a benchmark (scripts/bench/soak.ts): within an hour's
 * run nothing reaches --retain's least 7 days, so a soak could not watch the pruner keep up with
 * arrivals. `bodies=3m,messages=10m,every=60s`: bodies emptied after 3 minutes, messages deleted
 * after 10, a run every minute. Not a flag and not in `--help`: messages kept this briefly lose
 * the replay protection of their keys (MIN_RETAIN_MS), which no deployment wants.
 */
export const BENCHMARK_RETENTION_VARIABLE = "ISCHED_BENCHMARK_RETENTION";

/** The policy and run interval of BENCHMARK_RETENTION_VARIABLE; an Error naming what is wrong. */
export function parseBenchmarkRetention(raw: string): { policy: RetentionPolicy; intervalMs: number } {
  const parts = new Map<string, number>();
  for (const item of raw.split(",")) {
    const [key, value, extra] = item.trim().split("=");
    const ms = value === undefined ? undefined : readDuration(value.trim());
    if (
      !key ||
      extra !== undefined ||
      ms === undefined ||
      ms <= 0 ||
      !["bodies", "messages", "every"].includes(key)
    )
      throw new Error(`"${item.trim()}" is not bodies=DURATION, messages=DURATION or every=DURATION`);
    parts.set(key, ms);
  }
  const bodiesMs = parts.get("bodies");
  const messagesMs = parts.get("messages");
  const intervalMs = parts.get("every");
  if (bodiesMs === undefined || messagesMs === undefined || intervalMs === undefined)
    throw new Error("needs bodies=, messages= and every= (for example bodies=3m,messages=10m,every=60s)");
  if (bodiesMs > messagesMs) throw new Error("bodies= is longer than messages=");
  return {
    policy: { bodiesMs, messagesMs, refusalsMs: Math.min(RETAIN_REFUSALS_MS, messagesMs) },
    intervalMs,
  };
}
