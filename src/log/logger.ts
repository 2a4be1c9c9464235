/**
 * Log lines on standard error: `TIME LEVEL message key=value ...`, one event per line, for people
 * and for grep. Callers pass only what is safe to keep: never a key, a password or a token.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface Logger {
  log(level: LogLevel, message: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

function format(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=]*$/.test(s) && s !== "" ? s : JSON.stringify(s);
}

export function createLogger(
  o: { level?: LogLevel; write?: (line: string) => void; nowMs?: () => number } = {},
): Logger {
  const min = ORDER[o.level ?? "info"];
  const write = o.write ?? ((line: string) => process.stderr.write(line));
  const now = o.nowMs ?? Date.now;
  return {
    log(level, message, fields = {}) {
      if (ORDER[level] < min) return;
      const extra = Object.entries(fields)
        .filter(([, v]) => v !== undefined && v !== null)
        .map(([k, v]) => ` ${k}=${format(v as string | number | boolean)}`)
        .join("");
      write(`${new Date(now()).toISOString()} ${level} ${message}${extra}\n`);
    },
  };
}

export const silentLogger: Logger = { log() {} };
