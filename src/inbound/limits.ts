/**
 * What the receiver takes: the limits it advertises in its capabilities (draft §9.2.1: max-recipients,
 * max-content-length, min-date-time, max-date-time, max-instances) and enforces on every request.
 */

export interface Limits {
  readonly maxRecipients: number;
  readonly maxContentLength: number;
  /** iCalendar UTC DATE-TIME, e.g. 19000101T000000Z. */
  readonly minDateTime: string;
  readonly maxDateTime: string;
  readonly maxInstances: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxRecipients: 100,
  maxContentLength: 1024 * 1024,
  minDateTime: "19000101T000000Z",
  maxDateTime: "21001231T235959Z",
  maxInstances: 10_000,
};
