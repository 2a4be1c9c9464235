/**
 * Real iMIP from other calendar systems (test/fixtures/imip, from Thunderbird's and icalendar's test
 * suites) through the SMTP intake: valid messages become iSchedule with the same METHOD, UID and
 * RECURRENCE-IDs; imperfect ones, which the intake once refused with 550 5.6.0, are relayed
 * unchanged to every recipient, as a plain relay would, and the log says why they were not upgraded.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseItip } from "../../src/itip/index.ts";
import { extractImip } from "../../src/smtp-intake/imip-extract.ts";
import { FIXTURES } from "../support/http-fixture.ts";
import { onBothBackends } from "../support/store-backends.ts";
import { asText, type Harness, startHarness } from "./_harness.ts";
import { readdress } from "./_readdress.ts";

const IMIP = join(FIXTURES, "imip");
const fixture = (name: string) => readFileSync(join(IMIP, name), "latin1");

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

interface Case {
  file: string;
  /** The organiser (envelope sender) and the attendees the mail goes to. */
  from: string;
  to: readonly string[];
  /** Attendees moved out of the organiser's domain (README: they share one in the fixture). */
  moves?: Readonly<Record<string, string>>;
}

/** The fixture as sent: its attendees moved where the README says, checked in its iMIP part. */
function mailOf(c: Case): string {
  const raw = fixture(c.file);
  if (!c.moves) return raw;
  const moved = readdress(raw, c.moves);
  const part = extractImip(Buffer.from(moved, "latin1"));
  const text = part.kind === "imip" ? part.itipText : "";
  for (const [from, to] of Object.entries(c.moves)) {
    expect(text).toContain(to);
    expect(text).not.toContain(from);
  }
  return moved;
}

const domainOf = (address: string) => address.slice(address.indexOf("@") + 1);

/** Each RECURRENCE-ID line's value, in order, from an iCalendar text. */
const recurrenceIds = (text: string) =>
  [...text.replace(/\r?\n[ \t]/g, "").matchAll(/^RECURRENCE-ID[^:\r\n]*:(\S+)/gm)].map((m) => m[1]);

/** Thunderbird's fixtures: the organiser stays, the two attendees move out of example.com. */
const THUNDERBIRD_PARTIES = {
  from: "sender@example.com",
  to: ["receiver@tb.example.net", "other@tb.example.net"],
  moves: { "receiver@example.com": "receiver@tb.example.net", "other@example.com": "other@tb.example.net" },
} as const;

const VALID: Case[] = [
  {
    file: "google/meet-meeting-invite.eml",
    from: "example@gmail.com",
    to: ["homer@example.com"],
  },
  {
    file: "thunderbird/repeat-event.eml",
    ...THUNDERBIRD_PARTIES,
  },
  {
    file: "thunderbird/exception-major.eml",
    ...THUNDERBIRD_PARTIES,
  },
  {
    file: "thunderbird/cancel-repeat-event.eml",
    ...THUNDERBIRD_PARTIES,
  },
  {
    file: "outlook/outlook-test-invite.eml",
    from: "marge@example.org",
    to: ["homer@ol.example.net"],
    moves: { "homer@example.org": "homer@ol.example.net" },
  },
  {
    file: "exchange/teams-meeting-invite.eml",
    from: "marge@example.com",
    to: ["bart@ms.example.net", "homer@ms.example.net"],
    moves: { "bart@example.com": "bart@ms.example.net", "homer@example.com": "homer@ms.example.net" },
  },
];

onBothBackends("real iMIP through the SMTP intake", (b) => {
  describe("valid iMIP from other calendar systems is upgraded to iSchedule", () => {
    test.each(VALID)("$file", async (c) => {
      const raw = mailOf(c);
      const sent = extractImip(Buffer.from(raw, "latin1"));
      if (sent.kind !== "imip") throw new Error(`${c.file}: no iMIP part`);
      const original = parseItip(sent.itipText);
      h = await startHarness({
        store: await b.fresh(),
        hosted: [domainOf(c.from)],
        schedulable: c.to.map(domainOf),
        record: true,
      });
      const r = await h.send({ from: c.from, to: c.to, raw: Buffer.from(raw, "latin1") });
      expect(r.ok && r.response).toStartWith(`250 2.0.0 Accepted: ${c.to.length} queued for iSchedule`);
      const [queued] = await h.queued();
      expect(queued!.message).toMatchObject({ method: original.method, uid: original.uid, intake: "smtp" });
      const body = asText(queued!.message.body);
      expect(recurrenceIds(body)).toEqual(recurrenceIds(sent.itipText));
      expect(queued!.deliveries.map((d) => [d.recipient, d.route])).toEqual(
        c.to.map((a) => [`mailto:${a}`, "ischedule"]),
      );
      // Everyone went by iSchedule: nothing for the smarthost.
      expect(h.sink.connections()).toBe(0);
    });

    test("the RECURRENCE-ID of Thunderbird's moved instance is carried as sent", async () => {
      const text = extractImip(Buffer.from(fixture("thunderbird/exception-major.eml"), "latin1"));
      expect(text.kind === "imip" && recurrenceIds(text.itipText)).toEqual(["20220317T110000Z"]);
    });
  });

  /** Meetup's calendar in a mail as Meetup sends it: `method=REQUEST` on a METHOD:PUBLISH body. */
  function meetupMail(): string {
    const ics = fixture("meetup/case_meetup.ics").replace(/\r?\n/g, "\r\n");
    return [
      "From: Alice <alice@example.com>",
      "To: bob@peer.example",
      "Subject: DevOps DC Meetup",
      "MIME-Version: 1.0",
      'Content-Type: text/calendar; charset="UTF-8"; method=REQUEST',
      "Content-Transfer-Encoding: 8bit",
      "",
      ics,
    ].join("\r\n");
  }

  const IMPERFECT: (Case & { why: RegExp; raw?: () => string })[] = [
    {
      file: "thunderbird/single-event.eml",
      ...THUNDERBIRD_PARTIES,
      why: /has both DURATION and DTEND/,
    },
    {
      // Its calendar names nobody: the envelope alone says where it goes.
      file: "hcl-notes/invite.eml",
      from: "john@example.com",
      to: ["tom@notes.example.net"],
      why: /has no METHOD property/,
    },
    {
      file: "meetup/case_meetup.ics",
      from: "alice@example.com",
      to: ["bob@peer.example"],
      raw: meetupMail,
      // Its PUBLISHed VEVENTs have no ORGANIZER, before the method parameter even disagrees.
      why: /METHOD:PUBLISH requires ORGANIZER in every VEVENT/,
    },
  ];

  describe("imperfect iMIP is relayed unchanged to every recipient, never refused", () => {
    test.each(IMPERFECT)("$file", async (c) => {
      const raw = c.raw ? c.raw() : mailOf(c);
      h = await startHarness({
        store: await b.fresh(),
        hosted: [domainOf(c.from)],
        schedulable: c.to.map(domainOf),
        record: true,
      });
      const r = await h.send({ from: c.from, to: c.to, raw: Buffer.from(raw, "latin1") });
      expect(r.ok && r.response).toStartWith(
        `250 2.0.0 Accepted: ${c.to.length} relayed, not upgraded to iSchedule (`,
      );
      expect(r.ok && r.response).toMatch(c.why);
      const [mail] = await h.sink.waitFor(1);
      expect(mail!.rcptTo).toEqual([...c.to]);
      // Unchanged, in SMTP's form: lines end in CRLF on the wire (RFC 5321 §2.3.8).
      expect(Buffer.from(mail!.raw).toString("latin1")).toBe(raw.replace(/\r?\n/g, "\r\n"));
      const [logged] = await h.queued();
      expect(logged!.deliveries.map((d) => [d.route, d.state])).toEqual(
        c.to.map(() => ["relay", "delivered"]),
      );
      expect(logged!.deliveries[0]!.attemptList[0]!.error).toMatch(c.why);
    });
  });

  test("a PUBLISHed event (a shop's confirmation) is not scheduling: it goes on as mail", async () => {
    const raw = fixture("thunderbird/message-containing-event.eml");
    h = await startHarness({ store: await b.fresh(), hosted: ["example.com"], schedulable: ["example.net"] });
    const r = await h.send({
      from: "noreply@example.com",
      to: ["foo@example.net"],
      raw: Buffer.from(raw, "latin1"),
    });
    expect(r.ok && r.response).toBe("250 2.0.0 Accepted: 1 relayed");
    expect(Buffer.from((await h.sink.waitFor(1))[0]!.raw).toString("latin1")).toBe(
      raw.replace(/\r?\n/g, "\r\n"),
    );
    expect(await h.queued()).toHaveLength(0);
  });
});
