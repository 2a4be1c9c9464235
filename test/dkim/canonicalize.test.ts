import { expect, test } from "bun:test";
import {
  canonicalBody,
  canonicalizeISchedule,
  canonicalizeRelaxed,
  headerHashInput,
  indexHeaders,
  withoutSignatureData,
} from "../../src/dkim/canonicalize.ts";

const text = (chunks: Uint8Array[]) => Buffer.concat(chunks).toString("latin1");
const body = (s: string) => Buffer.from(s, "latin1");

test("ischedule-relaxed collapses whitespace runs, trims, and removes whitespace around commas (draft §7.2.1)", () => {
  expect(canonicalizeISchedule("  mailto:a@x.org \t,\t mailto:b@x.org  ")).toBe(
    "mailto:a@x.org,mailto:b@x.org",
  );
  expect(canonicalizeISchedule("text/calendar;   component=VEVENT;\tmethod=REQUEST")).toBe(
    "text/calendar; component=VEVENT; method=REQUEST",
  );
});

test("ischedule-relaxed unfolds folded values, CRLF or bare LF", () => {
  expect(canonicalizeISchedule("mailto:a@x.org,\r\n mailto:b@x.org")).toBe("mailto:a@x.org,mailto:b@x.org");
  expect(canonicalizeISchedule("a\n\tb")).toBe("a b");
});

test("ischedule-relaxed keeps bytes other than SP and HT (no Unicode trimming)", () => {
  expect(canonicalizeISchedule("\u00a0value\u00a0")).toBe("\u00a0value\u00a0");
});

test("relaxed (RFC 6376) keeps whitespace around commas", () => {
  expect(canonicalizeRelaxed("  a ,  b ")).toBe("a , b");
});

test("repeated Recipient fields are joined with ',' in wire order under ischedule-relaxed", () => {
  const index = indexHeaders([
    ["Recipient", "mailto:cyrus@example.com, mailto:mike@example.com"],
    ["Originator", "mailto:o@example.com"],
    ["RECIPIENT", "mailto:ken@example.org"],
  ]);
  const input = headerHashInput({
    index,
    signedHeaders: ["Recipient"],
    canonicalization: "ischedule-relaxed",
    signatureWithoutData: "v=1; b=",
  });
  expect(input).toBe(
    "recipient:mailto:cyrus@example.com,mailto:mike@example.com,mailto:ken@example.org\r\ndkim-signature:v=1; b=",
  );
});

test("relaxed takes repeated fields from the bottom up, one per h= occurrence (RFC 6376 §5.4.2)", () => {
  const index = indexHeaders([
    ["Recipient", "first"],
    ["Recipient", "second"],
  ]);
  const input = headerHashInput({
    index,
    signedHeaders: ["Recipient", "Recipient", "Recipient"],
    canonicalization: "relaxed",
    signatureWithoutData: "b=",
  });
  expect(input).toBe("recipient:second\r\nrecipient:first\r\ndkim-signature:b=");
});

test("a header named in h= but absent contributes nothing", () => {
  const input = headerHashInput({
    index: indexHeaders([["Originator", "mailto:a@b.c"]]),
    signedHeaders: ["Originator", "iSchedule-Message-ID"],
    canonicalization: "ischedule-relaxed",
    signatureWithoutData: "b=",
  });
  expect(input).toBe("originator:mailto:a@b.c\r\ndkim-signature:b=");
});

test("withoutSignatureData() empties b= with its surrounding whitespace but keeps bh=", () => {
  expect(withoutSignatureData("v=1; bh=AAA=; b= abc\r\n def ; x=5")).toBe("v=1; bh=AAA=; b=; x=5");
  expect(withoutSignatureData("b=xyz; v=1")).toBe("b=; v=1");
});

test("simple body: trailing blank lines become one CRLF; an empty body is one CRLF", () => {
  expect(text(canonicalBody(body("A\r\nB\r\n\r\n\r\n"), "simple"))).toBe("A\r\nB\r\n");
  expect(text(canonicalBody(body("A\r\nB"), "simple"))).toBe("A\r\nB\r\n");
  expect(text(canonicalBody(body(""), "simple"))).toBe("\r\n");
  expect(text(canonicalBody(body("\r\n\r\n"), "simple"))).toBe("\r\n");
});

test("simple body: LF-only bodies are hashed as they are, with a CRLF appended", () => {
  expect(text(canonicalBody(body("A\nB\n"), "simple"))).toBe("A\nB\n\r\n");
});

test("relaxed body: whitespace reduced, line-end whitespace and trailing empty lines removed", () => {
  expect(text(canonicalBody(body("A  \t B \r\n\r\n C\t\r\n\r\n\r\n"), "relaxed"))).toBe("A B\r\n\r\n C\r\n");
  expect(text(canonicalBody(body(""), "relaxed"))).toBe("");
  expect(text(canonicalBody(body("x"), "relaxed"))).toBe("x\r\n");
});
