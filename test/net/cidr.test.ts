import { expect, test } from "bun:test";
import {
  anyContains,
  cidrContains,
  coversEveryAddress,
  parseCidr,
  parseCidrList,
} from "../../src/net/cidr.ts";

test("parseCidr() reads single addresses as full-length ranges", () => {
  expect(parseCidr("192.168.1.5")).toMatchObject({ family: 4, bits: 32 });
  expect(parseCidr("::1")).toMatchObject({ family: 6, bits: 128 });
});

test("parseCidr() refuses bad addresses and prefixes with a sentence", () => {
  expect(() => parseCidr("10.0.0.0/33")).toThrow('"10.0.0.0/33": the prefix length must be 0..32');
  expect(() => parseCidr("10.0.0/8")).toThrow('"10.0.0/8" is not an IP address or range');
  expect(() => parseCidr("fd00::/129")).toThrow("0..128");
  expect(() => parseCidr("1.2.3.4/8/9")).toThrow("is not an address or ADDRESS/PREFIX");
});

test("cidrContains() matches IPv4 ranges, including IPv4-mapped IPv6 clients", () => {
  const lan = parseCidr("10.0.0.0/8");
  expect(cidrContains(lan, "10.200.3.4")).toBe(true);
  expect(cidrContains(lan, "11.0.0.1")).toBe(false);
  expect(cidrContains(lan, "::ffff:10.1.2.3")).toBe(true);
  expect(cidrContains(parseCidr("127.0.0.1"), "127.0.0.2")).toBe(false);
  expect(cidrContains(parseCidr("0.0.0.0/0"), "203.0.113.9")).toBe(true);
});

test("cidrContains() matches IPv6 prefixes on group boundaries and inside groups", () => {
  expect(cidrContains(parseCidr("fd00::/8"), "fd12:3456::1")).toBe(true);
  expect(cidrContains(parseCidr("fd00::/8"), "fe80::1")).toBe(false);
  expect(cidrContains(parseCidr("2001:db8:abcd::/36"), "2001:db8:abcf::1")).toBe(true);
  expect(cidrContains(parseCidr("2001:db8:abcd::/36"), "2001:db8:bbcd::1")).toBe(false);
  expect(cidrContains(parseCidr("::1"), "127.0.0.1")).toBe(false);
});

test("parseCidrList() accepts commas, pluses and spaces between items", () => {
  const list = parseCidrList("127.0.0.1, ::1+10.0.0.0/8");
  expect(list.map((c) => c.text)).toEqual(["127.0.0.1", "::1", "10.0.0.0/8"]);
  expect(anyContains(list, "10.9.9.9")).toBe(true);
  expect(anyContains(list, "192.168.0.1")).toBe(false);
});

test("coversEveryAddress() finds ranges that together cover all of IPv4 or IPv6", () => {
  const covers = (text: string) => coversEveryAddress(parseCidrList(text));
  expect(covers("0.0.0.0/0")).toBe(4);
  expect(covers("128.0.0.0/1,0.0.0.0/1")).toBe(4);
  expect(covers("0.0.0.0/2,64.0.0.0/2,128.0.0.0/1,10.0.0.0/8")).toBe(4);
  expect(covers("::/0")).toBe(6);
  expect(covers("::/1,8000::/1")).toBe(6);
  expect(covers("0.0.0.0/1,128.0.0.0/2,192.0.0.0/3")).toBeUndefined();
  expect(covers("0.0.0.0/1,::/1")).toBeUndefined();
  expect(covers("10.0.0.0/8,127.0.0.1,::1")).toBeUndefined();
  expect(covers("255.255.255.255")).toBeUndefined();
});
