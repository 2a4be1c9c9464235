import { describe, expect, test } from "bun:test";
import {
  checkMethodAllowed,
  checkOriginator,
  checkRecipients,
  ISCHEDULE_PARTY_RULES,
  ITIP_METHODS,
  normalizeAddress,
  originatorFor,
  parseItip,
  sameAddress,
} from "../../src/itip/index.ts";
import {
  A1_INVITE,
  A2_FREEBUSY_REQUEST,
  CANCEL,
  crlf,
  REPLY_ACCEPTED,
  replaceLine,
  VTODO_REQUEST,
} from "./_fixtures.ts";

const invite = parseItip(A1_INVITE);
const reply = parseItip(REPLY_ACCEPTED);
const freebusy = parseItip(A2_FREEBUSY_REQUEST);

/** A.1 with another METHOD (and what that method needs). */
const withMethod = (method: string) => parseItip(A1_INVITE.replace("METHOD:REQUEST", `METHOD:${method}`));

describe("rule tables", () => {
  test("the Originator and Recipient tables are the draft's §6.1 tables", () => {
    const table = Object.fromEntries(
      Object.entries(ISCHEDULE_PARTY_RULES).map(([method, rule]) => [
        method,
        `${rule.originator}->${rule.recipients}`,
      ]),
    );
    expect(table).toEqual({
      PUBLISH: "ORGANIZER->ANY",
      REQUEST: "ORGANIZER->ATTENDEE",
      REPLY: "ATTENDEE->ORGANIZER",
      ADD: "ORGANIZER->ATTENDEE",
      CANCEL: "ORGANIZER->ATTENDEE",
      REFRESH: "ATTENDEE->ORGANIZER",
      COUNTER: "ATTENDEE->ORGANIZER",
      DECLINECOUNTER: "ORGANIZER->ATTENDEE",
      POLLSTATUS: "ORGANIZER->ATTENDEE",
    });
  });

  test("the method/component matrix is RFC 5546 §3's, plus VPOLL", () => {
    expect(ITIP_METHODS.VJOURNAL).toEqual(["PUBLISH", "ADD", "CANCEL"]);
    expect(ITIP_METHODS.VFREEBUSY).toEqual(["PUBLISH", "REQUEST", "REPLY"]);
    expect(ITIP_METHODS.VTODO).toEqual(ITIP_METHODS.VEVENT!);
    expect(ITIP_METHODS.VEVENT).toHaveLength(8);
    expect(ITIP_METHODS.VPOLL).toEqual(["POLLSTATUS", "REQUEST", "REPLY", "CANCEL"]);
  });
});

describe("addresses", () => {
  test("normalizeAddress() lower-cases the scheme and the mailto: domain, keeps the local part", () => {
    expect(normalizeAddress("MAILTO:Bernard@Example.COM")).toBe("mailto:Bernard@example.com");
    expect(normalizeAddress(" bernard@Example.com ")).toBe("mailto:bernard@example.com");
    expect(normalizeAddress("URN:uuid:ABC-123")).toBe("urn:uuid:ABC-123");
  });

  test("sameAddress() ignores case in mailto: addresses, and only in the scheme elsewhere", () => {
    expect(sameAddress("MAILTO:Cyrus@Example.ORG", "mailto:cyrus@example.org")).toBe(true);
    expect(sameAddress("mailto:cyrus@example.org", "mailto:cyrus@example.com")).toBe(false);
    expect(sameAddress("URN:uuid:abc", "urn:uuid:abc")).toBe(true);
    expect(sameAddress("urn:uuid:ABC", "urn:uuid:abc")).toBe(false);
  });
});

describe("originatorFor()", () => {
  test("is the ORGANIZER for REQUEST, CANCEL and the other organizer methods", () => {
    expect(originatorFor(invite)).toEqual({ address: "mailto:bernard@example.com" });
    expect(originatorFor(parseItip(CANCEL))?.address).toBe("mailto:bernard@example.com");
    expect(originatorFor(withMethod("DECLINECOUNTER"))?.address).toBe("mailto:bernard@example.com");
  });

  test("is the replying ATTENDEE for a REPLY", () => {
    expect(originatorFor(reply)).toEqual({ address: "mailto:Cyrus@example.org", name: "Cyrus Daboo" });
  });

  test("is the delegator for a delegator's REPLY naming the delegate too", () => {
    const text = replaceLine(
      REPLY_ACCEPTED,
      "ATTENDEE;PARTSTAT=ACCEPTED;CN=Cyrus Daboo:MAILTO:Cyrus@Example.ORG",
      'ATTENDEE;PARTSTAT=NEEDS-ACTION;DELEGATED-FROM="mailto:cyrus@example.org":mailto:mike@example.org',
      'ATTENDEE;PARTSTAT=DELEGATED;DELEGATED-TO="mailto:mike@example.org":mailto:cyrus@example.org',
    );
    expect(originatorFor(parseItip(text))?.address).toBe("mailto:cyrus@example.org");
  });

  test("is undefined for a COUNTER with several ATTENDEEs and for an unknown METHOD", () => {
    const counter = withMethod("COUNTER");
    expect(counter.attendees).toHaveLength(2);
    expect(originatorFor(counter)).toBeUndefined();
    expect(originatorFor(withMethod("X-NOTIFY"))).toBeUndefined();
  });
});

describe("checkOriginator()", () => {
  test("accepts a REQUEST from its ORGANIZER, whatever the case of the address", () => {
    expect(checkOriginator(invite, "mailto:bernard@example.com")).toBeUndefined();
    expect(checkOriginator(invite, "MAILTO:Bernard@EXAMPLE.com")).toBeUndefined();
  });

  test("refuses a REQUEST whose Originator is an ATTENDEE (no forwarding)", () => {
    expect(checkOriginator(invite, "mailto:cyrus@example.org")).toEqual({
      element: "originator-denied",
      message:
        "Originator mailto:cyrus@example.org is not the ORGANIZER (mailto:bernard@example.com) of this REQUEST; iSchedule does not allow forwarding (draft §6.1)",
    });
  });

  test("refuses a CANCEL from someone who is not the ORGANIZER", () => {
    expect(checkOriginator(parseItip(CANCEL), "mailto:mallory@example.net")).toEqual({
      element: "originator-denied",
      message:
        "Originator mailto:mallory@example.net is not the ORGANIZER (mailto:bernard@example.com) of this CANCEL (draft §6.1)",
    });
  });

  test("accepts a REPLY from the replying ATTENDEE and refuses it from the ORGANIZER", () => {
    expect(checkOriginator(reply, "mailto:cyrus@example.org")).toBeUndefined();
    expect(checkOriginator(reply, "mailto:bernard@example.com")).toEqual({
      element: "originator-denied",
      message:
        "Originator mailto:bernard@example.com is not the replying ATTENDEE (mailto:Cyrus@example.org) of this REPLY (draft §6.1)",
    });
  });

  test("accepts a COUNTER from any of its ATTENDEEs and refuses it from anyone else", () => {
    const counter = withMethod("COUNTER");
    expect(checkOriginator(counter, "mailto:cyrus@example.org")).toBeUndefined();
    expect(checkOriginator(counter, "mailto:mike@example.org")?.element).toBe("originator-denied");
  });

  test("refuses a METHOD iSchedule has no rule for as an invalid scheduling message", () => {
    expect(checkOriginator(withMethod("X-NOTIFY"), "mailto:bernard@example.com")).toEqual({
      element: "invalid-scheduling-message",
      message: "METHOD:X-NOTIFY has no Originator rule in iSchedule (draft §6.1)",
    });
  });

  test("refuses a VTODO REFRESH without ORGANIZER only when the Recipients are checked", () => {
    const refresh = parseItip(
      crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//x//EN",
        "METHOD:REFRESH",
        "BEGIN:VTODO",
        "UID:34222-456@example.com",
        "DTSTAMP:20040901T200200Z",
        "ATTENDEE:mailto:cyrus@example.org",
        "END:VTODO",
        "END:VCALENDAR",
      ),
    );
    expect(checkOriginator(refresh, "mailto:cyrus@example.org")).toBeUndefined();
    expect(checkRecipients(refresh, ["mailto:bernard@example.com"])).toEqual({
      element: "invalid-scheduling-message",
      message: "The VTODO has no ORGANIZER to check the Recipients against (draft §6.1)",
    });
  });
});

describe("checkRecipients()", () => {
  test("accepts a REQUEST to its ATTENDEEs, whatever the case", () => {
    expect(checkRecipients(invite, ["mailto:cyrus@example.org"])).toBeUndefined();
    expect(
      checkRecipients(invite, ["MAILTO:CYRUS@example.org", "mailto:bernard@example.com"]),
    ).toBeUndefined();
  });

  test("refuses a REQUEST to someone who is not an ATTENDEE, naming that Recipient", () => {
    expect(checkRecipients(invite, ["mailto:cyrus@example.org", "mailto:eve@example.org"])).toEqual({
      element: "invalid-scheduling-message",
      message:
        "Recipient mailto:eve@example.org is not an ATTENDEE of this REQUEST; iSchedule does not deliver to non-attendees (draft §6.1)",
      recipients: ["mailto:eve@example.org"],
    });
  });

  test("accepts a REPLY to the ORGANIZER and refuses one to an ATTENDEE", () => {
    expect(checkRecipients(reply, ["mailto:bernard@example.com"])).toBeUndefined();
    expect(checkRecipients(reply, ["mailto:cyrus@example.org"])).toEqual({
      element: "invalid-scheduling-message",
      message:
        "Recipient mailto:cyrus@example.org is not the ORGANIZER (mailto:bernard@example.com) of this REPLY (draft §6.1)",
      recipients: ["mailto:cyrus@example.org"],
    });
  });

  test("accepts a PUBLISH to anyone", () => {
    const publish = parseItip(A1_INVITE.replace("METHOD:REQUEST", "METHOD:PUBLISH"));
    expect(checkRecipients(publish, ["mailto:anyone@example.net"])).toBeUndefined();
  });

  test("accepts a VFREEBUSY REQUEST whose Recipients are exactly its ATTENDEEs, in any order", () => {
    expect(
      checkRecipients(freebusy, ["mailto:mike@example.org", "mailto:Cyrus@Example.org"]),
    ).toBeUndefined();
  });

  test("refuses a VFREEBUSY REQUEST with a missing or an extra Recipient as recipient-mismatch", () => {
    expect(checkRecipients(freebusy, ["mailto:cyrus@example.org"])).toEqual({
      element: "recipient-mismatch",
      message:
        "The Recipients of a VFREEBUSY request must be exactly its ATTENDEEs (draft §6.1.2), but mailto:mike@example.org is not a Recipient",
      recipients: [],
    });
    const extra = checkRecipients(freebusy, [
      "mailto:cyrus@example.org",
      "mailto:mike@example.org",
      "mailto:eve@example.org",
    ]);
    expect(extra?.element).toBe("recipient-mismatch");
    expect(extra?.recipients).toEqual(["mailto:eve@example.org"]);
    expect(extra?.message).toContain("mailto:eve@example.org is not an ATTENDEE");
  });

  test("refuses an empty Recipient list", () => {
    expect(checkRecipients(invite, [])?.element).toBe("invalid-scheduling-message");
  });
});

describe("checkMethodAllowed()", () => {
  const cyrusLike = [
    { name: "VEVENT", methods: ["REQUEST", "REPLY", "CANCEL"] },
    { name: "VTODO", methods: ["REQUEST", "REPLY", "CANCEL"] },
    { name: "VFREEBUSY", methods: ["REQUEST"] },
  ];

  test("accepts what the capability lists, whatever the case of the names", () => {
    expect(checkMethodAllowed(invite, cyrusLike)).toBeUndefined();
    expect(
      checkMethodAllowed(parseItip(VTODO_REQUEST), [{ name: "vtodo", methods: ["request"] }]),
    ).toBeUndefined();
  });

  test("refuses a METHOD the capability does not list for the component", () => {
    expect(checkMethodAllowed(withMethod("ADD"), cyrusLike)).toEqual({
      element: "invalid-scheduling-message",
      message: "This server does not accept METHOD:ADD for VEVENT (it accepts REQUEST, REPLY, CANCEL)",
    });
  });

  test("refuses a component the capability does not list", () => {
    expect(checkMethodAllowed(invite, [{ name: "VFREEBUSY", methods: ["REQUEST"] }])).toEqual({
      element: "invalid-scheduling-message",
      message: "This server does not accept VEVENT scheduling messages (it accepts VFREEBUSY)",
    });
  });

  test("refuses a METHOD RFC 5546 does not define for the component, even if advertised", () => {
    const journal = parseItip(
      crlf(
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//x//EN",
        "METHOD:REQUEST",
        "BEGIN:VJOURNAL",
        "UID:j-1@example.com",
        "DTSTAMP:20040901T200200Z",
        "ORGANIZER:mailto:bernard@example.com",
        "DTSTART:20040902T130000Z",
        "END:VJOURNAL",
        "END:VCALENDAR",
      ),
    );
    expect(checkMethodAllowed(journal, [{ name: "VJOURNAL", methods: ["REQUEST"] }])).toEqual({
      element: "invalid-scheduling-message",
      message: "METHOD:REQUEST is not defined for VJOURNAL (RFC 5546 §3 allows PUBLISH, ADD, CANCEL)",
    });
  });
});
