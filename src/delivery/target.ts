/**
 * A delivery target: where a group of deliveries of one message goes in one attempt (a local
 * calendar server, a webhook, isched's own store, an iMIP mailer, a remote iSchedule receiver).
 * Modelled on maddy's DeliveryTarget, reduced to what iSchedule needs: one call per attempt with
 * the message and the recipients, answering one outcome per recipient.
 *
 * deliver() does not throw for a peer's or a network's problems: it answers them as outcomes
 * (5.1 for "try later", 3.x/5.x for "never"), with what happened on the wire for the attempt log.
 */
import type { ComponentCapability } from "../ischedule/capabilities.ts";

/** The parts of a stored message a target needs. */
export interface TargetMessage {
  readonly uuid: string;
  readonly originator: string;
  readonly method: string;
  readonly component: string;
  readonly contentType: string;
  readonly body: Uint8Array;
  readonly uid: string | null;
  readonly summary: string | null;
  /** The verified signing domain of an inbound message, if any. */
  readonly dkimDomain: string | null;
  readonly dkimResult: string;
  /**
   * The iTIP facts a sender checks against a receiver, kept at intake (src/outbound/message-facts.ts
   * ItipSendFacts, as JSON); null when the message has none, and the body is parsed instead.
   */
  readonly sendFacts: string | null;
}

/** What a target gets of a message, stored or about to be (the intake asks before its commit). */
export function targetMessage(m: {
  readonly uuid: string;
  readonly originator: string;
  readonly method: string;
  readonly component: string;
  readonly contentType: string;
  readonly body?: Uint8Array | string | null;
  readonly uid?: string | null;
  readonly summary?: string | null;
  readonly dkimDomain?: string | null;
  readonly dkimResult?: string;
  readonly sendFacts?: string | null;
}): TargetMessage {
  return {
    uuid: m.uuid,
    originator: m.originator,
    method: m.method,
    component: m.component,
    contentType: m.contentType,
    body: typeof m.body === "string" ? Buffer.from(m.body) : (m.body ?? new Uint8Array()),
    uid: m.uid ?? null,
    summary: m.summary ?? null,
    dkimDomain: m.dkimDomain ?? null,
    dkimResult: m.dkimResult ?? "none",
    sendFacts: m.sendFacts ?? null,
  };
}

export interface RecipientOutcome {
  readonly recipient: string;
  /** iTIP REQUEST-STATUS, e.g. "2.0;Success", "3.7;Invalid calendar user", "5.1;Service unavailable". */
  readonly requestStatus: string;
  /** Free/busy: the VFREEBUSY REPLY. */
  readonly calendarData?: string;
  readonly description?: string;
  /** This recipient cannot be reached this way at all (no iSchedule receiver that can take it): email it. */
  readonly reroute?: "imip";
  /**
   * Nothing was tried: isched itself is not ready to send (its DKIM key is not yet visible in DNS,
   * so a peer would refuse the signature). Try again soon without counting an attempt; the
   * description says why.
   */
  readonly waiting?: true;
  /** Where this recipient's request went, when it differs per recipient (the peer URL discovery found). */
  readonly via?: {
    readonly target?: string;
    readonly httpStatus?: number;
    readonly response?: string;
    readonly tls?: string;
  };
}

export interface TargetAttempt {
  /** In the order of the recipients asked. */
  readonly outcomes: readonly RecipientOutcome[];
  /** What was contacted: a URL, an SMTP host, "store". Never credentials. */
  readonly target: string;
  readonly httpStatus?: number;
  readonly tls?: string;
  /** The raw answer, for the attempt log (the caller caps its size). */
  readonly response?: string;
  /** A Retry-After the peer asked for. */
  readonly retryAfterMs?: number;
  /** What went wrong, when the attempt failed as a whole. */
  readonly error?: string;
}

export interface DeliveryTarget {
  /** For logs, the database and the console; never a password. */
  readonly label: string;
  /** The components and methods this target can take (draft §9.2.1.3 form). */
  readonly handles: readonly ComponentCapability[];
  /** deliver() answers without I/O (the store): the intake may ask it before committing. */
  readonly immediate?: boolean;
  deliver(message: TargetMessage, recipients: readonly string[], signal: AbortSignal): Promise<TargetAttempt>;
}

/** The same outcome for every recipient: an attempt that failed as a whole. */
export function allRecipients(
  recipients: readonly string[],
  requestStatus: string,
  description?: string,
): RecipientOutcome[] {
  return recipients.map((recipient) => ({ recipient, requestStatus, description }));
}

/** What scheduling-capable calendar targets take: RFC 5546 methods of events and to-dos. */
export const EVENT_AND_TODO_METHODS: readonly ComponentCapability[] = [
  { name: "VEVENT", methods: ["REQUEST", "REPLY", "CANCEL", "ADD", "REFRESH", "COUNTER", "DECLINECOUNTER"] },
  { name: "VTODO", methods: ["REQUEST", "REPLY", "CANCEL", "ADD", "REFRESH", "COUNTER", "DECLINECOUNTER"] },
];

export interface RecipientAnswer {
  readonly recipient: string;
  readonly requestStatus: string;
  readonly calendarData?: string;
  readonly description?: string;
}

/**
 * One outcome per recipient asked, in order, from an answer that lists recipients in any order and
 * case; a recipient the answer leaves out gets 5.1 (try again) with `missing` as its description.
 */
export function matchAnswers(
  recipients: readonly string[],
  answers: readonly RecipientAnswer[],
  missing: string,
): RecipientOutcome[] {
  const byRecipient = new Map(answers.map((a) => [a.recipient.toLowerCase(), a]));
  return recipients.map((recipient) => {
    const a = byRecipient.get(recipient.toLowerCase());
    if (!a) return { recipient, requestStatus: "5.1;Service unavailable", description: missing };
    return {
      recipient,
      requestStatus: a.requestStatus,
      calendarData: a.calendarData,
      description: a.description,
    };
  });
}
