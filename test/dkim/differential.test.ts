/**
 * The built-in crypto path against the independent @noble reference, both ways: every signature
 * isched makes verifies with @noble, and every signature @noble makes verifies with isched.
 */
import { describe, expect, test } from "bun:test";
import { createPublicKey } from "node:crypto";
import {
  canonicalBody,
  type HeaderField,
  headerHashInput,
  indexHeaders,
  withoutSignatureData,
} from "../../src/dkim/canonicalize.ts";
import { formatKeyRecord, publicKeyMaterial } from "../../src/dkim/key-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { parseSignature } from "../../src/dkim/signature.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { ED_PRIVATE, keysFor, RSA_PRIVATE } from "../support/dkim-fixtures.ts";
import { referenceBodyHash, referenceSign, referenceVerify } from "../support/noble-reference.ts";

const NOW = Date.UTC(2026, 10, 25, 9, 30, 0);

/** Requests that differ in the ways that matter to canonicalisation. */
function requests(): { title: string; fields: HeaderField[]; body: Buffer }[] {
  const base: HeaderField[] = [
    ["iSchedule-Version", "1.0"],
    ["Originator", "mailto:organizer@example.com"],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
  ];
  const out = [];
  for (let i = 0; i < 6; i++) {
    const recipients = Array.from({ length: i + 1 }, (_, k) => `mailto:user${k}@example.org`);
    const fields: HeaderField[] = [
      ...base,
      ...(i % 2 === 0
        ? [["Recipient", recipients.join(" , ")] as HeaderField]
        : recipients.map((r): HeaderField => ["Recipient", r])),
      ["iSchedule-Message-ID", `msg-${i}`],
    ];
    if (i === 3) fields.push(["User-Agent", "Example/1.0  (folded\r\n test)"]);
    const body = Buffer.from(
      `BEGIN:VCALENDAR\r\nX-N:${"x".repeat(i * 300)}\r\nEND:VCALENDAR${i === 4 ? "\n" : "\r\n\r\n"}`,
    );
    out.push({ title: `request ${i}`, fields, body });
  }
  return out;
}

const keys = [
  ["rsa-sha256 (fixture key)", RSA_PRIVATE],
  ["ed25519-sha256 (fixture key)", ED_PRIVATE],
  ["rsa-sha256 (fresh 2048-bit key)", generateDkimKey("rsa").privateKeyPem],
  ["ed25519-sha256 (fresh key)", generateDkimKey("ed25519").privateKeyPem],
] as const;

describe.each(keys)("%s", (_title, privatePem) => {
  const signing = loadSigningKey(privatePem, "example.com", "k");
  const record = formatKeyRecord(publicKeyMaterial(createPublicKey(privatePem)));
  const resolver = keysFor([{ domain: "example.com", selector: "k", key: record }]);

  for (const r of requests()) {
    test(`${r.title}: isched's signature verifies with @noble`, () => {
      const value = signRequest({ key: signing, fields: r.fields, body: r.body, nowMs: NOW });
      const sig = parseSignature(value);
      if (!sig.ok) throw new Error(sig.message);
      expect(referenceBodyHash(canonicalBody(r.body, "simple"))).toBe(sig.signature.bodyHash);
      const input = headerHashInput({
        index: indexHeaders(r.fields),
        signedHeaders: sig.signature.signedHeaders,
        canonicalization: "ischedule-relaxed",
        signatureWithoutData: withoutSignatureData(value),
      });
      expect(
        referenceVerify(signing.algorithm, createPublicKey(privatePem), input, sig.signature.signature),
      ).toBe(true);
    });

    test(`${r.title}: @noble's signature verifies with isched`, async () => {
      const t = NOW / 1000;
      const unsigned = `v=1; a=${signing.algorithm}; d=example.com; s=k; c=ischedule-relaxed/simple; q=dns/txt; t=${t}; h=Originator:Recipient:Content-Type:iSchedule-Version:iSchedule-Message-ID; bh=${referenceBodyHash(canonicalBody(r.body, "simple"))}; b=`;
      const input = headerHashInput({
        index: indexHeaders(r.fields),
        signedHeaders: [
          "Originator",
          "Recipient",
          "Content-Type",
          "iSchedule-Version",
          "iSchedule-Message-ID",
        ],
        canonicalization: "ischedule-relaxed",
        signatureWithoutData: unsigned,
      });
      const b = Buffer.from(referenceSign(signing.algorithm, privatePem, input)).toString("base64");
      const verdict = await verifyRequest(
        { fields: [["DKIM-Signature", unsigned + b], ...r.fields], body: r.body },
        { keys: resolver, nowMs: NOW },
      );
      expect(verdict.ok).toBe(true);
      // And a flipped bit in @noble's signature is refused by isched.
      const bad = Buffer.from(b, "base64");
      bad[5] = bad[5]! ^ 0x10;
      const refused = await verifyRequest(
        { fields: [["DKIM-Signature", unsigned + bad.toString("base64")], ...r.fields], body: r.body },
        { keys: resolver, nowMs: NOW },
      );
      expect(refused).toMatchObject({ ok: false, reason: "signature-mismatch" });
    });
  }
});
