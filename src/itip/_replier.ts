/**
 * Who a REPLY (or REFRESH) comes from. RFC 5546 §3.2.3 allows one ATTENDEE, the replying one, but
 * §3.2.2.3 has a delegator's REPLY also carry the delegate's ATTENDEE (with DELEGATED-FROM naming the
 * delegator); so the candidates are the attendees not delegated from another attendee of the message.
 */
import { addressKey } from "./address.ts";
import type { Attendee } from "./types.ts";

function replierCandidates(attendees: readonly Attendee[]): Attendee[] {
  const present = new Set(attendees.map((a) => addressKey(a.address)));
  return attendees.filter((a) => !(a.delegatedFrom ?? []).some((d) => present.has(addressKey(d))));
}

/** The replying attendee, or undefined when there is none or more than one candidate. */
export function uniqueReplier(attendees: readonly Attendee[]): Attendee | undefined {
  const candidates = replierCandidates(attendees);
  return candidates.length === 1 ? candidates[0] : undefined;
}
