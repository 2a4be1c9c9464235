/** Assertions shared by the parse tests. */
import { expect } from "bun:test";
import { ItipError, type ItipErrorKind, parseItip } from "../../src/itip/index.ts";

/** Runs parseItip and returns the ItipError it must throw. */
function refusal(text: string): ItipError {
  try {
    parseItip(text);
  } catch (error) {
    if (error instanceof ItipError) return error;
    throw error;
  }
  throw new Error("parseItip() accepted the text");
}

export function expectRefused(text: string, kind: ItipErrorKind, message: RegExp): ItipError {
  const error = refusal(text);
  expect(error.kind).toBe(kind);
  expect(error.message).toMatch(message);
  // One sentence for the peer: one line, bounded.
  expect(error.message).not.toContain("\n");
  expect(error.message.length).toBeLessThan(300);
  return error;
}
