/** File and stdin helpers for commands, turning system errors into one-line messages. */
import { readFileSync } from "node:fs";
import { CommandError } from "./errors.ts";

const REASONS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "it is a directory",
  ENOTDIR: "a parent is not a directory",
};

export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) ?? (e as Error).message;
}

/** Reads a file, or standard input for "-". */
export function readInput(path: string, what = "file"): Buffer {
  try {
    return path === "-" ? readFileSync(0) : readFileSync(path);
  } catch (e) {
    throw new CommandError(`cannot read the ${what} ${path}: ${describeFsError(e)}`);
  }
}

export function readTextInput(path: string, what = "file"): string {
  return readInput(path, what).toString("utf8");
}
