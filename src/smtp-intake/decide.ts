/**
 * What the SMTP intake does with one mail transaction: refuse it, or split its recipients between
 * iSchedule and the smarthost. Pure: the answers of discovery come in as `schedulable`.
 *
 * isched is never an open relay. The envelope sender (RFC 5321 §4.1.1.2 reverse-path) must be in a
 * hosted domain, and so must the Originator of an iMIP message (RFC 6047 §2: the ORGANIZER of a
 * request, the replying ATTENDEE of a reply; `originatorFor()`), because RFC 6047 §2.3 says the
 * calendar addresses, not the mail headers, say who acts. Anything else is a relay attempt: 550 5.7.1
 * (RFC 3463 "delivery not authorized").
 *
 * A recipient goes by iSchedule only when all of these hold; otherwise it is relayed unchanged:
 * - the message is iMIP and not a free/busy request (its answer comes back in the iSchedule response
 *   and the intake has no way to mail it back to the requester), nor a PUBLISH (it names no
 *   recipient: it is mail about an event, and the mail is the point);
 * - the recipient's domain is not hosted: hosted users are relayed to their own mail server, which
 *   delivers the iMIP message to them as it always has (isched's local targets serve iSchedule
 *   peers, not the calendar server's own mail);
 * - iTIP allows the recipient for this method (an ATTENDEE of a request, the ORGANIZER of a reply:
 *   `checkRecipients()`); a Bcc to someone else is plain mail;
 * - discovery said the domain's iSchedule receiver takes this message.
 */
import { addressDomain } from "../ischedule/address.ts";
import { checkRecipients, type ItipMessage, originatorFor } from "../itip/index.ts";

export interface SmtpEnvelope {
  /** MAIL FROM address; "" for the null reverse-path. */
  readonly mailFrom: string;
  /** RCPT TO addresses, in order. */
  readonly rcptTo: readonly string[];
}

export type Decision =
  | { readonly kind: "refuse"; readonly code: 550; readonly status: "5.7.1"; readonly reason: string }
  | {
      readonly kind: "route";
      /** The Originator of the iMIP message (a mailto: address); absent for plain mail. */
      readonly originator?: string;
      /** Envelope recipients (as given) that go by iSchedule. */
      readonly ischedule: readonly string[];
      /** Envelope recipients that the smarthost gets, with the original bytes. */
      readonly relay: readonly string[];
    };

export interface DecideInput {
  envelope: SmtpEnvelope;
  /** The parsed iTIP message of the iMIP part; undefined when the mail is not iMIP. */
  itip?: ItipMessage;
  hosted: (domain: string) => boolean;
  /** True when discovery found an iSchedule receiver in `domain` that takes this message. */
  schedulable: (domain: string) => boolean;
}

export function decide(i: DecideInput): Decision {
  const refusal = authorize(i);
  if (refusal) return refusal;
  const candidates = schedulingCandidates(i);
  const ischedule = i.envelope.rcptTo.filter((r) => {
    const domain = mailDomain(r);
    return candidates.get(domain)?.includes(r) === true && i.schedulable(domain);
  });
  const chosen = new Set(ischedule);
  const relay = i.envelope.rcptTo.filter((r) => !chosen.has(r));
  const originator = i.itip && originatorFor(i.itip)?.address;
  return { kind: "route", ...(originator !== undefined && { originator }), ischedule, relay };
}

/** The refusal, when the envelope sender or the Originator is not ours. */
export function authorize(i: Pick<DecideInput, "envelope" | "itip" | "hosted">): Decision | undefined {
  const senderProblem = checkEnvelopeSender(i.envelope.mailFrom, i.hosted);
  if (senderProblem) return refuse(senderProblem);
  if (!i.itip) return undefined;
  const originator = originatorFor(i.itip)?.address;
  if (originator === undefined) {
    return refuse(
      `The ${i.itip.method} does not say who sends it (no ORGANIZER or replying ATTENDEE), so isched cannot check it is sent for a domain served here`,
    );
  }
  const domain = addressDomain(originator);
  if (!originator.toLowerCase().startsWith("mailto:") || domain === undefined || !i.hosted(domain)) {
    return refuse(
      `The Originator ${originator.slice(0, 100)} is not in a domain served here; isched relays only for its own domains`,
    );
  }
  return undefined;
}

/** Why the reverse-path may not use this relay, or undefined when it may. */
export function checkEnvelopeSender(
  mailFrom: string,
  hosted: (domain: string) => boolean,
): string | undefined {
  if (mailFrom === "")
    return "The null reverse-path <> has no domain to check; isched relays only for its own domains";
  const domain = mailDomain(mailFrom);
  if (domain === "" || !hosted(domain)) {
    return `The sender <${mailFrom.slice(0, 100)}> is not in a domain served here; isched relays only for its own domains`;
  }
  return undefined;
}

/**
 * Remote domains worth asking discovery about, each with the envelope recipients that could go
 * there by iSchedule. Empty for plain mail and for free/busy requests.
 */
export function schedulingCandidates(
  i: Pick<DecideInput, "envelope" | "itip" | "hosted">,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const itip = i.itip;
  if (!itip || (itip.component === "VFREEBUSY" && itip.method === "REQUEST")) return out;
  // A PUBLISH names no recipient (RFC 5546 §3.2.1): whoever the mail is for, it is mail about an
  // event (a shop's booking, a newsletter's calendar), and upgrading it would drop the mail itself.
  if (itip.method === "PUBLISH") return out;
  for (const r of i.envelope.rcptTo) {
    const domain = mailDomain(r);
    if (domain === "" || i.hosted(domain)) continue;
    if (checkRecipients(itip, [`mailto:${r}`]) !== undefined) continue;
    out.set(domain, [...(out.get(domain) ?? []), r]);
  }
  return out;
}

/** Lower-case domain of an RFC 5321 mailbox, without a trailing dot; "" when there is none. */
export function mailDomain(address: string): string {
  const at = address.lastIndexOf("@");
  return at === -1
    ? ""
    : address
        .slice(at + 1)
        .toLowerCase()
        .replace(/\.$/, "");
}

function refuse(reason: string): Decision {
  return { kind: "refuse", code: 550, status: "5.7.1", reason };
}
