/**
 * iCalendar parsing and iTIP rules (RFC 5546) for iSchedule: pure functions, no I/O. The receiver
 * checks every inbound scheduling message with these; the sender and the SMTP intake use them to find
 * the Originator and recipients and to build free/busy bodies.
 */
export { addressKey, displayAddress, isCalendarAddress, normalizeAddress, sameAddress } from "./address.ts";
export { ItipError, type ItipErrorKind, type ItipProblem } from "./errors.ts";
export {
  type BusyPeriod,
  type BusyType,
  type FreeBusyReply,
  type FreeBusyReplyOptions,
  freeBusyReplyFor,
  parseFreeBusyReply,
  restrictFreeBusyAttendees,
} from "./freebusy.ts";
export { countInstances, ITERATION_BUDGET } from "./instances.ts";
export { parseItip } from "./parse.ts";
export {
  ITIP_RESTRICTIONS,
  type RequiredProperty,
  type Restriction,
  restrictionFor,
} from "./restrictions.ts";
export { revisionOf } from "./revision.ts";
export {
  type AllowedComponent,
  checkMethodAllowed,
  checkOriginator,
  checkRecipients,
  ISCHEDULE_PARTY_RULES,
  ITIP_METHODS,
  originatorFor,
  type Party,
  type PartyRule,
} from "./rules.ts";
export { DEFAULT_SPAN_LIMIT, type ScheduledSpan, scheduledSpan } from "./scheduled-span.ts";
export { describeItip, type ItipSummary, replyingAttendee } from "./summary.ts";
export type { Attendee, CalAddress, ItipComponent, ItipMessage, Revision } from "./types.ts";
