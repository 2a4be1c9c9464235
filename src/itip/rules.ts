/**
 * Who may send which scheduling message to whom: the RFC 5546 §3 method/component matrix and the
 * iSchedule Originator and Recipient tables (draft §6.1) as data, and the checks the receiver runs
 * (the sender uses `originatorFor()` to pick the Originator header).
 *
 * Which IS:error element each refusal maps to (draft §6.1.2):
 * - originator-denied: the Originator is not the party the method requires, e.g. a REQUEST sent by an
 *   ATTENDEE (iSchedule forbids forwarding, draft §6.1 Note 1) or a REPLY sent by anyone but the
 *   replying ATTENDEE. That calendar user is not allowed to send this message through the service.
 * - recipient-mismatch: the Recipients of a VFREEBUSY REQUEST are not exactly its ATTENDEEs, the one
 *   case the draft defines the element for.
 * - invalid-scheduling-message: everything else the draft calls "did not obey all restrictions
 *   specified for the POST request": a Recipient that is not an ATTENDEE of a REQUEST (draft §6.1
 *   Note 1) or not the ORGANIZER of a REPLY, a message lacking the ORGANIZER or ATTENDEE a check needs,
 *   a method with no rule, a component/method the RFC or this server's IS:scheduling-messages refuse.
 */
import { uniqueReplier } from "./_replier.ts";
import { addressKey, sameAddress } from "./address.ts";
import { clip, type ItipProblem } from "./errors.ts";
import type { CalAddress, ItipMessage } from "./types.ts";

export type Party = "ORGANIZER" | "ATTENDEE";

export interface PartyRule {
  /** The Originator must match this property. */
  readonly originator: Party;
  /** Every Recipient must match this property; ANY: no requirement. */
  readonly recipients: Party | "ANY";
}

/** draft §6.1, both tables; POLLSTATUS (VPOLL, as Cyrus implements it) goes from organizer to voters. */
export const ISCHEDULE_PARTY_RULES: Readonly<Record<string, PartyRule>> = {
  PUBLISH: { originator: "ORGANIZER", recipients: "ANY" },
  REQUEST: { originator: "ORGANIZER", recipients: "ATTENDEE" },
  REPLY: { originator: "ATTENDEE", recipients: "ORGANIZER" },
  ADD: { originator: "ORGANIZER", recipients: "ATTENDEE" },
  CANCEL: { originator: "ORGANIZER", recipients: "ATTENDEE" },
  REFRESH: { originator: "ATTENDEE", recipients: "ORGANIZER" },
  COUNTER: { originator: "ATTENDEE", recipients: "ORGANIZER" },
  DECLINECOUNTER: { originator: "ORGANIZER", recipients: "ATTENDEE" },
  POLLSTATUS: { originator: "ORGANIZER", recipients: "ATTENDEE" },
};

const GROUP_METHODS = [
  "PUBLISH",
  "REQUEST",
  "REPLY",
  "ADD",
  "CANCEL",
  "REFRESH",
  "COUNTER",
  "DECLINECOUNTER",
];

/** The methods defined for each component: RFC 5546 §3 table, plus VPOLL as Cyrus advertises it. */
export const ITIP_METHODS: Readonly<Record<string, readonly string[]>> = {
  VEVENT: GROUP_METHODS,
  VTODO: GROUP_METHODS,
  VJOURNAL: ["PUBLISH", "ADD", "CANCEL"],
  VFREEBUSY: ["PUBLISH", "REQUEST", "REPLY"],
  VPOLL: ["POLLSTATUS", "REQUEST", "REPLY", "CANCEL"],
};

/** One entry of the IS:scheduling-messages capability (draft §9.2.1.2). */
export interface AllowedComponent {
  readonly name: string;
  readonly methods: readonly string[];
}

/**
 * The calendar user the Originator must be: the ORGANIZER, or for REPLY and REFRESH the replying
 * ATTENDEE (parseItip() guarantees there is exactly one), or for COUNTER the ATTENDEE when there is only
 * one. Undefined when the message does not say (unknown method, no ORGANIZER, a COUNTER with several
 * ATTENDEEs): the sender must then know the Originator by other means.
 */
export function originatorFor(message: ItipMessage): CalAddress | undefined {
  const rule = ISCHEDULE_PARTY_RULES[message.method];
  if (!rule) return undefined;
  if (rule.originator === "ORGANIZER") return message.organizer && calAddress(message.organizer);
  const attendee =
    message.method === "REPLY" || message.method === "REFRESH"
      ? uniqueReplier(message.attendees)
      : message.attendees.length === 1
        ? message.attendees[0]
        : undefined;
  return attendee && calAddress(attendee);
}

function calAddress({ address, name }: CalAddress): CalAddress {
  return name === undefined ? { address } : { address, name };
}

export function checkOriginator(message: ItipMessage, originator: string): ItipProblem | undefined {
  const { method, component } = message;
  const rule = ISCHEDULE_PARTY_RULES[method];
  if (!rule) return invalid(`METHOD:${clip(method, 30)} has no Originator rule in iSchedule (draft §6.1)`);
  const who = show(originator);
  if (rule.originator === "ORGANIZER") {
    const organizer = message.organizer;
    if (!organizer)
      return invalid(`The ${component} has no ORGANIZER to check the Originator against (draft §6.1)`);
    if (sameAddress(organizer.address, originator)) return undefined;
    const forwarding =
      method === "REQUEST" && message.attendeeAddresses.some((a) => sameAddress(a, originator));
    const why = forwarding ? "; iSchedule does not allow forwarding (draft §6.1)" : " (draft §6.1)";
    return denied(
      `Originator ${who} is not the ORGANIZER (${show(organizer.address)}) of this ${method}${why}`,
    );
  }
  if (method === "REPLY" || method === "REFRESH") {
    const replier = uniqueReplier(message.attendees);
    if (!replier)
      return invalid(`The ${method} has no single replying ATTENDEE to check the Originator against`);
    if (sameAddress(replier.address, originator)) return undefined;
    return denied(
      `Originator ${who} is not the replying ATTENDEE (${show(replier.address)}) of this ${method} (draft §6.1)`,
    );
  }
  if (message.attendeeAddresses.length === 0) {
    return invalid(`The ${method} names no ATTENDEE to check the Originator against (draft §6.1)`);
  }
  if (message.attendeeAddresses.some((a) => sameAddress(a, originator))) return undefined;
  return denied(`Originator ${who} is not an ATTENDEE of this ${method} (draft §6.1)`);
}

export function checkRecipients(
  message: ItipMessage,
  recipients: readonly string[],
): ItipProblem | undefined {
  const { method, component } = message;
  if (recipients.length === 0) return invalid("The request names no Recipient");
  const rule = ISCHEDULE_PARTY_RULES[method];
  if (!rule) return invalid(`METHOD:${clip(method, 30)} has no Recipient rule in iSchedule (draft §6.1)`);
  const attendees = new Set(message.attendeeAddresses.map(addressKey));

  if (component === "VFREEBUSY" && method === "REQUEST") {
    // draft §3.1 and §6.1.2: the ATTENDEEs of a free/busy request match the Recipients one for one.
    const wanted = new Set(recipients.map(addressKey));
    const extra = unique(recipients.filter((r) => !attendees.has(addressKey(r))));
    const missing = message.attendeeAddresses.filter((a) => !wanted.has(addressKey(a)));
    if (extra.length === 0 && missing.length === 0) return undefined;
    const parts = [
      ...(extra.length > 0
        ? [`${list(extra)} ${extra.length > 1 ? "are not ATTENDEEs" : "is not an ATTENDEE"}`]
        : []),
      ...(missing.length > 0
        ? [`${list(missing)} ${missing.length > 1 ? "are not Recipients" : "is not a Recipient"}`]
        : []),
    ];
    return {
      element: "recipient-mismatch",
      message: `The Recipients of a VFREEBUSY request must be exactly its ATTENDEEs (draft §6.1.2), but ${parts.join(" and ")}`,
      recipients: extra,
    };
  }
  if (rule.recipients === "ANY") return undefined;
  if (rule.recipients === "ATTENDEE") {
    const strangers = unique(recipients.filter((r) => !attendees.has(addressKey(r))));
    if (strangers.length === 0) return undefined;
    const verb = strangers.length > 1 ? "are not ATTENDEEs" : "is not an ATTENDEE";
    return {
      element: "invalid-scheduling-message",
      message: `Recipient ${list(strangers)} ${verb} of this ${method}; iSchedule does not deliver to non-attendees (draft §6.1)`,
      recipients: strangers,
    };
  }
  const organizer = message.organizer;
  if (!organizer)
    return invalid(`The ${component} has no ORGANIZER to check the Recipients against (draft §6.1)`);
  const others = unique(recipients.filter((r) => !sameAddress(r, organizer.address)));
  if (others.length === 0) return undefined;
  return {
    element: "invalid-scheduling-message",
    message: `Recipient ${list(others)} ${others.length > 1 ? "are" : "is"} not the ORGANIZER (${show(organizer.address)}) of this ${method} (draft §6.1)`,
    recipients: others,
  };
}

/** The RFC 5546 §3 matrix, then the receiver's own IS:scheduling-messages capability. */
export function checkMethodAllowed(
  message: ItipMessage,
  allowed: readonly AllowedComponent[],
): ItipProblem | undefined {
  const { method, component } = message;
  const defined = ITIP_METHODS[component];
  if (defined && !defined.includes(method)) {
    const source = component === "VPOLL" ? "VPOLL scheduling" : "RFC 5546 §3";
    return invalid(
      `METHOD:${clip(method, 30)} is not defined for ${component} (${source} allows ${defined.join(", ")})`,
    );
  }
  const entry = allowed.find((a) => a.name.toUpperCase() === component);
  if (!entry) {
    const names = allowed.map((a) => a.name.toUpperCase()).join(", ") || "none";
    return invalid(
      `This server does not accept ${clip(component, 30)} scheduling messages (it accepts ${names})`,
    );
  }
  if (entry.methods.some((m) => m.toUpperCase() === method)) return undefined;
  const methods = entry.methods.map((m) => m.toUpperCase()).join(", ") || "none";
  return invalid(
    `This server does not accept METHOD:${clip(method, 30)} for ${component} (it accepts ${methods})`,
  );
}

const invalid = (message: string): ItipProblem => ({ element: "invalid-scheduling-message", message });
const denied = (message: string): ItipProblem => ({ element: "originator-denied", message });
const show = (address: string): string => clip(address.trim(), 60);

function unique(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const result: string[] = [];
  for (const address of addresses) {
    const key = addressKey(address);
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(address);
  }
  return result;
}

function list(addresses: readonly string[]): string {
  const shown = addresses.slice(0, 3).map(show).join(", ");
  return addresses.length > 3 ? `${shown} and ${addresses.length - 3} more` : shown;
}
