import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  canonicalBody,
  headerHashInput,
  indexHeaders,
  withoutSignatureData,
} from "../../src/dkim/canonicalize.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { parseSignature } from "../../src/dkim/signature.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import {
  ED_PRIVATE,
  ED_PUBLIC,
  fixtureRequest,
  RSA_PRIVATE,
  RSA_PUBLIC,
  VECTOR_TIME_MS,
  VECTORS,
  vectorKeys,
} from "../support/dkim-fixtures.ts";
import { referenceBodyHash, referenceSign, referenceVerify } from "../support/noble-reference.ts";

const cases = [
  ["V1", "rsa-sha256 invitation (draft A.1)", RSA_PRIVATE, RSA_PUBLIC],
  ["V2", "rsa-sha256 free/busy with two Recipient fields (draft A.2)", RSA_PRIVATE, RSA_PUBLIC],
  ["V3", "ed25519-sha256 invitation (RFC 8463)", ED_PRIVATE, ED_PUBLIC],
] as const;

describe.each(cases)("vector %s: %s", (id, _title, privatePem, publicPem) => {
  const vector = VECTORS[id];
  const request = fixtureRequest(vector.file);
  const signatureValue = request.fields.find(([n]) => n === "DKIM-Signature")![1];
  const unsigned = request.fields.filter(([n]) => n !== "DKIM-Signature");
  const parsed = parseSignature(signatureValue);
  if (!parsed.ok) throw new Error(parsed.message);
  const sig = parsed.signature;

  test("verifies with the clock frozen just after t=", async () => {
    const verdict = await verifyRequest(request, { keys: vectorKeys(), nowMs: VECTOR_TIME_MS });
    expect(verdict).toMatchObject({ ok: true, domain: "example.com", algorithm: sig.algorithm });
  });

  test("body hash and header hash input are the vector's exact bytes", () => {
    const bh = createHash("sha256")
      .update(Buffer.concat(canonicalBody(request.body, "simple")))
      .digest("base64");
    expect(bh).toBe(vector.bh);
    const input = headerHashInput({
      index: indexHeaders(request.fields),
      signedHeaders: sig.signedHeaders,
      canonicalization: "ischedule-relaxed",
      signatureWithoutData: withoutSignatureData(signatureValue),
    });
    expect(input).toBe(vector.headerHashInput);
    expect(createHash("sha256").update(input, "latin1").digest("hex")).toBe(vector.headerHashSha256);
  });

  test("re-signing reproduces the DKIM-Signature byte for byte", () => {
    const key = loadSigningKey(privatePem, sig.domain, sig.selector);
    const value = signRequest({
      key,
      fields: unsigned,
      body: request.body,
      nowMs: sig.timestamp! * 1000,
      expireSeconds: sig.expiration! - sig.timestamp!,
      signedHeaders: sig.signedHeaders,
      queryMethods: sig.queryMethods,
    });
    expect(value).toBe(vector.dkimSignature);
  });

  test("@noble reproduces b= and bh= and verifies the vector", () => {
    expect(referenceBodyHash(canonicalBody(request.body, "simple"))).toBe(vector.bh);
    expect(
      Buffer.from(referenceSign(sig.algorithm, privatePem, vector.headerHashInput)).toString("base64"),
    ).toBe(vector.b);
    expect(
      referenceVerify(sig.algorithm, publicPem, vector.headerHashInput, Buffer.from(vector.b, "base64")),
    ).toBe(true);
  });
});

test("V2b: one Recipient field with spaces around the comma verifies with V2's signature", async () => {
  const request = fixtureRequest(VECTORS.V2.file);
  const fields = request.fields.filter(([n]) => n !== "Recipient");
  const at = request.fields.findIndex(([n]) => n === "Recipient");
  fields.splice(at, 0, ["Recipient", "mailto:cyrus@example.org ,  mailto:mike@example.org"]);
  const verdict = await verifyRequest(
    { fields, body: request.body },
    { keys: vectorKeys(), nowMs: VECTOR_TIME_MS },
  );
  expect(verdict.ok).toBe(true);
});

test('V2 verifies when an HTTP stack has joined the two Recipient fields with ", "', async () => {
  const request = fixtureRequest(VECTORS.V2.file);
  const joined = new Headers();
  for (const [n, v] of request.fields) joined.append(n, v);
  const verdict = await verifyRequest(
    { fields: [...joined.entries()], body: request.body },
    { keys: vectorKeys(), nowMs: VECTOR_TIME_MS },
  );
  expect(verdict.ok).toBe(true);
});
