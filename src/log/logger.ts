/**
 * Log lines on standard error, one event per line, in one of two forms (`--log-format`):
 *
 * - `text` (default), for people and for grep: `TIME LEVEL message key=value ...`, a value quoted
 *   (as a JSON string) when it holds a space, a quote, an `=` or a control character, so a newline
 *   never starts a second line;
 * - `json`, for a log collector: one object per line with the stable keys `time`, `level` and `msg`
 *   first, then the fields in the order given (a field named like one of those three gets a `_`).
 *
 * Callers pass only what is safe to keep: never a key, a password or a token. The logger is the net
 * under them: a field whose name says secret (`password`, `token`, `cookie`, ...) is written `***`,
 * and secrets inside text (a password in a URL, an Authorization header, `token=...`) are replaced
 * (text/redact.ts). A message body (a field named `body`) is written only at debug; above, its size.
 */
import { isSecretName, redactSecrets } from "../text/redact.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const RESERVED = new Set(["time", "level", "msg"]);
/** Fields that hold a message's content: kept out of the log above debug. */
const BODY_FIELDS = new Set(["body"]);

function textValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=\p{Cc}]+$/u.test(s) ? s : JSON.stringify(s);
}

/** A field's value as it may be written at `level`. */
function safeValue(level: LogLevel, key: string, v: string | number | boolean): string | number | boolean {
  if (isSecretName(key)) return "***";
  if (BODY_FIELDS.has(key) && level !== "debug")
    return `(${typeof v === "string" ? new TextEncoder().encode(v).length : String(v).length} bytes, shown at debug)`;
  return typeof v === "string" ? redactSecrets(v) : v;
}

export function createLogger(
  o: { level?: LogLevel; format?: LogFormat; write?: (line: string) => void; nowMs?: () => number } = {},
): Logger {
  const min = ORDER[o.level ?? "info"];
  const json = o.format === "json";
  const write = o.write ?? ((line: string) => process.stderr.write(line));
  const now = o.nowMs ?? Date.now;
  return {
    log(level, message, fields = {}) {
      if (ORDER[level] < min) return;
      const time = new Date(now()).toISOString();
      const msg = redactSecrets(message);
      const present = Object.entries(fields).filter(
        (e): e is [string, string | number | boolean] => e[1] !== undefined && e[1] !== null,
      );
      if (json) {
        const line: Record<string, string | number | boolean> = { time, level, msg };
        for (const [k, v] of present) line[RESERVED.has(k) ? `${k}_` : k] = safeValue(level, k, v);
        write(`${JSON.stringify(line)}\n`);
        return;
      }
      const extra = present.map(([k, v]) => ` ${k}=${textValue(safeValue(level, k, v))}`).join("");
      write(`${time} ${level} ${msg.replace(/[\r\n]+/g, " ")}${extra}\n`);
    },
  };
}

export const silentLogger: Logger = { log() {} };
