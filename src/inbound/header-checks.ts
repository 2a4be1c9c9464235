/**
 * The header checks of a scheduling POST, in the order of the notes' receiver checklist (§11.1):
 * iSchedule-Version, Content-Type, Originator, Recipient (with max-recipients). Pure: each failure
 * is an IScheduleError with its element and HTTP status.
 */
import type { Capabilities } from "../ischedule/capabilities.ts";
import { IScheduleError } from "../ischedule/errors.ts";
import {
  parseOriginator,
  parseRecipients,
  parseVersionHeader,
  type Recipient,
} from "../ischedule/headers.ts";
import { type ContentType, parseContentType, requireAcceptedMediaType } from "../ischedule/media-type.ts";

export interface CheckedHeaders {
  readonly version: string;
  readonly contentType: ContentType;
  readonly contentTypeRaw: string;
  readonly originator: string;
  readonly recipients: readonly Recipient[];
  readonly messageId?: string;
}

/** All values of a header, as an HTTP stack exposes them (repeated fields joined with ", "). */
const values = (headers: Headers, name: string): string[] => {
  const v = headers.get(name);
  return v === null ? [] : [v];
};

export function checkHeaders(headers: Headers, caps: Capabilities): CheckedHeaders {
  const version = parseVersionHeader(values(headers, "ischedule-version"), caps.versions);
  const contentTypeRaw = headers.get("content-type") ?? "";
  const contentType = parseContentType(contentTypeRaw);
  requireAcceptedMediaType(contentType, caps.calendarDataTypes);
  const originator = parseOriginator(values(headers, "originator"));
  const recipients = parseRecipients(
    values(headers, "recipient"),
    caps.maxRecipients ?? Number.MAX_SAFE_INTEGER,
  );
  const messageId = headers.get("ischedule-message-id")?.trim() || undefined;
  if (messageId !== undefined && messageId.length > 256) {
    throw new IScheduleError(
      "invalid-scheduling-message",
      "iSchedule-Message-ID is longer than 256 characters.",
    );
  }
  return { version, contentType, contentTypeRaw, originator, recipients, messageId };
}
