/** Which addresses isched may connect to: the classification table and the refusal sentence. */

import { describe, expect, test } from "bun:test";
import {
  type AddressClass,
  classifyAddress,
  isAllowedPeerAddress,
  isIpAddress,
  isPublicAddress,
  refusalSentence,
} from "../../src/net/address-policy.ts";

const CASES: readonly (readonly [string, AddressClass])[] = [
  ["8.8.8.8", "public"],
  ["1.1.1.1", "public"],
  ["100.63.255.255", "public"],
  ["100.128.0.0", "public"],
  ["172.15.255.255", "public"],
  ["172.32.0.0", "public"],
  ["223.255.255.255", "public"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["100.64.0.1", "carrier-nat"],
  ["100.127.255.255", "carrier-nat"],
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["169.254.169.254", "link-local"],
  ["192.0.0.8", "reserved"],
  ["192.0.2.10", "documentation"],
  ["198.18.0.1", "reserved"],
  ["198.19.255.255", "reserved"],
  ["198.20.0.0", "public"],
  ["198.51.100.7", "documentation"],
  ["203.0.113.9", "documentation"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["240.0.0.1", "reserved"],
  ["255.255.255.255", "reserved"],
  ["2606:4700:4700::1111", "public"],
  ["2a00:1450:4001:82b::200e", "public"],
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["::ffff:10.0.0.1", "private"],
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::ffff:8.8.8.8", "public"],
  ["::10.0.0.1", "reserved"],
  ["64:ff9b::8.8.8.8", "public"],
  ["64:ff9b::a9fe:a9fe", "link-local"],
  ["2002:c0a8:0101::1", "private"],
  ["2001:0:4136:e378::1", "reserved"],
  ["fc00::1", "unique-local"],
  ["fd12:3456:789a::1", "unique-local"],
  ["fe80::1", "link-local"],
  ["fe80::1%eth0", "link-local"],
  ["febf:ffff::1", "link-local"],
  ["fec0::1", "reserved"],
  ["ff02::1", "multicast"],
  ["2001:db8::1", "documentation"],
  ["2001:DB8:ffff::1", "documentation"],
  ["3fff::1", "documentation"],
  ["100::1", "reserved"],
  ["4000::1", "reserved"],
];

describe("classifyAddress", () => {
  for (const [ip, cls] of CASES) {
    test(`${ip} is ${cls}`, () => expect(classifyAddress(ip)).toBe(cls));
  }

  test("throws for text that is not an IP address, including octal-looking and short forms", () => {
    for (const bad of [
      "",
      "example.com",
      "1.2.3",
      "1.2.3.4.5",
      "256.0.0.1",
      "010.0.0.1",
      "1::2::3",
      "12345::",
      ":::",
    ]) {
      expect(() => classifyAddress(bad)).toThrow(/is not an IP address/);
    }
  });
});

describe("isPublicAddress and isAllowedPeerAddress", () => {
  test("only public addresses are public; non-addresses are not", () => {
    expect(isPublicAddress("8.8.8.8")).toBe(true);
    expect(isPublicAddress("::ffff:8.8.8.8")).toBe(true);
    expect(isPublicAddress("10.0.0.1")).toBe(false);
    expect(isPublicAddress("::1")).toBe(false);
    expect(isPublicAddress("localhost")).toBe(false);
  });

  test("allowPrivate unlocks loopback, private and link-local but never unspecified or multicast", () => {
    for (const ip of ["127.0.0.1", "10.1.2.3", "169.254.1.1", "fd00::1", "100.64.1.1", "::1"]) {
      expect(isAllowedPeerAddress(ip, false)).toBe(false);
      expect(isAllowedPeerAddress(ip, true)).toBe(true);
    }
    for (const ip of ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "not-an-ip"]) {
      expect(isAllowedPeerAddress(ip, true)).toBe(false);
    }
    expect(isAllowedPeerAddress("93.184.215.14", false)).toBe(true);
  });

  test("isIpAddress accepts both families and rejects host names", () => {
    expect(isIpAddress("192.0.2.1")).toBe(true);
    expect(isIpAddress("2001:db8::1")).toBe(true);
    expect(isIpAddress("::ffff:192.0.2.1")).toBe(true);
    expect(isIpAddress("cal.example.com")).toBe(false);
  });
});

describe("refusalSentence", () => {
  test("names the host, the address and its kind, and the flag that would allow it", () => {
    expect(refusalSentence("cal.example.com", ["10.0.0.5"])).toBe(
      "Refusing to connect to cal.example.com at 10.0.0.5: a private address (start with --allow-private-peers to allow it)",
    );
  });

  test("an IP-literal host is not repeated", () => {
    expect(refusalSentence("169.254.169.254", ["169.254.169.254"])).toBe(
      "Refusing to connect to 169.254.169.254: a link-local address (start with --allow-private-peers to allow it)",
    );
  });

  test("lists every refused address", () => {
    expect(refusalSentence("cal.example.com", ["127.0.0.1", "fd00::1"])).toBe(
      "Refusing to connect to cal.example.com: 127.0.0.1 is a loopback address, fd00::1 is a unique local (private IPv6) address (start with --allow-private-peers to allow them)",
    );
  });

  test("does not suggest the flag when it would not help", () => {
    expect(refusalSentence("cal.example.com", ["224.0.0.1"])).toBe(
      "Refusing to connect to cal.example.com at 224.0.0.1: a multicast address",
    );
  });
});
