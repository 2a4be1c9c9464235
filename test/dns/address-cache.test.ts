import { expect, test } from "bun:test";
import { cachingAddresses } from "../../src/dns/address-cache.ts";
import type { AddressRecord, DnsAnswer } from "../../src/dns/client.ts";

test("addresses are asked once within their TTL, again after it; errors are not remembered", async () => {
  let clock = 0;
  const answers: DnsAnswer<AddressRecord>[] = [
    { status: "error", message: "timeout" },
    { status: "ok", ttl: 60, records: [{ address: "192.0.2.1", family: 4, ttl: 60 }] },
    { status: "ok", ttl: 60, records: [{ address: "192.0.2.2", family: 4, ttl: 60 }] },
  ];
  let asked = 0;
  const cache = cachingAddresses({ addresses: async () => answers[asked++]! }, { nowMs: () => clock });
  expect((await cache.addresses("peer.test")).status).toBe("error");
  const first = await cache.addresses("Peer.Test");
  expect(first).toMatchObject({ status: "ok", records: [{ address: "192.0.2.1" }] });
  clock = 59_000;
  expect(await cache.addresses("peer.test")).toBe(first);
  expect(asked).toBe(2);
  clock = 61_000;
  expect(await cache.addresses("peer.test")).toMatchObject({ records: [{ address: "192.0.2.2" }] });
  expect(asked).toBe(3);
});
