/**
 * Reading a peer's answer to our POST (draft §6.1.1, §6.1.2, §9.1): either per-recipient responses
 * (schedule-response) or an overall failure (error). Anything else is refused, as CalendarServer's
 * sender does (draft §6.1.1, §6.1.2), so a 200 with an HTML page never counts as delivered.
 *
 * Accepted variants besides the draft's: the CalDAV namespace with <recipient><D:href>…</D:href>,
 * DAV:error and DAV:responsedescription (RFC 6638 §10, used by pre-2012 CalendarServer for
 * server-to-server), the -00 <responsedescription> spelling, and CalendarServer's DAV:error whose
 * text is in twisted's <error-description> (txweb2/dav/http.py ErrorResponse).
 *
 * calendar-data is iCalendar, whose lines end in CRLF (RFC 5545 §3.1). An XML reader turns every
 * CRLF into LF before anything else (XML 1.0 §2.11), CDATA sections included, which is where
 * CalendarServer puts it; the draft's own examples have bare LF. Both come back with CRLF.
 */
import { CALDAV_NS, DAV_NS, ISCHEDULE_NS, TWISTED_DAV_NS } from "./namespaces.ts";
import {
  childElement,
  deepText,
  parseXml,
  type XmlElement,
  type XmlReadOptions,
  XmlSyntaxError,
} from "./xml-reader.ts";
import type { ScheduleResponseItem } from "./xml-writer.ts";

export type ScheduleResponse =
  | { readonly kind: "responses"; readonly responses: readonly ScheduleResponseItem[] }
  | {
      readonly kind: "error";
      /** The error element's local name ("verification-failed"); undefined when the peer named none. */
      readonly element?: string;
      readonly description?: string;
    };

const IS = [ISCHEDULE_NS];
const CALDAV = [CALDAV_NS];
const DAV = [DAV_NS];
const ANY_ERROR_NS = [ISCHEDULE_NS, DAV_NS, CALDAV_NS];
const DESCRIPTIONS = ["response-description", "responsedescription", "error-description"];

/** Parses the body of a POST response. Throws XmlSyntaxError (a SyntaxError) with a precise message. */
export function parseScheduleResponse(xml: string | Uint8Array, options?: XmlReadOptions): ScheduleResponse {
  const root = parseXml(xml, options);
  if (root.name === "schedule-response" && (root.ns === ISCHEDULE_NS || root.ns === CALDAV_NS)) {
    const nsList = root.ns === ISCHEDULE_NS ? IS : CALDAV;
    const responses = root.children
      .filter((c) => c.name === "response" && nsList.includes(c.ns))
      .map((r, i) => readResponse(r, i + 1, nsList));
    return { kind: "responses", responses };
  }
  if (root.name === "error" && ANY_ERROR_NS.includes(root.ns)) {
    const named = root.children.find((c) => !DESCRIPTIONS.includes(c.name));
    const description = readDescription(root, [root.ns, ISCHEDULE_NS, DAV_NS, TWISTED_DAV_NS]);
    return {
      kind: "error",
      ...(named ? { element: named.name } : {}),
      ...(description !== undefined ? { description } : {}),
    };
  }
  throw new XmlSyntaxError(
    `Not an iSchedule response: the root element is <${root.name}> in namespace "${root.ns}", expected schedule-response or error in ${ISCHEDULE_NS}`,
  );
}

function readResponse(el: XmlElement, index: number, nsList: readonly string[]): ScheduleResponseItem {
  const where = `<response> #${index} (line ${el.line})`;
  const recipientEl = childElement(el, nsList, "recipient");
  if (!recipientEl) throw new XmlSyntaxError(`${where} has no <recipient>`);
  // CalDAV form: <recipient><D:href>mailto:…</D:href></recipient>
  const href = childElement(recipientEl, DAV, "href") ?? childElement(recipientEl, nsList, "href");
  const recipient = (href ? href.text : recipientEl.text).trim();
  if (recipient === "") throw new XmlSyntaxError(`${where} has an empty <recipient>`);
  const statusEl = childElement(el, nsList, "request-status");
  if (!statusEl) throw new XmlSyntaxError(`${where} for ${recipient} has no <request-status>`);
  const requestStatus = statusEl.text.trim();
  if (requestStatus === "")
    throw new XmlSyntaxError(`${where} for ${recipient} has an empty <request-status>`);

  const out: { -readonly [K in keyof ScheduleResponseItem]: ScheduleResponseItem[K] } = {
    recipient,
    requestStatus,
  };
  const data = childElement(el, nsList, "calendar-data");
  if (data) {
    out.calendarData = data.text.replace(/\r?\n/g, "\r\n");
    const type = data.attrs["content-type"];
    if (type !== undefined) out.calendarDataContentType = type;
  }
  const error = childElement(el, nsList, "error") ?? childElement(el, DAV, "error");
  if (error) {
    const name = error.children[0]?.name ?? error.text.trim();
    if (name !== "") out.error = name;
  }
  const description = readDescription(el, [...nsList, DAV_NS]);
  if (description !== undefined) out.description = description;
  return out;
}

function readDescription(el: XmlElement, nsList: readonly string[]): string | undefined {
  for (const name of DESCRIPTIONS) {
    const d = childElement(el, nsList, name);
    if (d) return deepText(d).trim();
  }
  return undefined;
}
