/**
 * Reading the iSchedule request headers a receiver checks before the body (draft §6.1, §8, notes
 * §11.1): iSchedule-Version, Originator and Recipient. Each problem is an IScheduleError naming the
 * draft §6.1.2 element.
 *
 * Every function takes all values of the field, one per field line. HTTP stacks (Bun's and fetch's
 * Headers among them) join repeated fields into one "a, b" value, so a single joined value is treated
 * exactly like two fields: a comma list is what a repeated field means (RFC 9110 §5.3).
 */
import { addressKey, isCalendarUserAddress, normalizeAddress } from "./address.ts";
import { IScheduleError } from "./errors.ts";

export const SUPPORTED_VERSIONS: readonly string[] = ["1.0"];

// draft §8.2: iSchedule-Version-elem = 1*DIGIT "." 1*DIGIT
const VERSION = /^(\d+)\.(\d+)$/;

/**
 * Picks the version to answer with from the iSchedule-Version field(s) (draft §8.2): the first
 * listed one that is supported, compared numerically ("1.00" is "1.0"). Missing, malformed or
 * unsupported: version-not-supported (draft §6.1.2).
 */
export function parseVersionHeader(
  values: readonly string[],
  supported: readonly string[] = SUPPORTED_VERSIONS,
): string {
  const items = splitList(values);
  if (items.length === 0) {
    throw new IScheduleError("version-not-supported", "The request has no iSchedule-Version header");
  }
  for (const item of items) {
    if (!VERSION.test(item)) {
      throw new IScheduleError(
        "version-not-supported",
        `iSchedule-Version "${clip(item)}" is not a version number (expected DIGITS.DIGITS such as 1.0)`,
      );
    }
  }
  for (const item of items) {
    const found = supported.find((s) => sameVersion(s, item));
    if (found !== undefined) return found;
  }
  throw new IScheduleError(
    "version-not-supported",
    `iSchedule-Version ${items.join(", ")} is not supported; supported: ${supported.join(", ")}`,
  );
}

/** Numeric comparison of "major.minor" versions; anything else compares as text. */
export function sameVersion(a: string, b: string): boolean {
  const ma = VERSION.exec(a.trim());
  const mb = VERSION.exec(b.trim());
  if (!ma || !mb) return a.trim() === b.trim();
  return Number(ma[1]) === Number(mb[1]) && Number(ma[2]) === Number(mb[2]);
}

/**
 * The Originator (draft §8.5: exactly one absoluteURI), in normal form (normalizeAddress).
 * None: originator-missing. Two fields, or one value that is a comma list of addresses:
 * too-many-originators. Not a calendar user address: originator-invalid.
 */
export function parseOriginator(values: readonly string[]): string {
  const present = values.map((v) => v.trim()).filter((v) => v !== "");
  if (present.length === 0) {
    throw new IScheduleError("originator-missing", "The request has no Originator header");
  }
  if (present.length > 1) {
    throw new IScheduleError("too-many-originators", `The request has ${present.length} Originator headers`);
  }
  const value = present[0]!;
  if (value.includes(",")) {
    const parts = value
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "");
    // A joined "a, b" is two Originator fields; a comma inside one address is just invalid.
    if (parts.length > 1 && parts.every(isCalendarUserAddress)) {
      throw new IScheduleError(
        "too-many-originators",
        `The request has ${parts.length} Originator addresses; exactly one is allowed`,
      );
    }
  }
  if (!isCalendarUserAddress(value)) {
    throw new IScheduleError(
      "originator-invalid",
      `Originator "${clip(value)}" is not a valid calendar user address (an absolute URI such as mailto:user@example.org)`,
    );
  }
  return normalizeAddress(value);
}

export interface Recipient {
  /** The address exactly as the sender wrote it (trimmed): what the response's <recipient> echoes. */
  readonly address: string;
  /** normalizeAddress(address). */
  readonly normalized: string;
}

/**
 * The Recipient list (draft §8.6): every field split on commas, whitespace trimmed, empty items
 * ignored (RFC 9110 §5.6.1), duplicates dropped (sameAddress, keeping the first spelling).
 *
 * An item that is not a calendar user address makes the whole list invalid: recipient-missing,
 * which the draft defines as "did not include one or more *valid* Recipient request headers". A
 * well-formed address that the receiver does not serve is not a header problem: it gets a
 * per-recipient 3.7 in the schedule-response instead.
 * More than `maxRecipients` distinct addresses: max-recipients (draft §9.2.1.11).
 */
export function parseRecipients(values: readonly string[], maxRecipients: number): Recipient[] {
  const items = splitList(values);
  if (items.length === 0) {
    throw new IScheduleError("recipient-missing", "The request has no Recipient header");
  }
  const seen = new Set<string>();
  const out: Recipient[] = [];
  for (const item of items) {
    if (!isCalendarUserAddress(item)) {
      throw new IScheduleError(
        "recipient-missing",
        `Recipient "${clip(item)}" is not a valid calendar user address (an absolute URI such as mailto:user@example.org)`,
      );
    }
    const key = addressKey(item);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ address: item, normalized: normalizeAddress(item) });
  }
  if (out.length > maxRecipients) {
    throw new IScheduleError(
      "max-recipients",
      `The request has ${out.length} recipients; at most ${maxRecipients} are accepted per request`,
    );
  }
  return out;
}

/** All comma-separated items of all values, trimmed, empty ones dropped. */
function splitList(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const item of value.split(",")) {
      const trimmed = item.trim();
      if (trimmed !== "") out.push(trimmed);
    }
  }
  return out;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
