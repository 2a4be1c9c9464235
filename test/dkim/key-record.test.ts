import { expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { checkKeyForSignature, parseKeyRecord } from "../../src/dkim/key-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { RSA_PUBLIC } from "../support/dkim-fixtures.ts";

const SPKI = RSA_PUBLIC.replace(/-----[^-]+-----|\s/g, "");
const ED_P = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

const parsed = (text: string) => parseKeyRecord(text);
const reason = (text: string) => {
  const r = parseKeyRecord(text);
  return r.ok ? "ok" : r.reason;
};

test("a minimal record (p= only) is an RSA key usable by iSchedule", () => {
  const r = parsed(`p=${SPKI}`);
  expect(r).toMatchObject({ ok: true, key: { type: "rsa", bits: 2048, services: ["*"] } });
});

test("whitespace inside p= (copied from a split TXT record) is stripped", () => {
  const spaced = `${SPKI.slice(0, 100)} ${SPKI.slice(100, 200)}\t${SPKI.slice(200)}`;
  expect(reason(`v=DKIM1; k=rsa; p=${spaced}`)).toBe("ok");
});

test("an empty p= means the key is revoked", () => {
  const r = parsed("v=DKIM1; p=");
  expect(r).toMatchObject({ ok: false, reason: "key-revoked" });
});

test("v= other than DKIM1 is refused, and so is a record without p=", () => {
  expect(reason(`v=DKIM2; p=${SPKI}`)).toBe("key-malformed");
  expect(reason("v=DKIM1; k=rsa")).toBe("key-malformed");
});

test("s=email restricts the key away from iSchedule; s=* and s=ischedule allow it", () => {
  expect(reason(`v=DKIM1; s=email; p=${SPKI}`)).toBe("key-service-not-allowed");
  expect(reason(`v=DKIM1; s=*; p=${SPKI}`)).toBe("ok");
  expect(reason(`v=DKIM1; s=email:ischedule; p=${SPKI}`)).toBe("ok");
});

test("k= must match the key inside p=", () => {
  expect(reason(`v=DKIM1; k=ed25519; p=${SPKI}`)).toBe("key-type-mismatch");
  const edSpki = generateKeyPairSync("ed25519")
    .publicKey.export({ format: "der", type: "spki" })
    .toString("base64");
  expect(reason(`v=DKIM1; k=rsa; p=${edSpki}`)).toBe("key-type-mismatch");
  expect(reason(`v=DKIM1; k=ed25519; p=${ED_P}`)).toBe("ok");
  expect(reason(`v=DKIM1; k=dsa; p=${SPKI}`)).toBe("key-malformed");
});

test("an RSA key under 1024 bits is refused as too short", () => {
  const small = generateKeyPairSync("rsa", { modulusLength: 512 }).publicKey.export({
    format: "der",
    type: "spki",
  });
  const r = parsed(`v=DKIM1; p=${small.toString("base64")}`);
  expect(r).toMatchObject({ ok: false, reason: "key-too-short" });
  expect(r.ok ? "" : r.message).toContain("512 bits");
});

test("literal quotes in p= are named as the likely copy mistake", () => {
  const r = parsed(`v=DKIM1; p="${SPKI.slice(0, 200)}" "${SPKI.slice(200)}"`);
  expect(r).toMatchObject({ ok: false, reason: "key-malformed" });
  expect(r.ok ? "" : r.message).toContain("quote");
});

test("a PKCS#1 RSAPublicKey in p= is accepted like a SubjectPublicKeyInfo", () => {
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
  const pkcs1 = publicKey.export({ format: "der", type: "pkcs1" }).toString("base64");
  expect(reason(`p=${pkcs1}`)).toBe("ok");
});

test("h= restricts the hashes a signature may use", () => {
  const r = parsed(`v=DKIM1; h=sha256; p=${SPKI}`);
  if (!r.ok) throw new Error(r.message);
  expect(checkKeyForSignature(r.key, "rsa-sha256")).toBeUndefined();
  expect(checkKeyForSignature(r.key, "rsa-sha1")?.reason).toBe("key-hash-not-allowed");
  expect(checkKeyForSignature(r.key, "ed25519-sha256")?.reason).toBe("key-type-mismatch");
});

test("a record made by keygen parses back to the same key", () => {
  for (const type of ["rsa", "ed25519"] as const) {
    const g = generateDkimKey(type);
    const r = parsed(g.record);
    if (!r.ok) throw new Error(r.message);
    expect(r.key.type).toBe(type);
    expect(r.key.key.export({ format: "pem", type: "spki" }).toString()).toBe(g.publicKeyPem);
  }
});
