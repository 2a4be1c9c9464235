/**
 * The SMTP intake end to end over real sockets: what is queued for iSchedule, what reaches the
 * smarthost (byte for byte), and what is refused with which reply.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { onBothBackends } from "../support/store-backends.ts";
import { asText, dialog, type Harness, startHarness } from "./_harness.ts";
import {
  attachedIcsMail,
  brokenCalendarMail,
  bytes,
  cyrusMail,
  itipRequest,
  nextcloudMail,
  plainMail,
} from "./_messages.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const BOB = "bob@ischedule.example";
const CAROL = "carol@mail-only.example";

onBothBackends("SMTP intake", (b) => {
  describe("SMTP intake routing", () => {
    test("a Cyrus REQUEST queues the iSchedule attendee and relays the original bytes to the other", async () => {
      h = await startHarness({ store: await b.fresh() });
      const raw = bytes(cyrusMail());
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw });
      expect(r.ok && r.response).toMatch(
        /^250 2\.0\.0 Accepted: 1 queued for iSchedule \(message [0-9a-f-]+\), 1 relayed$/,
      );

      const queued = await h.queued();
      expect(queued).toHaveLength(1);
      const { message, deliveries } = queued[0]!;
      expect([message.intake, message.originator, message.method, message.direction]).toEqual([
        "smtp",
        "mailto:alice@example.com",
        "REQUEST",
        "outbound",
      ]);
      expect(Buffer.from(message.body).toString("utf8")).toBe(itipRequest());
      expect(message.headers).toContainEqual([
        "Message-ID",
        "<cmu-httpd-4242-1767603600-1@mail.example.com>",
      ]);
      expect(deliveries.map((d) => [d.recipient, d.route, d.state])).toEqual([
        [`mailto:${BOB}`, "ischedule", "queued"],
      ]);

      const relayed = await h.sink.waitFor(1);
      expect(relayed).toHaveLength(1);
      expect(relayed[0]!.mailFrom).toBe("alice@example.com");
      expect(relayed[0]!.rcptTo).toEqual([CAROL]);
      expect(Buffer.compare(Buffer.from(relayed[0]!.raw), Buffer.from(raw))).toBe(0);

      expect(h.asked.map((a) => a.domain).sort()).toEqual(["ischedule.example", "mail-only.example"]);
      const facts = h.asked.find((a) => a.domain === "ischedule.example")!.facts;
      expect([facts.originator, facts.recipients, facts.itip.uid]).toEqual([
        "mailto:alice@example.com",
        [`mailto:${BOB}`],
        "c0ffee-1@example.com",
      ]);
    });

    test("plain mail is relayed unchanged, dot-stuffed lines included, and nothing is queued", async () => {
      h = await startHarness({ store: await b.fresh() });
      const raw = bytes(plainMail({ to: BOB }));
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw });
      expect(r.ok && r.response).toBe("250 2.0.0 Accepted: 1 relayed");
      const [got] = await h.sink.waitFor(1);
      expect(asText(got!.raw)).toBe(asText(raw));
      expect(Buffer.compare(Buffer.from(got!.raw), Buffer.from(raw))).toBe(0);
      expect(await h.queued()).toHaveLength(0);
      expect(h.asked).toHaveLength(0);
    });

    test("a Nextcloud invitation (only an event.ics attachment) is recognised and queued", async () => {
      h = await startHarness({ store: await b.fresh() });
      const r = await h.send({ from: "invitations-noreply@example.com", to: [BOB], raw: nextcloudMail() });
      expect(r.ok).toBe(true);
      const queued = await h.queued();
      expect(queued.map((q) => q.deliveries.map((d) => [d.recipient, d.route]))).toEqual([
        [[`mailto:${BOB}`, "ischedule"]],
      ]);
      expect(h.sink.connections()).toBe(0);
    });

    test("when every recipient goes by iSchedule the smarthost is not contacted", async () => {
      h = await startHarness({
        store: await b.fresh(),
        schedulable: ["ischedule.example", "mail-only.example"],
      });
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw: cyrusMail() });
      expect(r.ok && r.response).toMatch(/^250 2\.0\.0 Accepted: 2 queued for iSchedule/);
      expect((await h.queued())[0]!.deliveries.map((d) => d.recipient)).toEqual([
        `mailto:${BOB}`,
        `mailto:${CAROL}`,
      ]);
      expect(h.sink.connections()).toBe(0);
    });

    test("a hosted attendee of an iMIP message is relayed to its own mail server, not queued", async () => {
      h = await startHarness({ store: await b.fresh() });
      const itip = itipRequest({ attendees: ["dave@example.com", BOB] });
      const r = await h.send({
        from: "alice@example.com",
        to: ["dave@example.com", BOB],
        raw: cyrusMail({ itip }),
      });
      expect(r.ok).toBe(true);
      expect((await h.queued())[0]!.deliveries.map((d) => d.recipient)).toEqual([`mailto:${BOB}`]);
      expect((await h.sink.waitFor(1))[0]!.rcptTo).toEqual(["dave@example.com"]);
    });

    test("an ORGANIZER outside the hosted domains is refused with 550 5.7.1: nothing queued, nothing relayed", async () => {
      h = await startHarness({ store: await b.fresh() });
      const itip = itipRequest({ organizer: "mallory@elsewhere.example" });
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw: cyrusMail({ itip }) });
      expect(!r.ok && [r.code, r.response]).toEqual([
        550,
        expect.stringMatching(
          /^550 5\.7\.1 The Originator mailto:mallory@elsewhere\.example is not in a domain served here/,
        ),
      ]);
      expect(await h.queued()).toHaveLength(0);
      expect(h.sink.connections()).toBe(0);
    });

    test("an envelope sender outside the hosted domains is refused at MAIL FROM with 550 5.7.1", async () => {
      h = await startHarness({ store: await b.fresh() });
      const r = await h.send({ from: "alice@elsewhere.example", to: [CAROL], raw: plainMail() });
      expect(!r.ok && [r.code, r.command, r.response.slice(0, 10)]).toEqual([550, "MAIL FROM", "550 5.7.1 "]);
      expect(await h.queued()).toHaveLength(0);
      expect(h.sink.connections()).toBe(0);
    });

    test("a text/calendar part that is not valid iTIP is relayed unchanged to every recipient, and the log says why", async () => {
      h = await startHarness({ store: await b.fresh(), record: true });
      const raw = brokenCalendarMail();
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw });
      expect(r.ok && r.response).toMatch(
        /^250 2\.0\.0 Accepted: 2 relayed, not upgraded to iSchedule \(the iMIP part 1 is not a valid iTIP message: /,
      );
      const [mail] = await h.sink.waitFor(1);
      expect(mail!.rcptTo).toEqual([BOB, CAROL]);
      expect(asText(mail!.raw)).toBe(raw);
      expect(h.logs.some((l) => l.includes("smtp intake relayed an iMIP message without upgrading it"))).toBe(
        true,
      );
      // The log of messages shows both recipients relayed, and why the message was not upgraded.
      const [logged] = await h.queued();
      expect(logged!.deliveries.map((d) => [d.recipient, d.route, d.state])).toEqual([
        [`mailto:${BOB}`, "relay", "delivered"],
        [`mailto:${CAROL}`, "relay", "delivered"],
      ]);
      expect(logged!.deliveries[0]!.attemptList[0]!.error).toStartWith(
        "relayed unchanged, not upgraded to iSchedule: the iMIP part 1 is not a valid iTIP message: ",
      );
    });

    test("a method parameter that disagrees with METHOD is relayed unchanged (RFC 6047 §2.4)", async () => {
      h = await startHarness({ store: await b.fresh() });
      const raw = cyrusMail({ calendarType: "Content-Type: text/calendar; charset=utf-8; method=CANCEL" });
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw });
      expect(r.ok && r.response).toMatch(
        /relayed, not upgraded to iSchedule .*method parameter CANCEL is not its METHOD REQUEST/,
      );
      expect(await h.queued()).toHaveLength(0);
      expect(asText((await h.sink.waitFor(1))[0]!.raw)).toBe(raw);
    });

    test("an iMIP part whose transfer encoding is unknown is relayed unchanged", async () => {
      h = await startHarness({ store: await b.fresh() });
      const raw = cyrusMail().replace(
        "component=VEVENT \r\nContent-Transfer-Encoding: quoted-printable",
        "component=VEVENT \r\nContent-Transfer-Encoding: x-unknown",
      );
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw });
      expect(r.ok && r.response).toMatch(
        /relayed, not upgraded to iSchedule \(The iMIP part 1\.3 is malformed/,
      );
      expect(asText((await h.sink.waitFor(1))[0]!.raw)).toBe(raw);
    });

    test("every reply is printable US-ASCII (RFC 5321 §4.2), also when it cites an RFC section or quotes a UTF-8 address", async () => {
      h = await startHarness({ store: await b.fresh() });
      const broken = cyrusMail().replace(
        "component=VEVENT \r\nContent-Transfer-Encoding: quoted-printable",
        "component=VEVENT \r\nContent-Transfer-Encoding: x-unknown",
      );
      const replies = await dialog(h.intake.port, [
        "EHLO client.example",
        "MAIL FROM:<\xc3\xa5lice@evil.example> SMTPUTF8",
        "MAIL FROM:<alice@example.com>",
        `RCPT TO:<${BOB}>`,
        "DATA",
        `${broken}.`,
      ]);
      expect(replies.slice(2).map((r) => r.slice(0, 3))).toEqual(["550", "250", "250", "354", "250"]);
      expect(replies[2]).toBe(
        "550 5.7.1 The sender <??lice@evil.example> is not in a domain served here; isched relays only for its own domains",
      );
      expect(replies[6]).toContain("is unknown (RFC 2045 section 6.1))");
      for (const r of replies) expect(r).toMatch(/^[\x20-\x7e\r\n]*$/);
    });

    test("a REPLY without ORGANIZER (as Outlook 2010 sends them) is relayed unchanged to the organiser", async () => {
      h = await startHarness({ store: await b.fresh() });
      const itip = itipRequest({ organizer: "bob@ischedule.example" })
        .replace("METHOD:REQUEST", "METHOD:REPLY")
        .replace(/ORGANIZER[^\r\n]*\r\n/, "");
      const raw = cyrusMail({
        itip,
        calendarType: "Content-Type: text/calendar; charset=utf-8; method=REPLY",
      });
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw });
      expect(r.ok && r.response).toMatch(/^250 2\.0\.0 Accepted: 1 relayed, not upgraded to iSchedule/);
      expect(await h.queued()).toHaveLength(0);
      expect(asText((await h.sink.waitFor(1))[0]!.raw)).toBe(raw);
    });

    test("a database that cannot commit gives 451 4.3.0 and nothing is relayed", async () => {
      const store = await b.fresh();
      h = await startHarness({ store });
      await store.close();
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw: cyrusMail() });
      expect(!r.ok && [r.code, r.response.slice(0, 10)]).toEqual([451, "451 4.3.0 "]);
      expect(h.sink.connections()).toBe(0);
      expect(h.logs.some((l) => l.includes("cannot commit to the queue"))).toBe(true);
    });

    test("without a smarthost, mail that needs one gets 451 4.3.5 and nothing is queued", async () => {
      h = await startHarness({ store: await b.fresh(), intake: { relay: undefined } });
      const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw: cyrusMail() });
      expect(!r.ok && r.response.slice(0, 10)).toBe("451 4.3.5 ");
      expect(await h.queued()).toHaveLength(0);
    });

    test("an undeclared .ics attachment with a METHOD from a hosted organiser goes by iSchedule", async () => {
      h = await startHarness({ store: await b.fresh() });
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw: attachedIcsMail(itipRequest()) });
      expect(r.ok).toBe(true);
      expect((await h.queued()).map((q) => q.deliveries.length)).toEqual([1]);
    });

    test("an undeclared .ics attachment from someone else's organiser is relayed as plain mail, not refused", async () => {
      h = await startHarness({ store: await b.fresh() });
      const itip = itipRequest({ organizer: "mallory@elsewhere.example" });
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw: attachedIcsMail(itip) });
      expect(r.ok && r.response).toBe("250 2.0.0 Accepted: 1 relayed");
      expect(await h.queued()).toHaveLength(0);
      expect((await h.sink.waitFor(1))[0]!.rcptTo).toEqual([BOB]);
    });

    test("a failing discovery counts as no iSchedule: the recipient is relayed", async () => {
      h = await startHarness({
        store: await b.fresh(),
        intake: {
          canSchedule: async () => {
            throw new Error("SERVFAIL for _ischedules._tcp.ischedule.example");
          },
        },
      });
      const r = await h.send({ from: "alice@example.com", to: [BOB], raw: cyrusMail() });
      expect(r.ok).toBe(true);
      expect(await h.queued()).toHaveLength(0);
      expect((await h.sink.waitFor(1))[0]!.rcptTo).toEqual([BOB]);
    });
  });
});
