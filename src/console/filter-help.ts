/**
 * The words of the filter language, with no dependencies, so the page's script can import them as
 * well as the parser (src/console/filter.ts) does.
 */
import { DELIVERY_STATES, type DeliveryState } from "../store/delivery-states.ts";

export const FILTER_KEYS = [
  "peer",
  "status",
  "method",
  "uid",
  "organizer",
  "originator",
  "recipient",
  "dkim",
  "direction",
  "before",
  "after",
] as const;

export const STATUS_WORDS: readonly (DeliveryState | "refused")[] = [...DELIVERY_STATES, "refused"];

/** One line per key, for the inline help box and `isched queue list --help`. */
export const FILTER_HELP: readonly (readonly [term: string, help: string])[] = [
  ["peer:DOMAIN", "came from, or went to, this domain"],
  [
    "status:STATE",
    "a delivery is queued, in-flight, delivered, failed, sent-imip, cancelled or broken; refused: refused at intake (kept with its reason, never delivered)",
  ],
  ["method:METHOD", "iTIP method: REQUEST, REPLY, CANCEL, ..."],
  ["uid:UID", "the iCalendar UID"],
  ["organizer:ADDRESS", "ORGANIZER (mailto: may be left out)"],
  ["originator:ADDRESS", "the iSchedule Originator"],
  ["recipient:ADDRESS", "one of the recipients"],
  ["dkim:RESULT", "pass, fail, none or trusted"],
  ["direction:in|out", "received from a peer, or sent by us"],
  ["after:TIME before:TIME", "2026-11-25, 2026-11-25T14:30 (UTC), or 2h, 3d ago"],
  ["-key:value", 'negates a term; key:a,b matches either value; "quote values" with spaces'],
];

/** Quotes a value for a query when it needs it (the page's "click a value to filter"). */
export function quoteValue(value: string): string {
  return /^[^\s",]+$/.test(value) ? value : `"${value.replace(/(["\\])/g, "\\$1")}"`;
}
