import { describe, expect, test } from "bun:test";
import {
  addressDomain,
  isCalendarUserAddress,
  normalizeAddress,
  sameAddress,
} from "../../src/ischedule/address.ts";

describe("normalizeAddress()", () => {
  test("lower-cases scheme and domain, keeps the local part", () => {
    expect(normalizeAddress("MAILTO:Cyrus@Example.ORG")).toBe("mailto:Cyrus@example.org");
  });

  test("lower-cases the host of hierarchical URIs, keeps the path", () => {
    expect(normalizeAddress("HTTPS://User@Cal.Example.COM:8443/Principals/X")).toBe(
      "https://User@cal.example.com:8443/Principals/X",
    );
  });

  test("keeps a mailto: query as written", () => {
    expect(normalizeAddress(" mailto:a@EXAMPLE.org?Subject=Hi ")).toBe("mailto:a@example.org?Subject=Hi");
  });
});

describe("addressDomain()", () => {
  test("is the mailto: domain, lower-case", () => {
    expect(addressDomain("mailto:cyrus@Cal.Example.ORG")).toBe("cal.example.org");
  });

  test("is the host of a URI with an authority, without user info or port", () => {
    expect(addressDomain("https://u@cal.example.com:8443/p/")).toBe("cal.example.com");
    expect(addressDomain("http://[2001:db8::1]:80/x")).toBe("[2001:db8::1]");
  });

  test("drops a trailing dot", () => {
    expect(addressDomain("mailto:a@example.org.")).toBe("example.org");
  });

  test("is undefined without a host", () => {
    expect(addressDomain("urn:uuid:1234")).toBeUndefined();
    expect(addressDomain("mailto:nobody")).toBeUndefined();
  });
});

describe("sameAddress()", () => {
  test("compares mailto: addresses case-insensitively as a whole", () => {
    expect(sameAddress("mailto:Cyrus@example.org", "MAILTO:cyrus@EXAMPLE.ORG")).toBe(true);
    expect(sameAddress("mailto:cyrus@example.org", "mailto:mike@example.org")).toBe(false);
  });

  test("compares other URIs in normal form, paths case-sensitively", () => {
    expect(sameAddress("https://CAL.example.com/a", "https://cal.example.com/a")).toBe(true);
    expect(sameAddress("https://cal.example.com/A", "https://cal.example.com/a")).toBe(false);
  });

  test("compares urn:uuid: case-insensitively", () => {
    expect(sameAddress("urn:uuid:ABCDEF01-0000", "urn:uuid:abcdef01-0000")).toBe(true);
  });
});

describe("isCalendarUserAddress()", () => {
  test.each([
    ["mailto:cyrus@example.org", true],
    ["mailto:%22a%20b%22@example.org", true],
    ["mailto:a@[192.0.2.1]", true],
    ["urn:uuid:1234", true],
    ["cyrus@example.org", false],
    ["mailto:a@-bad-.org", false],
    ["mailto:a@b@c.org", false],
    ["mailto:a@é.org", false],
    ["mailto:a@example.org\u0000", false],
    [`mailto:${"a".repeat(2100)}@example.org`, false],
  ])("%j → %p", (value, expected) => {
    expect(isCalendarUserAddress(value)).toBe(expected);
  });
});
