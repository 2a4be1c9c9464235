/**
 * The Subject of an iMIP message, in the words mail users know from Outlook and Google Calendar
 * ("Invitation: ...", "Accepted: ..."), so a message reads as what it is in a list of mail. The
 * summary comes from the peer: it is made single-line and shortened here; RFC 2047 encoding is the
 * message builder's job.
 */
import { oneLine } from "./_mime.ts";

export interface ImipSubjectOptions {
  /** The iTIP method (RFC 5546 §1.4), any case. */
  method: string;
  /** The SUMMARY of the event or to-do. */
  summary?: string;
  /** "VEVENT", "VTODO", "VFREEBUSY"; a VFREEBUSY has no summary and its own subjects. */
  component?: string;
  /** SEQUENCE (RFC 5545 §3.8.7.4): a REQUEST with a sequence above 0 is an update. */
  sequence?: number;
  /** For REPLY and COUNTER: the attendee's name, shown after the summary. */
  replyingName?: string;
  /** For REPLY: the attendee's PARTSTAT. */
  partstat?: string;
}

/** Longer summaries are cut: the subject is a list entry, the full text is in the body. */
const MAX_SUMMARY_CHARS = 120;

const REPLY_PREFIX: Readonly<Record<string, string>> = {
  ACCEPTED: "Accepted",
  DECLINED: "Declined",
  TENTATIVE: "Tentative",
  DELEGATED: "Delegated",
  COMPLETED: "Completed",
  "IN-PROCESS": "In progress",
};

export function imipSubject(o: ImipSubjectOptions): string {
  const method = o.method.toUpperCase();
  const name = oneLine(o.replyingName ?? "");
  const by = name === "" ? "" : ` (${name})`;
  if (o.component?.toUpperCase() === "VFREEBUSY") {
    return method === "REPLY" ? `Free/busy reply${by}` : "Free/busy request";
  }
  const title = shorten(oneLine(o.summary ?? "")) || "(no title)";
  switch (method) {
    case "REQUEST":
      return `${(o.sequence ?? 0) > 0 ? "Updated invitation" : "Invitation"}: ${title}`;
    case "ADD":
      return `Updated invitation: ${title}`;
    case "CANCEL":
      return `Cancelled: ${title}`;
    case "REPLY":
      return `${REPLY_PREFIX[o.partstat?.toUpperCase() ?? ""] ?? "Reply"}: ${title}${by}`;
    case "COUNTER":
      return `Counter proposal: ${title}${by}`;
    case "DECLINECOUNTER":
      return `Counter proposal declined: ${title}`;
    case "REFRESH":
      return `Update request: ${title}${by}`;
    case "PUBLISH":
      return `Event: ${title}`;
    default:
      return `${method}: ${title}`;
  }
}

function shorten(text: string): string {
  const chars = [...text];
  return chars.length <= MAX_SUMMARY_CHARS ? text : `${chars.slice(0, MAX_SUMMARY_CHARS - 1).join("")}…`;
}
