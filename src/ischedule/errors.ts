/**
 * The one error type callers of the iSchedule modules are expected to catch: an overall (not
 * per-recipient) refusal of a POST, named by its draft §6.1.2 error element, with the HTTP status the
 * receiver answers with and a message that is safe to send back to the remote peer.
 *
 * HTTP status per element. The draft binds none (draft §6.1.2): it lists 400 for "an invalid scheduling
 * message, or invalid iSchedule request headers" and 403 for "the Sender cannot submit", and says 403 is
 * typical with an IS:error body. isched uses:
 * - 400 for everything wrong with the headers or the body, including the capability limits
 *   (max-recipients, attachment types, date range, instances): the request is well formed HTTP but an
 *   invalid iSchedule request for this receiver, which is what Cyrus answers too.
 * - 400, not 415, for invalid-calendar-data-type: Cyrus does so, the draft only lists 400, and peers
 *   (CalendarServer: any non-200 is 5.1) read the IS:error element, not the status class.
 * - 403 for verification-failed and originator-denied: authorization refusals (draft §7.4, example A.3).
 * - 413 for max-content-length (RFC 9110 §15.5.14), so an HTTP layer may refuse before reading the body.
 */

export type IScheduleErrorElement =
  | "version-not-supported"
  | "invalid-calendar-data-type"
  | "invalid-calendar-data"
  | "invalid-scheduling-message"
  | "verification-failed"
  | "originator-missing"
  | "too-many-originators"
  | "originator-invalid"
  | "originator-denied"
  | "recipient-missing"
  | "recipient-mismatch"
  | "max-recipients"
  | "attachment-type-not-supported"
  | "max-content-length"
  | "min-date-time"
  | "max-date-time"
  | "max-instances";

export const HTTP_STATUS_FOR: Readonly<Record<IScheduleErrorElement, number>> = {
  "version-not-supported": 400,
  "invalid-calendar-data-type": 400,
  "invalid-calendar-data": 400,
  "invalid-scheduling-message": 400,
  "verification-failed": 403,
  "originator-missing": 400,
  "too-many-originators": 400,
  "originator-invalid": 400,
  "originator-denied": 403,
  "recipient-missing": 400,
  "recipient-mismatch": 400,
  "max-recipients": 400,
  "attachment-type-not-supported": 400,
  "max-content-length": 413,
  "min-date-time": 400,
  "max-date-time": 400,
  "max-instances": 400,
};

export const ISCHEDULE_ERROR_ELEMENTS = Object.keys(HTTP_STATUS_FOR) as readonly IScheduleErrorElement[];

/** True for the 17 error elements of draft §6.1.2 (peers also send others, e.g. CalendarServer's). */
export function isIScheduleErrorElement(name: string): name is IScheduleErrorElement {
  return Object.hasOwn(HTTP_STATUS_FOR, name);
}

export class IScheduleError extends Error {
  override readonly name = "IScheduleError";
  readonly element: IScheduleErrorElement;
  readonly httpStatus: number;
  /** One sentence for the remote peer's <response-description>; the details belong in `cause`. */
  readonly publicMessage: string;

  constructor(
    element: IScheduleErrorElement,
    publicMessage: string,
    options: { cause?: unknown; httpStatus?: number } = {},
  ) {
    super(publicMessage, options.cause === undefined ? undefined : { cause: options.cause });
    this.element = element;
    this.httpStatus = options.httpStatus ?? HTTP_STATUS_FOR[element];
    this.publicMessage = publicMessage;
  }
}
