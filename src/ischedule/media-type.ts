/**
 * The Content-Type of a scheduling request (draft §6.1: text/calendar with "component" and "method"
 * parameters, RFC 5545 §8.1), read with the RFC 9110 §8.3.1 media type syntax:
 *
 *   media-type = type "/" subtype parameters
 *   parameters = *( OWS ";" OWS [ parameter ] )
 *   parameter  = parameter-name "=" ( token / quoted-string )
 *
 * Type, subtype and parameter names are case-insensitive; so are the values of charset (RFC 2046
 * §4.1.2) and of component and method (iCalendar names, RFC 5545 §2).
 */
import { IScheduleError } from "./errors.ts";

/** A calendar data type a receiver takes (draft §9.2.1.4.1). */
export interface CalendarDataType {
  /** "text/calendar" (draft §9.2.1.4.1 default). */
  readonly contentType: string;
  /** "2.0" (default). */
  readonly version: string;
}

export interface ContentType {
  /** "text/calendar", lower-case. */
  readonly mediaType: string;
  /** Upper-case, as in the iCalendar data: "VEVENT". */
  readonly component?: string;
  /** Upper-case: "REQUEST". */
  readonly method?: string;
  /** Lower-case: "utf-8". */
  readonly charset?: string;
  /** Every parameter, names lower-case, values as sent (quotes and escapes removed). */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
const OWS = /[ \t]*/y;
const QDTEXT = /[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]/;
const QUOTED_PAIR = /[\t \x21-\x7e\x80-\xff]/;

/**
 * Parses a Content-Type field value. Throws IScheduleError invalid-calendar-data-type when it is
 * missing or malformed, including a field sent twice (joined as "a, b") and a parameter given twice.
 */
export function parseContentType(value: string | null | undefined): ContentType {
  if (value == null || value.trim() === "") {
    throw new IScheduleError("invalid-calendar-data-type", "The request has no Content-Type");
  }
  const bad = (why: string): IScheduleError =>
    new IScheduleError("invalid-calendar-data-type", `Content-Type "${clip(value)}" is malformed: ${why}`);
  let pos = skip(OWS, value, 0);
  const type = match(TOKEN, value, pos);
  if (type === undefined) throw bad("no media type");
  pos += type.length;
  if (value[pos] !== "/") throw bad(`expected "/" after "${clip(type)}"`);
  const subtype = match(TOKEN, value, pos + 1);
  if (subtype === undefined) throw bad("no subtype");
  pos += 1 + subtype.length;

  const params: Record<string, string> = Object.create(null);
  for (;;) {
    pos = skip(OWS, value, pos);
    if (pos >= value.length) break;
    if (value[pos] !== ";") throw bad(`unexpected "${value[pos]}" at position ${pos + 1}`);
    pos = skip(OWS, value, pos + 1);
    if (pos >= value.length || value[pos] === ";") continue; // empty parameter (RFC 9110 §5.6.1)
    const name = match(TOKEN, value, pos);
    if (name === undefined) throw bad(`a parameter name is expected at position ${pos + 1}`);
    pos += name.length;
    if (value[pos] !== "=") throw bad(`parameter "${clip(name)}" has no value`);
    pos++;
    let paramValue: string;
    if (value[pos] === '"') {
      const quoted = readQuoted(value, pos);
      if (quoted === undefined) throw bad(`parameter "${clip(name)}" has an unterminated quoted value`);
      [paramValue, pos] = quoted;
    } else {
      const token = match(TOKEN, value, pos);
      if (token === undefined) throw bad(`parameter "${clip(name)}" has an empty or invalid value`);
      paramValue = token;
      pos += token.length;
    }
    const key = name.toLowerCase();
    if (key in params) throw bad(`parameter "${key}" appears twice`);
    params[key] = paramValue;
  }
  const result: { -readonly [K in keyof ContentType]: ContentType[K] } = {
    mediaType: `${type}/${subtype}`.toLowerCase(),
    params,
  };
  if (params.component !== undefined) result.component = params.component.toUpperCase();
  if (params.method !== undefined) result.method = params.method.toUpperCase();
  if (params.charset !== undefined) result.charset = params.charset.toLowerCase();
  return result;
}

/** Whether a media type ("text/calendar", any case, parameters ignored) is among the accepted ones. */
export function isAcceptedMediaType(mediaType: string, accepted: readonly CalendarDataType[]): boolean {
  const bare = mediaType.split(";")[0]!.trim().toLowerCase();
  return accepted.some((t) => t.contentType.split(";")[0]!.trim().toLowerCase() === bare);
}

/**
 * Refuses a request whose media type the receiver does not advertise in calendar-data-types
 * (draft §9.2.1.4), with invalid-calendar-data-type (draft §6.1.2).
 */
export function requireAcceptedMediaType(
  contentType: ContentType,
  accepted: readonly CalendarDataType[],
): void {
  if (isAcceptedMediaType(contentType.mediaType, accepted)) return;
  const list = accepted.map((t) => t.contentType).join(", ");
  throw new IScheduleError(
    "invalid-calendar-data-type",
    `Content-Type ${contentType.mediaType} is not accepted here; accepted: ${list || "none"}`,
  );
}

function match(re: RegExp, s: string, pos: number): string | undefined {
  re.lastIndex = pos;
  const m = re.exec(s);
  return m && m[0] !== "" ? m[0] : undefined;
}

function skip(re: RegExp, s: string, pos: number): number {
  re.lastIndex = pos;
  re.exec(s);
  return re.lastIndex;
}

/** Reads a quoted-string starting at the opening quote; returns the value and the position after it. */
function readQuoted(s: string, start: number): [string, number] | undefined {
  let out = "";
  for (let i = start + 1; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') return [out, i + 1];
    if (c === "\\") {
      const next = s[i + 1];
      if (next === undefined || !QUOTED_PAIR.test(next)) return undefined;
      out += next;
      i++;
    } else if (QDTEXT.test(c)) out += c;
    else return undefined;
  }
  return undefined;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
