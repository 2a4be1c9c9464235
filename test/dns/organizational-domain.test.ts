import { describe, expect, test } from "bun:test";
import { isPublicSuffix, organizationalDomain } from "../../src/dns/organizational-domain.ts";

describe("organizationalDomain() (RFC 7489 §3.2, the Public Suffix List)", () => {
  const cases: [string, string | undefined][] = [
    ["cal.example.net", "example.net"],
    ["example.net", "example.net"],
    ["CAL.Example.NET.", "example.net"],
    ["mail.a.co.uk", "a.co.uk"],
    ["a.co.uk", "a.co.uk"],
    // A public suffix belongs to no organisation.
    ["co.uk", undefined],
    ["net", undefined],
    // The list's private section counts: two github.io sites are two organisations.
    ["alice.github.io", "alice.github.io"],
    ["github.io", undefined],
    // Wildcard and exception rules: *.kawasaki.jp, !city.kawasaki.jp.
    ["www.shop.kawasaki.jp", "www.shop.kawasaki.jp"],
    ["www.city.kawasaki.jp", "city.kawasaki.jp"],
    // A top-level domain the list does not know gets its default rule "*".
    ["cal.org.test", "org.test"],
  ];
  for (const [name, organization] of cases)
    test(`${name} -> ${organization ?? "none"}`, () => expect(organizationalDomain(name)).toBe(organization));
});

describe("isPublicSuffix()", () => {
  test("public suffixes of both sections and the default rule", () => {
    for (const s of ["co.uk", "uk", "net", "github.io", "test", "shop.kawasaki.jp"])
      expect(isPublicSuffix(s)).toBe(true);
  });
  test("registered names are not", () => {
    for (const s of ["example.net", "a.co.uk", "city.kawasaki.jp", "org.test"])
      expect(isPublicSuffix(s)).toBe(false);
  });
});
