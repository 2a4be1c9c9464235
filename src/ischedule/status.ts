/**
 * iTIP REQUEST-STATUS values as iSchedule carries them per recipient (draft §9.1.1.2): the values
 * isched sends, a lenient parser for what peers send, and the classification the sender's queue acts on.
 *
 * Syntax (RFC 5545 §3.8.8.3): statcode ";" statdesc [";" extdata], statcode = 1*DIGIT 1*2("." 1*DIGIT);
 * statdesc and extdata are TEXT, so a literal ";" inside them is escaped as "\;" (RFC 5545 §3.3.11).
 */

export const STATUS = {
  /** RFC 6638 §3.2.9.1: delivery is still in progress. */
  pending: "1.0;Pending",
  /** RFC 6638 §3.2.9.2: sent (e.g. by iMIP), delivery unknown. */
  sent: "1.1;Sent",
  /** RFC 6638 §3.2.9.3: delivered. */
  delivered: "1.2;Delivered",
  /** RFC 5546 §3.6.1; the draft's examples answer it for delivery and free/busy (draft A.1, A.2). */
  success: "2.0;Success",
  /** RFC 5546 §3.6.20. */
  invalidUser: "3.7;Invalid calendar user",
  /** RFC 5546 §3.6.21. */
  noAuthority: "3.8;No authority",
  /** RFC 5546 §3.6.29. */
  notSupported: "5.0;Request not supported",
  /** RFC 5546 §3.6.30; RFC 6638 §3.2.9: temporary, "can try to send the message again". */
  serviceUnavailable: "5.1;Service unavailable",
  /** RFC 5546 §3.6.31; RFC 6638 §3.2.9: "likely a permanent failure". */
  invalidService: "5.2;Invalid calendar service",
  /** RFC 5546 §3.6.32; RFC 6638 §3.2.9: "ought not try to send the message again". */
  noSchedulingSupport: "5.3;No scheduling support for user",
} as const;

export interface RequestStatus {
  /** "2.0", "3.7", "2.8.1". */
  readonly code: string;
  /** The class digit: 1 delivery, 2 success, 3 client error, 4 scheduling error, 5 service error. */
  readonly major: number;
  /** The description with TEXT escapes undone; "" when the peer sent none. */
  readonly description: string;
  /** The extdata (offending data), as sent. */
  readonly extra?: string;
}

export type StatusClass = "delivered" | "pending" | "temporary" | "permanent";

const STATCODE = /^\d+(?:\.\d+){1,2}$/;

/**
 * Parses "2.0;Success", "2.0", " 3.7 ; Invalid calendar user ", "3.1;Invalid property value;DTSTART:x".
 * Throws SyntaxError when there is no status code.
 */
export function parseRequestStatus(value: string): RequestStatus {
  const parts = splitUnescaped(value.trim());
  const code = parts[0]!.trim();
  if (!STATCODE.test(code)) {
    throw new SyntaxError(
      `Cannot read REQUEST-STATUS "${clip(value)}": "${clip(code)}" is not a status code`,
    );
  }
  const description = unescapeText((parts[1] ?? "").trim());
  const rest = parts.slice(2).join(";").trim();
  const major = Number(code.slice(0, code.indexOf(".")));
  return rest === "" ? { code, major, description } : { code, major, description, extra: rest };
}

/** The inverse of parseRequestStatus; the description is TEXT-escaped, extra is written as given. */
export function formatRequestStatus(status: { code: string; description?: string; extra?: string }): string {
  if (!STATCODE.test(status.code))
    throw new RangeError(`"${clip(status.code)}" is not a REQUEST-STATUS code`);
  const description = escapeText(status.description ?? "");
  return status.extra === undefined
    ? `${status.code};${description}`
    : `${status.code};${description};${status.extra}`;
}

/**
 * What a per-recipient status means for the sender (RFC 6638 §3.2.9 delivery codes, RFC 5546 §3.6):
 * - 1.0 (and unknown 1.x): pending, the receiver is still delivering; do not resend.
 * - 1.1 and 1.2, 2.x: delivered. 1.1 ("sent, delivery unknown") ends our part of the job just as well.
 * - 3.x: permanent. These are errors in the message or the address (3.7 unknown user, 3.8 no authority);
 *   sending the same message again cannot succeed (RFC 5546 §3.6.13-27).
 * - 4.x: permanent. 4.0 "event conflict" is the recipient's answer, not a transport failure.
 * - 5.1: temporary ("the originator can try to send the message again", RFC 6638 §3.2.9).
 * - 5.0, 5.2, 5.3: permanent (operation not supported, no way to deliver, scheduling not allowed).
 * - other 5.x and anything unreadable: temporary, as unknown errors are in the queue (src/delivery/policy.ts); the
 *   retry schedule bounds how long that lasts.
 * Accepts a bare code ("5.1") or a whole value ("5.1;Service unavailable").
 */
export function classifyStatus(codeOrValue: string): StatusClass {
  let status: RequestStatus;
  try {
    status = parseRequestStatus(codeOrValue);
  } catch {
    return "temporary";
  }
  const { code, major } = status;
  switch (major) {
    case 1:
      return code === "1.1" || code === "1.2" ? "delivered" : "pending";
    case 2:
      return "delivered";
    case 3:
    case 4:
      return "permanent";
    case 5:
      return code === "5.0" || code === "5.2" || code === "5.3" ? "permanent" : "temporary";
    default:
      return "temporary";
  }
}

/** Splits on ";" not preceded by a backslash escape. */
function splitUnescaped(s: string): string[] {
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && i + 1 < s.length) {
      current += c + s[i + 1];
      i++;
    } else if (c === ";") {
      out.push(current);
      current = "";
    } else current += c;
  }
  out.push(current);
  return out;
}

// RFC 5545 §3.3.11: TEXT escapes backslash, semicolon, comma and newline.
function unescapeText(s: string): string {
  return s.replace(/\\([\\;,nN])/g, (_, c: string) => (c === "n" || c === "N" ? "\n" : c));
}

function escapeText(s: string): string {
  return s.replace(/[\\;,]/g, (c) => `\\${c}`).replace(/\r?\n/g, "\\n");
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
