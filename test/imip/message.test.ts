import { describe, expect, test } from "bun:test";
import { type ParsedMail, simpleParser } from "mailparser";
import { buildImipMessage } from "../../src/imip/index.ts";
import {
  A1_CANCEL,
  A1_REPLY,
  A1_REQUEST,
  FIXED_UID,
  NON_ASCII_REQUEST,
  NON_ASCII_SUMMARY,
  requestOptions,
} from "./_fixtures.ts";
import { header, mimeTree, outline } from "./_mime-tree.ts";

const text = (raw: Uint8Array) => Buffer.from(raw).toString("latin1");
const parse = (raw: Uint8Array): Promise<ParsedMail> => simpleParser(Buffer.from(raw));
const headerLines = (raw: Uint8Array) => text(raw).split("\r\n\r\n")[0]!.split("\r\n");

function calendarPart(mail: ParsedMail) {
  const part = mail.attachments.find((a) => a.contentType === "text/calendar");
  if (!part) throw new Error("no text/calendar part");
  return part;
}

describe("buildImipMessage() structure", () => {
  test("nests text/plain, text/html and text/calendar in multipart/alternative, then the .ics attachment", () => {
    const tree = mimeTree(buildImipMessage(requestOptions()).raw);
    expect(outline(tree)).toEqual([
      "multipart/mixed",
      "  multipart/alternative",
      "    text/plain",
      "    text/html",
      "    text/calendar",
      "  application/ics",
    ]);
  });

  test("the text/calendar part has method, charset and component parameters (RFC 6047 §2.4)", () => {
    const cases = [
      { itipText: A1_REQUEST, method: "REQUEST" },
      { itipText: A1_REPLY, method: "reply" },
      { itipText: A1_CANCEL, method: "Cancel" },
    ];
    for (const c of cases) {
      const tree = mimeTree(buildImipMessage(requestOptions({ ...c, component: "vevent" })).raw);
      const calendar = tree.children[0]!.children[2]!;
      expect(header(calendar, "content-type")).toBe(
        `text/calendar; method=${c.method.toUpperCase()}; charset=UTF-8; component=VEVENT`,
      );
      expect(calendar.headers.has("content-disposition")).toBe(false);
    }
  });

  test("text parts are UTF-8 quoted-printable and the attachment is base64 application/ics named invite.ics", () => {
    const tree = mimeTree(buildImipMessage(requestOptions()).raw);
    const [plain, html, calendar] = tree.children[0]!.children;
    expect(header(plain!, "content-type")).toBe("text/plain; charset=UTF-8");
    expect(header(html!, "content-type")).toBe("text/html; charset=UTF-8");
    for (const p of [plain!, html!, calendar!]) {
      expect(header(p, "content-transfer-encoding")).toBe("quoted-printable");
    }
    const ics = tree.children[1]!;
    expect(header(ics, "content-type")).toBe('application/ics; name="invite.ics"');
    expect(header(ics, "content-disposition")).toBe('attachment; filename="invite.ics"');
    expect(header(ics, "content-transfer-encoding")).toBe("base64");
  });

  test("the calendar part and the attachment decode to the iTIP text byte for byte, CRLF kept", async () => {
    for (const itipText of [A1_REQUEST, A1_REPLY, A1_CANCEL, NON_ASCII_REQUEST]) {
      const method = /^METHOD:(.*)$/m.exec(itipText)![1]!.trim();
      const mail = await parse(buildImipMessage(requestOptions({ itipText, method })).raw);
      const expected = Buffer.from(itipText, "utf8");
      expect(calendarPart(mail).content.equals(expected)).toBe(true);
      const ics = mail.attachments.find((a) => a.filename === "invite.ics");
      expect(ics?.contentType).toBe("application/ics");
      expect(ics?.content.equals(expected)).toBe(true);
    }
  });

  test("octets the iCalendar should not hold (a lone LF, a lone CR, trailing blanks) survive too", async () => {
    const odd = A1_REQUEST.replace("SUMMARY:Design meeting\r\n", "SUMMARY:Design \t \nmeeting\r  \r\n");
    const mail = await parse(buildImipMessage(requestOptions({ itipText: odd })).raw);
    expect(calendarPart(mail).content.toString("utf8")).toBe(odd);
  });

  test("the message is 7-bit with CRLF line ends, every line at most 78 octets (RFC 5322 §2.1.1)", () => {
    const { raw } = buildImipMessage(
      requestOptions({
        itipText: NON_ASCII_REQUEST,
        subject: `Updated invitation: ${NON_ASCII_SUMMARY.repeat(8)}`,
        from: { address: "isched@example.net", name: `${"Désruisseaux ".repeat(10)}via isched` },
        textBody: `${"x".repeat(2000)}\n${"é".repeat(500)}`,
      }),
    );
    expect(raw.every((b) => b < 0x80)).toBe(true);
    const s = text(raw);
    expect(s.endsWith("\r\n")).toBe(true);
    expect(/\r(?!\n)|(?<!\r)\n/.test(s)).toBe(false);
    const longest = Math.max(...s.split("\r\n").map((l) => l.length));
    expect(longest).toBeLessThanOrEqual(78);
  });

  test("a body containing the boundary text does not end its part early (RFC 2046 §5.1.1)", async () => {
    const first = text(buildImipMessage(requestOptions()).raw);
    const boundary = /boundary="([^"]+)"/.exec(first)![1]!;
    const textBody = `before\n--${boundary}\nContent-Type: text/html\n\n<b>after</b>\n--${boundary}--\n`;
    const { raw } = buildImipMessage(requestOptions({ textBody }));
    expect(outline(mimeTree(raw))).toHaveLength(6);
    expect((await parse(raw)).text).toBe(textBody);
  });
});

describe("buildImipMessage() headers", () => {
  test("From is isched's address with the person's name, Reply-To the organiser, To the attendee", async () => {
    const mail = await parse(buildImipMessage(requestOptions()).raw);
    expect(mail.from?.value).toEqual([
      { address: "isched@example.net", name: "Bernard Desruisseaux via isched" },
    ]);
    expect(mail.replyTo?.value).toEqual([{ address: "bernard@example.com", name: "" }]);
    expect(Array.isArray(mail.to) ? undefined : mail.to?.value).toEqual([
      { address: "cyrus@example.org", name: "" },
    ]);
  });

  test("Date, Message-ID, MIME-Version and Auto-Submitted are present, from the injected clock and uid", async () => {
    const built = buildImipMessage(requestOptions());
    const lines = headerLines(built.raw);
    expect(lines).toContain("Date: Wed, 01 Sep 2004 20:02:00 +0000");
    expect(lines).toContain(`Message-ID: <${FIXED_UID}@isched.example.net>`);
    expect(lines).toContain("MIME-Version: 1.0");
    expect(lines).toContain("Auto-Submitted: auto-generated");
    expect(built.messageId).toBe(`<${FIXED_UID}@isched.example.net>`);
    const mail = await parse(built.raw);
    expect(mail.date?.toISOString()).toBe("2004-09-01T20:02:00.000Z");
    expect(mail.messageId).toBe(built.messageId);
  });

  test("without a uid each message gets a new random Message-ID, and without a date the current time", () => {
    const before = Date.now();
    const a = buildImipMessage(requestOptions({ uid: undefined, date: undefined }));
    const b = buildImipMessage(requestOptions({ uid: undefined, date: undefined }));
    expect(a.messageId).toMatch(
      /^<[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}@isched\.example\.net>$/,
    );
    expect(a.messageId).not.toBe(b.messageId);
    const date = headerLines(a.raw).find((l) => l.startsWith("Date: "))!;
    expect(Math.abs(Date.parse(date.slice(6)) - before)).toBeLessThan(5000);
  });

  test("a non-ASCII subject and display name are RFC 2047 encoded and decode back", async () => {
    const subject = `Invitation: ${NON_ASCII_SUMMARY}`;
    const name = "Bernard Désruisseaux via isched";
    const { raw } = buildImipMessage(
      requestOptions({ subject, from: { address: "isched@example.net", name } }),
    );
    const lines = headerLines(raw);
    expect(lines.find((l) => l.startsWith("Subject: "))).toStartWith("Subject: =?UTF-8?B?");
    expect(lines.find((l) => l.startsWith("From: "))).toStartWith("From: =?UTF-8?B?");
    const mail = await parse(raw);
    expect(mail.subject).toBe(subject);
    expect(mail.from?.value).toEqual([{ address: "isched@example.net", name }]);
  });

  test("a long subject is folded and unfolds to the same text", async () => {
    const ascii = `Invitation: ${"Quarterly planning review ".repeat(12).trim()}`;
    const wide = `Invitation: ${"設計会議".repeat(40)}`;
    for (const subject of [ascii, wide]) {
      const { raw } = buildImipMessage(requestOptions({ subject }));
      const head = text(raw).split("\r\n\r\n")[0]!;
      expect(head).toMatch(/\r\nSubject: [^\r]*\r\n [^\r]/);
      expect((await parse(raw)).subject).toBe(subject);
    }
  });

  test("a display name with specials is quoted, quotes and backslashes escaped", async () => {
    const name = 'Desruisseaux, Bernard "Ben" \\ via isched';
    const { raw } = buildImipMessage(requestOptions({ from: { address: "isched@example.net", name } }));
    expect(headerLines(raw)).toContain(
      'From: "Desruisseaux, Bernard \\"Ben\\" \\\\ via isched" <isched@example.net>',
    );
    expect((await parse(raw)).from?.value).toEqual([{ address: "isched@example.net", name }]);
  });

  test("text that looks like an encoded-word is encoded, so it reads as written", async () => {
    const subject = "Invitation: =?UTF-8?B?PGV2aWw+?=";
    const name = "=?UTF-8?B?PGV2aWxAZXhhbXBsZS5jb20+?=";
    const { raw } = buildImipMessage(
      requestOptions({ subject, from: { address: "isched@example.net", name } }),
    );
    const mail = await parse(raw);
    expect(mail.subject).toBe(subject);
    expect(mail.from?.value).toEqual([{ address: "isched@example.net", name }]);
  });

  test("CR and LF in the subject or the name cannot add header fields", async () => {
    const { raw } = buildImipMessage(
      requestOptions({
        subject: "Invitation: Design\r\nBcc: victim@example.org",
        from: { address: "isched@example.net", name: "Bernard\nX-Injected: yes" },
      }),
    );
    const mail = await parse(raw);
    expect(mail.headers.has("bcc")).toBe(false);
    expect(mail.headers.has("x-injected")).toBe(false);
    expect(mail.subject).toBe("Invitation: Design Bcc: victim@example.org");
  });

  test("several recipients are all in To and in the envelope; MAIL FROM is isched's address", async () => {
    const to = ["cyrus@example.org", "lisa@example.org", "mike.o'neil+cal@sub.example.org"];
    const built = buildImipMessage(requestOptions({ to }));
    expect(built.envelope).toEqual({ from: "isched@example.net", to });
    const mail = await parse(built.raw);
    expect((Array.isArray(mail.to) ? [] : (mail.to?.value ?? [])).map((a) => a.address)).toEqual(to);
  });

  test("Reply-To is left out when not given", () => {
    const { raw } = buildImipMessage(requestOptions({ replyTo: undefined }));
    expect(headerLines(raw).some((l) => /^reply-to:/i.test(l))).toBe(false);
  });
});

describe("buildImipMessage() refuses", () => {
  const refuses = (overrides: Parameters<typeof requestOptions>[0], why: RegExp) =>
    expect(() => buildImipMessage(requestOptions(overrides))).toThrow(why);

  test("a method that differs from the iCalendar METHOD (RFC 6047 §2.4)", () => {
    refuses({ method: "CANCEL" }, /method "CANCEL" differs from the iCalendar METHOD "REQUEST"/);
  });

  test("iCalendar text without METHOD", () => {
    refuses({ itipText: A1_REQUEST.replace("METHOD:REQUEST\r\n", "") }, /no METHOD property/);
  });

  test("a method or component that is not an iCalendar name", () => {
    refuses({ method: "REQUEST\r\nBcc: x" }, /method "REQUEST\\r\\nBcc: x" is not an iCalendar name/);
    refuses({ component: "VEVENT; x=y" }, /component .* is not an iCalendar name/);
  });

  test("addresses that are not plain addr-specs: mailto:, display names, CRLF, no domain", () => {
    refuses(
      { to: ["mailto:cyrus@example.org"] },
      /To address "mailto:cyrus@example.org" is not a plain addr-spec/,
    );
    refuses({ to: ["Cyrus <cyrus@example.org>"] }, /To address/);
    refuses({ replyTo: "bernard@example.com\r\nBcc: x@y.z" }, /Reply-To address/);
    refuses({ from: { address: "isched" } }, /From address "isched"/);
    refuses({ to: [] }, /there is no recipient/);
  });

  test("a Message-ID domain or uid that would make an invalid Message-ID", () => {
    refuses({ messageIdDomain: "isched example" }, /not a host name for the Message-ID/);
    refuses({ uid: "a b@c" }, /cannot be the left part of a Message-ID/);
  });
});
