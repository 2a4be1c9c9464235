/**
 * The model of one parsed iTIP scheduling message (RFC 5546), as the receiver, the sender, the SMTP
 * intake and the console need it. Built by `parseItip()`; plain data, safe to log or serialise.
 */

/** A calendar user address (RFC 5545 CAL-ADDRESS) with its CN parameter. */
export interface CalAddress {
  /**
   * The URI as written, with `mailto:` addresses normalised: scheme and domain lower-case, local part
   * kept (`MAILTO:Bernard@Example.COM` becomes `mailto:Bernard@example.com`). A bare `user@domain`
   * (no scheme, seen from broken clients) gets `mailto:` in front.
   */
  readonly address: string;
  /** The CN parameter. */
  readonly name?: string;
}

export interface Attendee extends CalAddress {
  /** PARTSTAT, upper-case (NEEDS-ACTION, ACCEPTED, DECLINED, TENTATIVE, DELEGATED, ...). */
  readonly partstat?: string;
  /** ROLE, upper-case (CHAIR, REQ-PARTICIPANT, ...). */
  readonly role?: string;
  /** RSVP=TRUE (RSVP=YES, which some clients write, counts as true). */
  readonly rsvp?: boolean;
  /** SCHEDULE-AGENT (RFC 6638 §7.1), upper-case. */
  readonly scheduleAgent?: string;
  /** CUTYPE, upper-case (INDIVIDUAL, ROOM, ...). */
  readonly cutype?: string;
  /** DELEGATED-FROM addresses, normalised like `address`. */
  readonly delegatedFrom?: readonly string[];
  /** DELEGATED-TO addresses, normalised like `address`. */
  readonly delegatedTo?: readonly string[];
}

/** Component types with iTIP methods; any other IANA component name is carried as a plain string. */
export type ItipComponent = "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY" | "VPOLL";

export interface Revision {
  readonly recurrenceId?: string;
  readonly sequence: number;
  readonly dtstamp?: string;
}

export interface ItipMessage {
  /** METHOD, upper-case (values are case-insensitive, RFC 5545 §2). */
  readonly method: string;
  /** The one component type apart from VTIMEZONE (RFC 5546 §1.4), upper-case. */
  readonly component: ItipComponent | (string & {});
  readonly uid: string;
  /** ORGANIZER of the master component (or the first one when there is no master). */
  readonly organizer?: CalAddress;
  /**
   * ATTENDEEs of the master component (or the first one). For REPLY, also those of the other
   * components, so every replying attendee is listed once. For VPOLL, VOTER properties count too.
   */
  readonly attendees: readonly Attendee[];
  /** Every ATTENDEE (and VPOLL VOTER) address of every component, normalised, each once: what Recipients are checked against. */
  readonly attendeeAddresses: readonly string[];
  /** SEQUENCE of the master (or first) component; 0 when absent. */
  readonly sequence: number;
  /**
   * What identifies the revision of each main component (RFC 5546 §2.1.5), in message order:
   * RECURRENCE-ID and DTSTAMP in the form `20040902T130000Z` (UTC), SEQUENCE (0 when absent).
   * `recurrenceId` is absent for a master, `dtstamp` for a component without DTSTAMP.
   */
  readonly revisions: readonly Revision[];
  readonly summary?: string;
  /**
   * DTSTART and DTEND (or DUE, or DTSTART + DURATION) of the master (or first) component, in ISO 8601:
   * `2004-09-02` for DATE values, `2004-09-02T13:00:00Z` for DATE-TIME values converted to UTC
   * (floating times and TZIDs without a VTIMEZONE in the message are read as UTC).
   */
  readonly start?: string;
  readonly end?: string;
  readonly recurrence: {
    /** The master has an RRULE. */
    readonly rrule: boolean;
    /**
     * An RRULE of the master has neither COUNT nor UNTIL: its instances never end, so a max-instances
     * limit cannot apply to it (a weekly meeting "forever" is ordinary).
     */
    readonly openEnded: boolean;
    /** RDATE values of the master. */
    readonly rdates: number;
    /** EXDATE values of the master. */
    readonly exdates: number;
    /** Components with a RECURRENCE-ID. */
    readonly overridden: number;
  };
  /** ATTACH properties: inline (VALUE=BINARY / ENCODING=BASE64) or external (URI), draft §9.2.1.5. */
  readonly attachments: { readonly inline: number; readonly external: number };
  /** The body exactly as received. */
  readonly text: string;
}
