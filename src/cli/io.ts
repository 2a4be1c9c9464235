/** File and stdin helpers for commands, turning system errors into one-line messages. */
import { readFileSync } from "node:fs";
import { parseRawRequest, type RawRequest } from "../http/raw-request.ts";
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

/** A raw HTTP/1.1 request file (or - for standard input), refused in one line when it is not one. */
export function readRequestFile(path: string): RawRequest {
  const bytes = readInput(path, "request file");
  try {
    return parseRawRequest(bytes);
  } catch (e) {
    throw new CommandError(`${path} is not an HTTP request: ${(e as Error).message}`);
  }
}
