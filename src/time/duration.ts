/**
 * Durations as operators write them (`90s`, `5m`, `1h30m`, `2d`, `250ms`; a bare number is seconds),
 * for flags and the retry schedule. Pure; milliseconds in, milliseconds out.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when the text is not a duration. */
export function readDuration(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const re = /(\d+)(ms|s|m|h|d)/y;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(t); m !== null; m = re.exec(t)) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    consumed = re.lastIndex;
  }
  return t !== "" && consumed === t.length ? total : undefined;
}

/** readDuration() for a flag's value: throws an Error that says what a duration looks like. */
export function parseDuration(raw: string): number {
  const ms = readDuration(raw);
  if (ms === undefined) throw new Error(`"${raw}" is not a duration (examples: 30s, 5m, 1h30m, 2d)`);
  return ms;
}

/** The shortest readable form: `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms / 1000;
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out;
}
