/**
 * When two iTIP messages are the same revision of the same thing (RFC 5546 §2.1.5): the same METHOD
 * and UID, and for each component the same RECURRENCE-ID, SEQUENCE and DTSTAMP. iTIP itself has no
 * finer identity: a calendar user agent that gets the same revision again cannot tell it from the
 * first ("the component with the latest DTSTAMP overrides all others"), so delivering it twice only
 * repeats the first delivery. The receiver uses this to deliver a peer's re-sent message once
 * (src/inbound/resends.ts).
 */
import type { ItipMessage } from "./types.ts";

/**
 * A string that is equal for two messages exactly when they are the same revision, or undefined when
 * the message cannot be told apart from a different one by these properties: a component without
 * DTSTAMP (two different replies to one SEQUENCE would look alike), and free/busy requests, which are
 * queries answered afresh each time rather than messages delivered.
 */
export function revisionOf(message: ItipMessage): string | undefined {
  if (message.component === "VFREEBUSY") return undefined;
  if (message.revisions.length === 0 || message.revisions.some((r) => r.dtstamp === undefined))
    return undefined;
  // The order of components within a message does not make another revision.
  const components = message.revisions
    .map((r) => `${r.recurrenceId ?? "-"} ${r.sequence} ${r.dtstamp}`)
    .sort();
  return [message.method, message.component, message.uid, ...components].join("\n");
}
