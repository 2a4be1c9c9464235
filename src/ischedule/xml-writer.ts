/**
 * The XML documents an iSchedule receiver answers with (draft §9): schedule-response (§9.1),
 * error (§6.1.2) and query-result/capabilities (§9.2), in the draft's namespace and element order,
 * indented like the draft's examples.
 *
 * Escaping: text escapes & < > (">" so that "]]>" can never appear), attributes also escape " and
 * literal tab/LF/CR. calendar-data is escaped text, not CDATA, so no "]]>" splitting is ever needed;
 * its CRs are written as "&#13;" because an XML parser turns a literal CRLF into LF (XML 1.0 §2.11)
 * and iCalendar lines end in CRLF (RFC 5545 §3.1). Characters XML 1.0 cannot carry at all (controls
 * other than tab/LF/CR, lone surrogates, U+FFFE/U+FFFF) become U+FFFD.
 */
import type { Capabilities } from "./capabilities.ts";
import type { IScheduleErrorElement } from "./errors.ts";
import { ISCHEDULE_NS } from "./namespaces.ts";

const DECLARATION = '<?xml version="1.0" encoding="utf-8" ?>\n';
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const ELEMENT_NAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const UTC_DATE_TIME = /^\d{8}T\d{6}Z$/;

export interface ScheduleResponseItem {
  /**
   * Echoed as the sender wrote it in the Recipient header (draft §9.1.1.1); when read from a peer,
   * as the peer wrote it, trimmed.
   */
  readonly recipient: string;
  /** The REQUEST-STATUS value, e.g. "2.0;Success" (draft §9.1.1.2). */
  readonly requestStatus: string;
  /** iCalendar data, for free/busy replies (draft §9.1.1.3). */
  readonly calendarData?: string;
  /** draft -06: the media type of calendarData, which must match the request's. Omitted when absent. */
  readonly calendarDataContentType?: string;
  /** An error element name for the IS:error child (draft §9.1.1.4), e.g. "recipient-invalid". */
  readonly error?: string;
  /** Human-readable (draft §9.1.1.5). */
  readonly description?: string;
}

/** Escapes character data. */
export function escapeText(s: string): string {
  return s
    .replace(NOT_XML_CHAR, "\uFFFD")
    .replace(/[&<>\r]/g, (c) => (c === "&" ? "&amp;" : c === "<" ? "&lt;" : c === ">" ? "&gt;" : "&#13;"));
}

/** Escapes a double-quoted attribute value. */
export function escapeAttribute(s: string): string {
  return s.replace(NOT_XML_CHAR, "\uFFFD").replace(/[&<>"\t\n\r]/g, (c) => ATTRIBUTE_ESCAPES[c]!);
}

const ATTRIBUTE_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

/** The 200 response to a POST (draft §6.1.1): one <response> per recipient, in the given order. */
export function scheduleResponseXml(responses: readonly ScheduleResponseItem[]): string {
  const out = [`${DECLARATION}<schedule-response xmlns="${ISCHEDULE_NS}">`];
  for (const r of responses) {
    // draft §9.1.1: (recipient, request-status, calendar-data?, error?, response-description?)
    out.push("  <response>");
    out.push(`    ${textElement("recipient", r.recipient)}`);
    out.push(`    ${textElement("request-status", r.requestStatus)}`);
    if (r.calendarData !== undefined) {
      const type = r.calendarDataContentType;
      const attr = type === undefined ? "" : ` content-type="${escapeAttribute(type)}"`;
      out.push(`    <calendar-data${attr}>${escapeText(r.calendarData)}</calendar-data>`);
    }
    if (r.error !== undefined) out.push(`    <error><${elementName(r.error)}/></error>`);
    if (r.description !== undefined) out.push(`    ${textElement("response-description", r.description)}`);
    out.push("  </response>");
  }
  out.push("</schedule-response>\n");
  return out.join("\n");
}

/** The body of an overall failure (draft §6.1.2, example A.3). */
export function errorXml(element: IScheduleErrorElement, description?: string): string {
  const out = [`${DECLARATION}<error xmlns="${ISCHEDULE_NS}">`, `  <${elementName(element)}/>`];
  if (description !== undefined) out.push(`  ${textElement("response-description", description)}`);
  out.push("</error>\n");
  return out.join("\n");
}

/**
 * The capabilities document (draft §5, §9.2), elements in the DTD's order. Limits that are undefined
 * are left out (no limit); rscales is written only when defined (it is a -06 addition).
 * Throws RangeError for values the schema cannot carry: configuration is checked, not repaired.
 */
export function capabilitiesXml(c: Capabilities): string {
  const out = [`${DECLARATION}<query-result xmlns="${ISCHEDULE_NS}">`, "  <capabilities>"];
  const line = (depth: number, s: string) => out.push(`${"  ".repeat(depth)}${s}`);
  line(2, textElement("serial-number", String(positiveInteger("serialNumber", c.serialNumber))));
  if (c.versions.length === 0)
    throw new RangeError("capabilities: versions is empty (draft §9.2.1.2 requires one)");
  line(2, "<versions>");
  for (const v of c.versions) line(3, textElement("version", v));
  line(2, "</versions>");
  if (c.components.length === 0)
    throw new RangeError("capabilities: components is empty (draft §9.2.1.3 requires one)");
  line(2, "<scheduling-messages>");
  for (const comp of c.components) {
    const open = `<component name="${escapeAttribute(comp.name)}"`;
    if (comp.methods.length === 0) line(3, `${open}/>`);
    else {
      line(3, `${open}>`);
      for (const m of comp.methods) line(4, `<method name="${escapeAttribute(m)}"/>`);
      line(3, "</component>");
    }
  }
  line(2, "</scheduling-messages>");
  if (c.calendarDataTypes.length === 0)
    throw new RangeError("capabilities: calendarDataTypes is empty (draft §9.2.1.4 requires one)");
  line(2, "<calendar-data-types>");
  for (const t of c.calendarDataTypes) {
    line(
      3,
      `<calendar-data-type content-type="${escapeAttribute(t.contentType)}" version="${escapeAttribute(t.version)}"/>`,
    );
  }
  line(2, "</calendar-data-types>");
  if (!c.attachments.inline && !c.attachments.external) line(2, "<attachments/>");
  else {
    line(2, "<attachments>");
    if (c.attachments.inline) line(3, "<inline/>");
    if (c.attachments.external) line(3, "<external/>");
    line(2, "</attachments>");
  }
  if (c.rscales !== undefined) {
    if (c.rscales.length === 0) line(2, "<rscales/>");
    else {
      line(2, "<rscales>");
      for (const r of c.rscales) line(3, textElement("rscale", r));
      line(2, "</rscales>");
    }
  }
  if (c.maxContentLength !== undefined)
    line(
      2,
      textElement("max-content-length", String(positiveInteger("maxContentLength", c.maxContentLength))),
    );
  if (c.minDateTime !== undefined)
    line(2, textElement("min-date-time", utcDateTime("minDateTime", c.minDateTime)));
  if (c.maxDateTime !== undefined)
    line(2, textElement("max-date-time", utcDateTime("maxDateTime", c.maxDateTime)));
  if (c.maxInstances !== undefined)
    line(2, textElement("max-instances", String(positiveInteger("maxInstances", c.maxInstances))));
  if (c.maxRecipients !== undefined)
    line(2, textElement("max-recipients", String(positiveInteger("maxRecipients", c.maxRecipients))));
  if (c.administrator !== undefined) line(2, textElement("administrator", c.administrator));
  out.push("  </capabilities>", "</query-result>\n");
  return out.join("\n");
}

function textElement(name: string, text: string): string {
  return `<${name}>${escapeText(text)}</${name}>`;
}

function elementName(name: string): string {
  if (!ELEMENT_NAME.test(name)) throw new TypeError(`"${name}" cannot be an XML element name`);
  return name;
}

function positiveInteger(what: string, n: number): number {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new RangeError(`capabilities: ${what} must be a positive integer, not ${n}`);
  return n;
}

function utcDateTime(what: string, value: string): string {
  if (!UTC_DATE_TIME.test(value)) {
    throw new RangeError(
      `capabilities: ${what} must be an iCalendar UTC DATE-TIME such as 19910101T000000Z, not "${value}"`,
    );
  }
  return value;
}
