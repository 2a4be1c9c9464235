import { describe, expect, test } from "bun:test";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import type { DkimFailureReason } from "../../src/dkim/verdict.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { ED_PRIVATE, ED_PUBLIC, keysFor, RSA_PRIVATE, RSA_PUBLIC } from "../support/dkim-fixtures.ts";

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const BODY = Buffer.from(
  "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//isched test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:t-1\r\nDTSTAMP:20261125T120000Z\r\nORGANIZER:mailto:a@example.com\r\nATTENDEE:mailto:b@example.org\r\nDTSTART:20261201T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
);
const FIELDS: HeaderField[] = [
  ["Host", "cal.example.org"],
  ["iSchedule-Version", "1.0"],
  ["iSchedule-Message-ID", "c6d0c2a4-7f53-4a53-9b55-3f2b8a1e2d10"],
  ["Originator", "mailto:a@example.com"],
  ["Recipient", "mailto:b@example.org"],
  ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
  ["Cache-Control", "no-cache, no-transform"],
  ["User-Agent", "isched-test"],
];

const rsaKey = loadSigningKey(RSA_PRIVATE, "example.com", "s1");
const edKey = loadSigningKey(ED_PRIVATE, "example.com", "ed");
const keys = () =>
  keysFor([
    { domain: "example.com", selector: "s1", key: RSA_PUBLIC },
    { domain: "example.com", selector: "ed", key: ED_PUBLIC },
  ]);

function signed(
  o: {
    key?: typeof rsaKey;
    fields?: HeaderField[];
    body?: Uint8Array;
    nowMs?: number;
    expireSeconds?: number;
  } = {},
) {
  const fields = o.fields ?? FIELDS;
  const body = o.body ?? BODY;
  const value = signRequest({
    key: o.key ?? rsaKey,
    fields,
    body,
    nowMs: o.nowMs ?? NOW,
    expireSeconds: o.expireSeconds,
  });
  return { fields: [["DKIM-Signature", value] as HeaderField, ...fields], body, value };
}

async function reason(
  request: { fields: readonly HeaderField[]; body: Uint8Array },
  nowMs = NOW,
): Promise<DkimFailureReason | "ok"> {
  const v = await verifyRequest(request, { keys: keys(), nowMs });
  return v.ok ? "ok" : v.reason;
}

const replaceSig = (r: ReturnType<typeof signed>, value: string) => ({
  fields: r.fields.map(([n, v]): HeaderField => (n === "DKIM-Signature" ? [n, value] : [n, v])),
  body: r.body,
});

describe("a freshly signed request", () => {
  test("verifies with rsa-sha256 and ed25519-sha256", async () => {
    expect(await reason(signed())).toBe("ok");
    expect(await reason(signed({ key: edKey }))).toBe("ok");
  });

  test("still verifies when hop-by-hop headers change (Host, Cache-Control, Content-Length)", async () => {
    const r = signed();
    const fields = r.fields.map(
      ([n, v]): HeaderField => (n === "Host" ? [n, "other.example.net:8443"] : [n, v]),
    );
    fields.push(["Content-Length", String(r.body.length)], ["Cache-Control", "max-age=0"]);
    expect(await reason({ fields, body: r.body })).toBe("ok");
  });

  test("still verifies with whitespace changed around commas and in runs", async () => {
    const r = signed({
      fields: FIELDS.map(
        ([n, v]): HeaderField =>
          n === "Recipient" ? [n, "mailto:b@example.org,mailto:c@example.org"] : [n, v],
      ),
    });
    const fields = r.fields.map(
      ([n, v]): HeaderField =>
        n === "Recipient"
          ? [n, " mailto:b@example.org ,\t mailto:c@example.org "]
          : n === "Content-Type"
            ? [n, v.replace(/ /g, "   ")]
            : [n, v],
    );
    expect(await reason({ fields, body: r.body })).toBe("ok");
  });
});

describe("verify() refuses a changed request with the right reason", () => {
  for (const [name] of FIELDS.filter(([n]) => !["Host", "Cache-Control"].includes(n))) {
    test(`a changed ${name} value is a signature-mismatch`, async () => {
      const r = signed();
      const fields = r.fields.map(([n, v]): HeaderField => (n === name ? [n, `${v}x`] : [n, v]));
      expect(await reason({ fields, body: r.body })).toBe("signature-mismatch");
    });
  }

  test("an added Recipient field is a signature-mismatch", async () => {
    const r = signed();
    expect(
      await reason({ fields: [...r.fields, ["Recipient", "mailto:evil@example.net"]], body: r.body }),
    ).toBe("signature-mismatch");
  });

  test("one changed body byte is a body-hash-mismatch", async () => {
    const r = signed();
    const body = Buffer.from(r.body);
    body[40] = body[40]! ^ 1;
    expect(await reason({ fields: r.fields, body })).toBe("body-hash-mismatch");
  });

  test("extra trailing CRLFs do not change the simple body hash, extra content does", async () => {
    const r = signed();
    expect(await reason({ fields: r.fields, body: Buffer.concat([r.body, Buffer.from("\r\n\r\n")]) })).toBe(
      "ok",
    );
    expect(await reason({ fields: r.fields, body: Buffer.concat([r.body, Buffer.from("X\r\n")]) })).toBe(
      "body-hash-mismatch",
    );
  });

  const tagCases: [string, (v: string) => string, DkimFailureReason][] = [
    ["d= changed", (v) => v.replace("d=example.com", "d=example.net"), "key-not-found"],
    ["s= changed to the other key", (v) => v.replace("s=s1", "s=ed"), "key-type-mismatch"],
    ["t= changed", (v) => v.replace(/t=(\d+)/, (_m, t) => `t=${Number(t) - 1}`), "signature-mismatch"],
    ["q= changed", (v) => v.replace("q=dns/txt:http/well-known", "q=dns/txt"), "signature-mismatch"],
    ["h= without Recipient", (v) => v.replace("Recipient:", ""), "required-header-not-signed"],
    ["h= with Host", (v) => v.replace("h=Originator", "h=Host:Originator"), "forbidden-header-signed"],
    [
      "h= with Content-Length",
      (v) => v.replace("h=Originator", "h=Content-Length:Originator"),
      "forbidden-header-signed",
    ],
    [
      "h= with Proxy-Authorization",
      (v) => v.replace("h=Originator", "h=Proxy-Authorization:Originator"),
      "forbidden-header-signed",
    ],
    [
      "h= listing Originator twice",
      (v) => v.replace("h=Originator", "h=Originator:Originator"),
      "header-signed-twice",
    ],
    ["v=2", (v) => v.replace("v=1", "v=2"), "unsupported-version"],
    ["a=rsa-sha512", (v) => v.replace("a=rsa-sha256", "a=rsa-sha512"), "unsupported-algorithm"],
    ["a=rsa-sha1", (v) => v.replace("a=rsa-sha256", "a=rsa-sha1"), "sha1-not-allowed"],
    [
      "c=simple/simple",
      (v) => v.replace("c=ischedule-relaxed/simple", "c=simple/simple"),
      "unsupported-canonicalization",
    ],
    [
      "q=dns/foo only",
      (v) => v.replace("q=dns/txt:http/well-known", "q=dns/foo"),
      "unsupported-query-method",
    ],
    ["no bh=", (v) => v.replace(/bh=[^;]+; /, ""), "missing-tag"],
    ["no d=", (v) => v.replace("d=example.com; ", ""), "missing-tag"],
    ["a duplicate tag", (v) => `${v}; d=example.net`, "malformed-signature"],
    ["b= not base64", (v) => v.replace(/b=[^;]+$/, "b=!!!"), "malformed-signature"],
    [
      "b= of another message",
      (v) => v.replace(/b=([A-Za-z0-9+/])/, (_m, c) => `b=${c === "A" ? "B" : "A"}`),
      "signature-mismatch",
    ],
    ["x= before t=", (v) => v.replace(/x=\d+/, "x=1"), "malformed-signature"],
    ["l= shorter than the body", (v) => `${v}; l=10`, "body-length-limited"],
    ["i= outside d=", (v) => `${v}; i=@example.net`, "malformed-signature"],
  ];
  for (const [title, change, expected] of tagCases) {
    test(`${title}: ${expected}`, async () => {
      const r = signed();
      expect(await reason(replaceSig(r, change(r.value)))).toBe(expected);
    });
  }

  test("an l= that covers the whole body is accepted", async () => {
    const r = signed();
    // l= is not covered by its own hash here (it was added after signing), so a mismatch proves l= passed.
    expect(await reason(replaceSig(r, `${r.value}; l=${r.body.length}`))).toBe("signature-mismatch");
  });

  test("no DKIM-Signature, and two of them", async () => {
    const r = signed();
    expect(await reason({ fields: FIELDS, body: r.body })).toBe("no-signature");
    expect(await reason({ fields: [...r.fields, r.fields[0]!], body: r.body })).toBe("multiple-signatures");
  });

  test("an Authorization header that h= omits", async () => {
    const r = signed();
    expect(await reason({ fields: [...r.fields, ["Authorization", "Basic dTpw"]], body: r.body })).toBe(
      "required-header-not-signed",
    );
  });
});

describe("time", () => {
  test("t= up to 300 s in the future is accepted, beyond is signature-in-future", async () => {
    expect(await reason(signed({ nowMs: NOW + 299_000 }))).toBe("ok");
    expect(await reason(signed({ nowMs: NOW + 301_000 }))).toBe("signature-in-future");
  });

  test("x= is enforced with 300 s for clock skew: signature-expired after that", async () => {
    const r = signed({ expireSeconds: 600 });
    expect(await reason(r, NOW + 599_000)).toBe("ok");
    expect(await reason(r, NOW + 899_000)).toBe("ok");
    expect(await reason(r, NOW + 901_000)).toBe("signature-expired");
  });

  test("the verdict's end is x= plus the clock skew allowed: the replay window", async () => {
    const v = await verifyRequest(signed({ expireSeconds: 600 }), { keys: keys(), nowMs: NOW });
    expect(v).toMatchObject({ ok: true, expiresAt: NOW / 1000 + 600, endsAt: NOW / 1000 + 900 });
  });

  describe("with a bounded lifetime (max age 1 h, x= for 24 h at most)", () => {
    const lifetime = { maxAgeSeconds: 3600, maxLifetimeSeconds: 86_400 };
    const bounded = async (r: ReturnType<typeof signed>, nowMs: number) => {
      const v = await verifyRequest(r, { keys: keys(), nowMs, lifetime });
      return v.ok ? { ok: true, endsAt: v.endsAt } : { ok: false, reason: v.reason, message: v.message };
    };

    test("without x=, a signature ends max age after t=", async () => {
      const r = signed({ expireSeconds: 0 });
      expect(await bounded(r, NOW + 3_599_000)).toEqual({ ok: true, endsAt: NOW / 1000 + 3600 });
      const late = await bounded(r, NOW + 3_601_000);
      expect(late).toMatchObject({ ok: false, reason: "signature-expired" });
      expect(late.message).toContain("up to 3600 seconds old");
    });

    test("x= beyond 24 hours after t= counts as t= + 24 hours", async () => {
      const r = signed({ expireSeconds: 30 * 86_400 });
      expect(await bounded(r, NOW + 86_399_000)).toEqual({ ok: true, endsAt: NOW / 1000 + 86_400 });
      expect(await bounded(r, NOW + 86_401_000)).toMatchObject({ ok: false, reason: "signature-expired" });
    });

    test("a signature without t= is refused as undated", async () => {
      const r = signed();
      const undated = r.value.replace(/ ?t=\d+;/, "");
      expect(undated).not.toContain("t=");
      const v = await verifyRequest(
        { fields: [["DKIM-Signature", undated], ...FIELDS], body: r.body },
        { keys: keys(), nowMs: NOW, lifetime },
      );
      expect(v).toMatchObject({ ok: false, reason: "signature-undated" });
    });
  });

  test("the verdict carries t= and x= and where the key came from", async () => {
    const v = await verifyRequest(signed(), { keys: keys(), nowMs: NOW });
    expect(v).toMatchObject({
      ok: true,
      signedAt: NOW / 1000,
      expiresAt: NOW / 1000 + 3600,
      keySource: "private-exchange",
      keyBits: 2048,
    });
  });
});

describe("rsa-sha1", () => {
  test("is verified only when the operator allows it", async () => {
    const { createSign } = await import("node:crypto");
    const { headerHashInput, indexHeaders, withoutSignatureData } = await import(
      "../../src/dkim/canonicalize.ts"
    );
    const { createHash } = await import("node:crypto");
    const bh = createHash("sha1").update(BODY).digest("base64");
    const t = NOW / 1000;
    const unsignedValue = `v=1; a=rsa-sha1; d=example.com; s=s1; c=ischedule-relaxed/simple; q=dns/txt; t=${t}; h=Originator:Recipient:Content-Type:iSchedule-Version; bh=${bh}; b=`;
    const input = headerHashInput({
      index: indexHeaders(FIELDS),
      signedHeaders: ["Originator", "Recipient", "Content-Type", "iSchedule-Version"],
      canonicalization: "ischedule-relaxed",
      signatureWithoutData: withoutSignatureData(unsignedValue),
    });
    const b = createSign("sha1").update(Buffer.from(input, "latin1")).sign(RSA_PRIVATE, "base64");
    const request = { fields: [["DKIM-Signature", unsignedValue + b] as HeaderField, ...FIELDS], body: BODY };
    expect(await reason(request)).toBe("sha1-not-allowed");
    // isched's own records say h=sha256, which rightly refuses sha1; an old peer's record has no h=.
    const restricted = await verifyRequest(request, { keys: keys(), nowMs: NOW, allowSha1: true });
    expect(restricted).toMatchObject({ ok: false, reason: "key-hash-not-allowed" });
    const spki = RSA_PUBLIC.replace(/-----[^-]+-----|\s/g, "");
    const oldPeer = keysFor([{ domain: "example.com", selector: "s1", key: `v=DKIM1; k=rsa; p=${spki}` }]);
    const v = await verifyRequest(request, { keys: oldPeer, nowMs: NOW, allowSha1: true });
    expect(v).toMatchObject({ ok: true, algorithm: "rsa-sha1" });
  });
});
