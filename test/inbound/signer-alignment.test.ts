import { describe, expect, test } from "bun:test";
import { alignSigner, type SignerAlignmentInput } from "../../src/inbound/signer-alignment.ts";

const hosted = (d: string) => d === "org.test";
const check = (o: Partial<SignerAlignmentInput> & { from: string; d: string }) =>
  alignSigner({ originatorDomain: o.from, signingDomain: o.d, mode: o.mode ?? "relaxed", hosted, ...o });
const listed = { domains: ["hosting.example"], namedBy: "--trust example.net" };

describe("alignSigner()", () => {
  test("the Originator's own domain, in both modes", () => {
    for (const mode of ["strict", "relaxed"] as const)
      expect(check({ from: "example.net", d: "example.net", mode })).toEqual({
        ok: true,
        rule: "d=example.net is the Originator's domain.",
      });
  });

  test("a parent of the Originator's domain, in both modes", () => {
    for (const mode of ["strict", "relaxed"] as const)
      expect(check({ from: "eu.example.net", d: "example.net", mode })).toEqual({
        ok: true,
        rule: "d=example.net is a parent of the Originator's domain eu.example.net.",
      });
  });

  test("relaxed: the host name of the Originator's calendar server (CalendarServer's default d=)", () => {
    expect(check({ from: "example.net", d: "cal.example.net" })).toEqual({
      ok: true,
      rule: "d=cal.example.net and the Originator's domain example.net are both in the organisational domain example.net (relaxed alignment, RFC 7489 §3.1).",
    });
    expect(check({ from: "eu.example.net", d: "cal.us.example.net" }).ok).toBe(true);
  });

  test("strict: the host name is refused, saying so", () => {
    const r = check({ from: "example.net", d: "cal.example.net", mode: "strict" });
    expect(r).toEqual({
      ok: false,
      reason:
        "The request is signed by cal.example.net, which is neither the Originator's domain nor a parent of it (this server requires strict alignment): the Originator's domain is example.net.",
    });
  });

  test("another organisation is refused", () => {
    const r = check({ from: "example.net", d: "example.org" });
    expect(r).toEqual({
      ok: false,
      reason:
        "The request is signed by example.org, which is neither in the Originator's organisation nor a signer this server accepts for it: the Originator's domain is example.net.",
    });
  });

  test("public suffixes: siblings under co.uk are two organisations, and co.uk itself speaks for nobody", () => {
    expect(check({ from: "a.co.uk", d: "b.co.uk" }).ok).toBe(false);
    for (const mode of ["strict", "relaxed"] as const)
      expect(check({ from: "a.co.uk", d: "co.uk", mode })).toEqual({
        ok: false,
        reason:
          "The request is signed by co.uk, a public suffix, which cannot speak for the Originator's domain a.co.uk.",
      });
    expect(check({ from: "alice.github.io", d: "bob.github.io" }).ok).toBe(false);
  });

  test("an extra signer named by the Originator's policy, in both modes", () => {
    for (const mode of ["strict", "relaxed"] as const)
      expect(check({ from: "example.net", d: "hosting.example", mode, extraSigners: listed })).toEqual({
        ok: true,
        rule: "d=hosting.example is an extra signer named by --trust example.net.",
      });
    // Exactly the names listed: not their subdomains.
    expect(check({ from: "example.net", d: "x.hosting.example", extraSigners: listed }).ok).toBe(false);
  });

  test("never a hosted domain or a name under one, by relaxed alignment or by a list", () => {
    expect(check({ from: "sub.org.test", d: "cal.org.test" }).ok).toBe(false);
    expect(check({ from: "peer.org.test", d: "org.test" }).ok).toBe(true); // a parent: authenticate.ts refuses the hosted Originator
    expect(
      check({
        from: "example.net",
        d: "mail.org.test",
        extraSigners: { domains: ["mail.org.test"], namedBy: "a test" },
      }).ok,
    ).toBe(false);
  });
});
