import { describe, expect, test } from "bun:test";
import { extractImip } from "../../src/smtp-intake/imip-extract.ts";
import {
  base64Lines,
  brokenCalendarMail,
  bytes,
  crlf,
  cyrusMail,
  itipRequest,
  nextcloudMail,
  plainMail,
  quotedPrintable,
} from "./_messages.ts";

const single = (contentType: string, body: string, extra: string[] = []) =>
  bytes(
    crlf("From: alice@example.com", "MIME-Version: 1.0", `Content-Type: ${contentType}`, ...extra, "", body),
  );

describe("extractImip()", () => {
  test("takes the text/calendar part inside multipart/alternative of a Cyrus message, decoded from QP and UTF-8", () => {
    const r = extractImip(bytes(cyrusMail()));
    expect(r).toEqual({
      kind: "imip",
      itipText: itipRequest(),
      method: "REQUEST",
      partPath: "1.3",
      declared: true,
    });
  });

  test("prefers the alternative part even when a declared part comes first in the tree", () => {
    const itip = itipRequest();
    const raw = crlf(
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="m"',
      "",
      "--m",
      "Content-Type: text/calendar; method=REQUEST; charset=utf-8",
      "Content-Disposition: attachment; filename=invite.ics",
      "",
      itip,
      "--m",
      'Content-Type: multipart/alternative; boundary="a"',
      "",
      "--a",
      "Content-Type: text/plain",
      "",
      "hi",
      "--a",
      "Content-Type: text/calendar; method=REQUEST; charset=utf-8",
      "",
      itip,
      "--a--",
      "--m--",
    );
    const r = extractImip(bytes(raw));
    expect(r.kind === "imip" && r.partPath).toBe("2.2");
  });

  test("recognises a Nextcloud message whose only calendar is the event.ics attachment", () => {
    const r = extractImip(bytes(nextcloudMail()));
    expect(r).toEqual({
      kind: "imip",
      itipText: itipRequest(),
      method: "REQUEST",
      partPath: "2",
      declared: true,
    });
  });

  test("reads a single-part text/calendar message as part 1 and upper-cases the method parameter", () => {
    const r = extractImip(single("text/calendar; method=request; charset=UTF-8", itipRequest()));
    expect(r.kind === "imip" && [r.partPath, r.method]).toEqual(["1", "REQUEST"]);
  });

  test("falls back to an application/ics attachment with a METHOD, marked as not declared", () => {
    const raw = crlf(
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="m"',
      "",
      "--m",
      "Content-Type: text/plain",
      "",
      "see attachment",
      "--m",
      'Content-Type: application/octet-stream; name="meeting.ics"',
      "Content-Transfer-Encoding: base64",
      "",
      base64Lines(itipRequest({ method: "CANCEL" })),
      "--m--",
    );
    const r = extractImip(bytes(raw));
    expect(r).toEqual({
      kind: "imip",
      itipText: itipRequest({ method: "CANCEL" }),
      method: "CANCEL",
      partPath: "2",
      declared: false,
    });
  });

  test("a text/calendar part without a method parameter and without METHOD is not iMIP (RFC 6047 §2.4 Note 2)", () => {
    const text = itipRequest().replace("METHOD:REQUEST\r\n", "");
    expect(extractImip(single("text/calendar; charset=utf-8", text)).kind).toBe("not-imip");
  });

  test("plain mail is not iMIP", () => {
    expect(extractImip(bytes(plainMail()))).toEqual({ kind: "not-imip", reason: "no calendar part" });
  });

  test("does not look inside a forwarded message/rfc822", () => {
    const raw = crlf(
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="m"',
      "",
      "--m",
      "Content-Type: text/plain",
      "",
      "fwd",
      "--m",
      "Content-Type: message/rfc822",
      "",
      cyrusMail(),
      "--m--",
    );
    expect(extractImip(bytes(raw)).kind).toBe("not-imip");
  });

  test("two iMIP parts with different content are left to mail (RFC 6047 §2.4 Note 1)", () => {
    const raw = crlf(
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="m"',
      "",
      "--m",
      "Content-Type: text/calendar; method=REQUEST",
      "",
      itipRequest(),
      "--m",
      "Content-Type: text/calendar; method=CANCEL",
      "",
      itipRequest({ method: "CANCEL" }),
      "--m--",
    );
    expect(extractImip(bytes(raw)).kind).toBe("not-imip");
  });

  test("a declared part with bytes that are not UTF-8 is malformed", () => {
    const raw = single(
      "text/calendar; method=REQUEST; charset=utf-8",
      quotedPrintable("X").replace("X", "=FF=FE"),
      ["Content-Transfer-Encoding: quoted-printable"],
    );
    const r = extractImip(raw);
    expect(r.kind).toBe("malformed");
    expect(r.kind === "malformed" && r.reason).toContain("not valid utf-8");
  });

  test("a declared part with an unknown charset or transfer encoding is malformed", () => {
    expect(extractImip(single("text/calendar; method=REQUEST; charset=x-klingon", itipRequest())).kind).toBe(
      "malformed",
    );
    const uu = extractImip(
      single("text/calendar; method=REQUEST", itipRequest(), ["Content-Transfer-Encoding: x-uuencode"]),
    );
    expect(uu.kind === "malformed" && uu.reason).toContain("x-uuencode");
  });

  test("a declared part with broken base64 is malformed", () => {
    const r = extractImip(
      single("text/calendar; method=REQUEST", "QkVHSU4*6VkNBTEVOREFS", ["Content-Transfer-Encoding: base64"]),
    );
    expect(r.kind === "malformed" && r.partPath).toBe("1");
  });

  test("decodes another charset the sender named", () => {
    const body = Buffer.from(itipRequest(), "latin1");
    expect(body.includes(0xe9)).toBe(true);
    const raw = Buffer.concat([
      Buffer.from(
        crlf("MIME-Version: 1.0", "Content-Type: text/calendar; method=REQUEST; charset=iso-8859-1", ""),
      ),
      body,
    ]);
    const r = extractImip(new Uint8Array(raw));
    expect(r.kind === "imip" && r.itipText).toContain("SUMMARY:Réunion café");
  });

  test("leaves iCalendar validity to the caller: a broken calendar in a declared part is still extracted", () => {
    const r = extractImip(bytes(brokenCalendarMail()));
    expect(r.kind === "imip" && r.declared).toBe(true);
  });

  test("tolerates LF-only line ends and a missing close delimiter", () => {
    const raw = cyrusMail().replace(/\r\n/g, "\n").replace("--4242-1767603600-mixed=:1--\n", "");
    const r = extractImip(bytes(raw));
    expect(r.kind === "imip" && r.itipText.replace(/\r\n/g, "\n")).toBe(itipRequest().replace(/\r\n/g, "\n"));
  });
});
