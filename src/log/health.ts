/**
 * What the operator must know about right now: problems of the running server (WAL checkpoints that
 * fail) and risky settings. Each problem has an id; the log gets one line when it starts or changes
 * and one when it ends, and the console shows the current list on its Overview.
 */
import type { Logger } from "./logger.ts";

export interface Problem {
  readonly id: string;
  /** One or two sentences: what is wrong and what it means. */
  readonly text: string;
  readonly sinceMs: number;
}

export interface Health {
  /** Records (or updates) a problem; logged as an error unless it is the same text as before. */
  report(id: string, text: string): void;
  /** Ends a problem; logged (as a warning, so that whoever saw the problem sees its end) when there was one. */
  resolve(id: string, text: string): void;
  problems(): readonly Problem[];
}

export function createHealth(o: { log: Logger; nowMs?: () => number }): Health {
  const now = o.nowMs ?? Date.now;
  const current = new Map<string, Problem>();
  return {
    report(id, text) {
      if (current.get(id)?.text === text) return;
      current.set(id, { id, text, sinceMs: current.get(id)?.sinceMs ?? now() });
      o.log.log("error", text, { problem: id });
    },
    resolve(id, text) {
      if (!current.delete(id)) return;
      o.log.log("warn", text, { problem: id });
    },
    problems: () => [...current.values()],
  };
}
