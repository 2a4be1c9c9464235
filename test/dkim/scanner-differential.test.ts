/**
 * The single-pass tag scanner and the signature parser built on it against the parser they
 * replaced (test/dkim/reference/, the code of b949fb3): over thousands of generated tag lists and
 * of real signatures mutated at random, both accept the same lists with the same values and refuse
 * the same ones with the same message. The generator is seeded, so a failure names an input that
 * can be replayed.
 */
import { describe, expect, test } from "bun:test";
import { canonicalizeISchedule, type HeaderField } from "../../src/dkim/canonicalize.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { formatSignatureWithoutData, parseSignature, type SignatureParse } from "../../src/dkim/signature.ts";
import { parseTagList, type TagListResult } from "../../src/dkim/tag-list.ts";
import { ED_PRIVATE, RSA_PRIVATE } from "../support/dkim-fixtures.ts";
import { seeded } from "../support/seeded-random.ts";
import { canonicalizeISchedule as referenceCanonicalize } from "./reference/canonicalize-ischedule.ts";
import {
  formatSignatureWithoutData as referenceFormat,
  parseSignature as referenceParseSignature,
} from "./reference/signature.ts";
import { parseTagList as referenceParseTagList } from "./reference/tag-list.ts";

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

const NAMES = [
  "v",
  "a",
  "b",
  "bh",
  "c",
  "d",
  "h",
  "s",
  "q",
  "t",
  "x",
  "l",
  "i",
  "z_9",
  "V",
  "1a",
  "_a",
  "a-b",
  "a b",
  "",
  "é",
];
const SPACES = ["", "", "", " ", "\t", "  ", "\r\n ", "\n\t", "\r\n", "\n", "\r", " \r\n\t "];
const VALUE_PARTS = [
  "abc",
  "1",
  "=",
  "a=b",
  "x y",
  "x\r\n y",
  "x\r\ny",
  "x\ny",
  "é",
  "\u0000",
  "\u007f",
  ":",
  "/",
  "+",
  "==",
  "",
  " ",
  "ischedule-relaxed/simple",
  "example.com",
  "Originator:Recipient",
];

/** A tag list from parts valid and not: names, folding, values, separators. */
function generatedTagList(rnd: () => number): string {
  const specs: string[] = [];
  const count = 1 + Math.floor(rnd() * 7);
  for (let i = 0; i < count; i++) {
    let value = "";
    for (let k = Math.floor(rnd() * 3); k > 0; k--) value += pick(rnd, VALUE_PARTS);
    const eq = rnd() < 0.05 ? "" : "=";
    specs.push(
      `${pick(rnd, SPACES)}${pick(rnd, NAMES)}${pick(rnd, SPACES)}${eq}${pick(rnd, SPACES)}${value}${pick(rnd, SPACES)}`,
    );
  }
  const separator = () => (rnd() < 0.03 ? ";;" : ";");
  let text = specs[0]!;
  for (let i = 1; i < specs.length; i++) text += separator() + specs[i];
  if (rnd() < 0.3) text += `;${pick(rnd, SPACES)}`;
  return text;
}

const INSERTS = [
  ";",
  "=",
  " ",
  "\t",
  "\r\n ",
  "\r",
  "\n",
  ",",
  ":",
  "/",
  "A",
  "z",
  "0",
  "é",
  "\u0000",
  "b=",
  "h=",
  "; x=1",
  "; t=",
  "; l=5",
  "; l=1950",
  "; i=@example.com",
  "; i=x@other.org",
  "; q=private-exchange",
  "; q=dns/txt:nope",
  "; q=nope",
  "; c=relaxed/relaxed",
  "; c=relaxed",
  "; c=Relaxed/Simple//",
  "; c=ischedule-relaxed/",
  "; a=RSA-SHA1",
  "; a=rsa-sha1",
  "; v=2",
  "; h=Host:Recipient",
  "; h=originator:recipient:content-type:ischedule-version:originator",
  "; d=EXAMPLE.com.",
  "; s=-x",
  "; bh=a b c=",
  "; b=",
  "; t=99999999999999999",
  "; x=1",
];

/** Values for one tag at a time, valid and not, for the checks behind the tag list. */
const TAG_VALUES: Record<string, readonly string[]> = {
  v: ["1", "2", "", " 1"],
  a: ["rsa-sha256", "RSA-SHA256", "rsa-sha1", "ed25519-sha256", "dsa", ""],
  c: [
    "relaxed/relaxed",
    "relaxed",
    "Relaxed/Simple//",
    "ischedule-relaxed/",
    "simple/simple",
    "ischedule-relaxed/simple/x",
    "ISCHEDULE-RELAXED",
    "/",
  ],
  d: ["example.com", "EXAMPLE.com.", "-x.com", "a..b", "", "x_y.example", "Example.COM", "example.com."],
  s: ["s1", "-s", "a.b", "", "S_1", "s1.", "s 1"],
  q: ["dns/txt", "private-exchange:dns/txt", "nope", "dns/txt:nope", "", "dns/txt : http/well-known"],
  h: [
    "Originator:Recipient:Content-Type:iSchedule-Version",
    "originator:recipient:content-type:ischedule-version:Originator",
    "Originator:Recipient:Content-Type",
    "Originator:Recipient:Content-Type:iSchedule-Version:Host",
    "Originator:Recipient:Content-Type:iSchedule-Version:Proxy-Foo",
    "Originator::Recipient",
    "Originator : Recipient :\r\n Content-Type: iSchedule-Version",
    "",
  ],
  t: [
    "1795000000",
    "",
    "12a",
    "9999999999999999",
    " 5",
    "999999999999999",
    "0001795000000",
    "1e9",
    "+5",
    "1 5",
  ],
  x: ["1795003600", "1", "1795000000", "x"],
  l: ["0", "36", "12345678901234567", "-1"],
  i: ["@example.com", "a@sub.example.com", "a@other.org", "noat", "@EXAMPLE.COM."],
  bh: ["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "a b c=", "not base64!", "", "abc=="],
  b: [
    "",
    "YQ==",
    "YQ",
    "Y",
    "YQ=",
    "abc==",
    "a b\r\n c",
    "==",
    "YQ-_",
    "Y Q\t=\r\n =",
    "YWJj ZA",
    "YQ==YQ==",
    " ",
  ],
};

/** One random edit of a signature value: insert, delete, replace, repeat, fold, upper-case, or a tag's value. */
function mutate(rnd: () => number, text: string): string {
  const at = Math.floor(rnd() * (text.length + 1));
  if (rnd() < 0.3) {
    const tag = pick(rnd, Object.keys(TAG_VALUES));
    const value = pick(rnd, TAG_VALUES[tag]!);
    return text.replace(new RegExp(`(^|;)( *${tag}=)[^;]*`), (_, semi, name) => `${semi}${name}${value}`);
  }
  switch (Math.floor(rnd() * 6)) {
    case 0:
      return text.slice(0, at) + pick(rnd, INSERTS) + text.slice(at);
    case 1:
      return text.slice(0, at) + text.slice(at + 1 + Math.floor(rnd() * 4));
    case 2:
      return text.slice(0, at) + pick(rnd, INSERTS) + text.slice(at + 1);
    case 3: {
      const end = Math.min(text.length, at + Math.floor(rnd() * 30));
      return text.slice(0, end) + text.slice(at, end) + text.slice(end);
    }
    case 4:
      return `${text.slice(0, at)}\r\n ${text.slice(at)}`;
    default: {
      const end = Math.min(text.length, at + Math.floor(rnd() * 20));
      return text.slice(0, at) + text.slice(at, end).toUpperCase() + text.slice(end);
    }
  }
}

const tagListOutcome = (r: TagListResult) => (r.ok ? [...r.tags] : r.error);
const signatureOutcome = (r: SignatureParse) =>
  r.ok ? { ...r.signature, signature: Buffer.from(r.signature.signature).toString("hex") } : r;

/** Real signatures, varied in the tags that the parser decides on. */
function realSignatures(): string[] {
  const fields: HeaderField[] = [
    ["Originator", "mailto:a@example.com"],
    ["Recipient", "mailto:b@example.org, mailto:c@example.org"],
    ["Content-Type", "text/calendar; method=REQUEST"],
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", "m-1"],
  ];
  const body = Buffer.from("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");
  const out: string[] = [];
  for (const pem of [RSA_PRIVATE, ED_PRIVATE]) {
    const key = loadSigningKey(pem, "example.com", "s1");
    for (const expireSeconds of [0, 3600]) {
      for (const queryMethods of [
        undefined,
        ["private-exchange"] as const,
        ["http/well-known", "dns/txt"] as const,
      ]) {
        const value = signRequest({
          key,
          fields,
          body,
          nowMs: 1_795_000_000_000,
          expireSeconds,
          queryMethods,
        });
        // RFC 6376 relaxed, under which h= may name a field twice (isched never signs so).
        out.push(value, value.replace("c=ischedule-relaxed/simple", "c=relaxed/relaxed"));
        out.push(value.replace("c=ischedule-relaxed/simple", "c=relaxed").replace("h=", "h=Recipient:"));
      }
    }
  }
  return out;
}

describe("the single-pass scanner against the parser it replaced", () => {
  test("parseTagList() gives the reference's tags or error for 20,000 generated lists", () => {
    const rnd = seeded(16);
    for (let i = 0; i < 20_000; i++) {
      const text = generatedTagList(rnd);
      expect({ text, outcome: tagListOutcome(parseTagList(text)) }).toEqual({
        text,
        outcome: tagListOutcome(referenceParseTagList(text)),
      });
    }
  });

  test("parseSignature() gives the reference's signature or refusal for 12,000 mutated signatures, twice each", () => {
    const rnd = seeded(70);
    const originals = realSignatures();
    let accepted = 0;
    for (let i = 0; i < 12_000; i++) {
      let text = pick(rnd, originals);
      for (let k = Math.floor(rnd() * 4); k > 0; k--) text = mutate(rnd, text);
      const allowSha1 = rnd() < 0.5;
      const expected = signatureOutcome(referenceParseSignature(text, { allowSha1 }));
      // Twice: the second parse meets what the first one remembered (h= and q= lists).
      for (let round = 0; round < 2; round++) {
        expect({ text, allowSha1, outcome: signatureOutcome(parseSignature(text, { allowSha1 })) }).toEqual({
          text,
          allowSha1,
          outcome: expected,
        });
      }
      if ("signature" in expected) accepted++;
    }
    // The mutations must leave enough signatures intact for the accepting path to be compared too.
    expect(accepted).toBeGreaterThan(2_000);
    expect(accepted).toBeLessThan(10_000);
  });

  test("parseTagList() gives the reference's outcome for generated lists of 20 to 200 tags (the duplicate check past 16)", () => {
    const rnd = seeded(3);
    for (let i = 0; i < 500; i++) {
      const names = Array.from({ length: 20 + Math.floor(rnd() * 180) }, (_, k) => `t${k}`);
      if (rnd() < 0.5) names.push(pick(rnd, names));
      const text = names.map((n) => `${n}=${Math.floor(rnd() * 10)}`).join("; ");
      expect(tagListOutcome(parseTagList(text))).toEqual(tagListOutcome(referenceParseTagList(text)));
    }
  });

  test("canonicalizeISchedule() gives the reference's text for 20,000 generated values", () => {
    const rnd = seeded(7);
    const parts = [
      " ",
      "  ",
      "\t",
      ",",
      " , ",
      ", ",
      " ,",
      "\r\n ",
      "\r\n",
      "\n\t",
      "\r",
      "a",
      "mailto:x@y",
      "é",
      ";",
    ];
    for (let i = 0; i < 20_000; i++) {
      let value = "";
      for (let k = Math.floor(rnd() * 8); k > 0; k--) value += pick(rnd, parts);
      expect(JSON.stringify(canonicalizeISchedule(value))).toBe(JSON.stringify(referenceCanonicalize(value)));
    }
  });

  test("formatSignatureWithoutData() writes the reference's text", () => {
    const rnd = seeded(9);
    for (let i = 0; i < 1_000; i++) {
      const f = {
        algorithm: pick(rnd, ["rsa-sha256", "ed25519-sha256"] as const),
        domain: "example.com",
        selector: `s${i}`,
        queryMethods: pick(rnd, [["dns/txt"], ["dns/txt", "http/well-known"], ["private-exchange"]] as const),
        timestamp: Math.floor(rnd() * 2e9),
        expiration: rnd() < 0.5 ? undefined : Math.floor(rnd() * 2e9),
        signedHeaders: ["Originator", "Recipient", "Content-Type", "iSchedule-Version"].slice(0, 1 + (i % 4)),
        bodyHash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
      };
      expect(formatSignatureWithoutData(f)).toBe(referenceFormat(f));
    }
  });
});
