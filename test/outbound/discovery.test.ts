/**
 * Discovery against a real dnsmasq on loopback (SRV, TXT, NXDOMAIN, "." targets, TTLs), a silent UDP
 * socket for a DNS server that never answers, and a counting wrapper around the resolver to see which
 * queries the cache saves.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { createResolver, type DnsResolver } from "../../src/dns/client.ts";
import {
  createDiscovery,
  type Discovery,
  type DiscoveryOptions,
  discoveryCandidates,
  txtPath,
} from "../../src/outbound/discovery.ts";
import type { PeerRoute } from "../../src/outbound/static-routes.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { seeded } from "../support/seeded-random.ts";

const SRV = "_ischedules._tcp";
let dns: RunningDnsmasq;
let authDns: RunningDnsmasq;
let silent: dgram.Socket;
let silentPort: number;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: [
      "txt.test",
      "wk.test",
      "weighted.test",
      "dot.test",
      "gone.test",
      "static.test",
      "example.test",
      "badtxt.test",
      "multi.test",
      "old.test",
    ],
    ttl: 300,
    srv: [
      { name: `${SRV}.txt.test`, target: "cal.txt.test", port: 8443 },
      { name: `${SRV}.wk.test`, target: "cal.wk.test", port: 443 },
      { name: `${SRV}.weighted.test`, target: "a.weighted.test", port: 8443, priority: 10, weight: 60 },
      { name: `${SRV}.weighted.test`, target: "b.weighted.test", port: 8443, priority: 10, weight: 20 },
      { name: `${SRV}.weighted.test`, target: "c.weighted.test", port: 8443, priority: 10, weight: 20 },
      { name: `${SRV}.weighted.test`, target: "d.weighted.test", port: 9443, priority: 20, weight: 0 },
      { name: `${SRV}.dot.test`, target: "", port: 0 },
      { name: `${SRV}.static.test`, target: "srv.static.test", port: 443 },
      { name: `${SRV}.example.test`, target: "cal.example.test", port: 8443 },
      { name: `${SRV}.closed.example.test`, target: "", port: 0 },
      { name: `${SRV}.badtxt.test`, target: "cal.badtxt.test", port: 443 },
      { name: `${SRV}.multi.test`, target: "cal.multi.test", port: 443 },
      { name: "_ischedule._tcp.old.test", target: "cal.old.test", port: 8008 },
      { name: "_ischedule._tcp.wk.test", target: "plain.wk.test", port: 80 },
    ],
    txt: [
      { name: `${SRV}.txt.test`, strings: ["path=/ischedule"] },
      { name: `${SRV}.badtxt.test`, strings: ["path=/has space"] },
      { name: `${SRV}.multi.test`, strings: ["txtvers=1", "PATH=/cal/ischedule", "path=/second"] },
      { name: "other.wk.test", strings: ["path=/not-here"] },
      { name: "_ischedule._tcp.old.test", strings: ["path=/ischedule"] },
    ],
  });
  authDns = await startDnsmasq({
    zones: ["neg.test"],
    ttl: 120,
    soa: true,
    hosts: [{ name: "x.neg.test", address: "192.0.2.1" }],
  });
  silent = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", resolve));
  silentPort = silent.address().port;
});

afterAll(async () => {
  await dns.stop();
  await authDns.stop();
  silent.close();
});

/** The resolver with every query it was asked recorded as "TYPE name". */
function counting(inner: DnsResolver) {
  const calls: string[] = [];
  return {
    calls,
    srv(name: string) {
      calls.push(`SRV ${name}`);
      return inner.srv(name);
    },
    txt(name: string) {
      calls.push(`TXT ${name}`);
      return inner.txt(name);
    },
  };
}

function setup(extra: Partial<DiscoveryOptions> = {}, server = dns.server) {
  const resolver = counting(createResolver({ servers: [server], timeoutMs: 1000 }));
  let clock = 1_000_000;
  const discovery = createDiscovery({ resolver, staticRoutes: [], nowMs: () => clock, ...extra });
  return { discovery, calls: resolver.calls, advance: (s: number) => (clock += s * 1000) };
}

function found(d: Discovery): Extract<Discovery, { kind: "found" }> {
  if (d.kind !== "found") throw new Error(`expected found, got ${JSON.stringify(d)}`);
  return d;
}

describe("discover() through SRV and TXT", () => {
  test("uses the TXT path at the SRV owner name", async () => {
    const d = found(await setup().discovery.discover("TXT.test."));
    expect(d).toEqual({
      kind: "found",
      domain: "txt.test",
      how: "srv",
      targets: [
        {
          url: "https://cal.txt.test:8443/ischedule",
          host: "cal.txt.test",
          port: 8443,
          priority: 0,
          weight: 0,
        },
      ],
      path: "/ischedule",
      ttlSeconds: 300,
      sign: true,
      legacyHttp: false,
      warnings: [],
    });
  });

  test("without a TXT record uses /.well-known/ischedule and leaves out :443", async () => {
    const { discovery, calls } = setup();
    const d = found(await discovery.discover("wk.test"));
    expect(d.path).toBe("/.well-known/ischedule");
    expect(d.targets.map((t) => t.url)).toEqual(["https://cal.wk.test/.well-known/ischedule"]);
    expect(calls).toEqual([`SRV ${SRV}.wk.test`, `TXT ${SRV}.wk.test`]);
  });

  test("reads RFC 6763 key/value strings: case-insensitive key, first occurrence wins", async () => {
    expect(found(await setup().discovery.discover("multi.test")).path).toBe("/cal/ischedule");
  });

  test("ignores a malformed TXT path with a warning and uses the well-known path", async () => {
    const d = found(await setup().discovery.discover("badtxt.test"));
    expect(d.path).toBe("/.well-known/ischedule");
    expect(d.warnings).toEqual([
      `${SRV}.badtxt.test: TXT path "/has space" is not an absolute URL path; using /.well-known/ischedule`,
    ]);
  });

  test("a lone '.' SRV target means no iSchedule service", async () => {
    const d = await setup().discovery.discover("dot.test");
    expect(d).toEqual({
      kind: "none",
      reason: `SRV target '.' at ${SRV}.dot.test says no iSchedule service`,
      ttlSeconds: 300,
    });
  });

  test("NXDOMAIN is none, with the default negative TTL when there is no SOA", async () => {
    const d = await setup({ minTtlSeconds: 1 }).discovery.discover("gone.test");
    expect(d).toEqual({ kind: "none", reason: `no ${SRV} SRV record for gone.test`, ttlSeconds: 60 });
  });

  test("a DNS server that never answers is a temporary error, not none, and is not cached", async () => {
    const resolver = createResolver({
      servers: [{ host: "127.0.0.1", port: silentPort }],
      timeoutMs: 100,
      attempts: 1,
    });
    const wrapped = counting(resolver);
    const quick = createDiscovery({ resolver: wrapped, staticRoutes: [] });
    for (let i = 0; i < 2; i++) {
      const d = await quick.discover("wk.test");
      expect(d.kind).toBe("error");
      expect(d.kind === "error" && d.temporary).toBe(true);
      expect(d.kind === "error" && d.reason).toStartWith(
        `SRV lookup of ${SRV}.wk.test failed: timeout after 1 attempt of 100ms`,
      );
    }
    expect(wrapped.calls).toEqual([`SRV ${SRV}.wk.test`, `SRV ${SRV}.wk.test`]);
  });

  test("a REFUSED answer (a name outside every zone) is an error, not none", async () => {
    const d = await setup().discovery.discover("elsewhere.invalid");
    expect(d.kind).toBe("error");
    expect(d.kind === "error" && d.reason).toContain("REFUSED");
  });

  test("a name that is not a domain is none without asking DNS", async () => {
    const { discovery, calls } = setup();
    expect(await discovery.discover("not a domain")).toMatchObject({
      kind: "none",
      reason: '"not a domain" is not a domain name',
    });
    expect(calls).toEqual([]);
  });
});

describe("RFC 2782 order of SRV targets", () => {
  test("lowest priority first; weight-proportional first pick over 4000 draws; the priority-20 target always last", async () => {
    const { discovery, calls } = setup({ random: seeded(42) });
    const firsts: Record<string, number> = {};
    const runs = 4000;
    for (let i = 0; i < runs; i++) {
      const d = found(await discovery.discover("weighted.test"));
      expect(d.targets.map((t) => t.host).sort()).toEqual(
        ["a", "b", "c", "d"].map((h) => `${h}.weighted.test`),
      );
      expect(d.targets[3]!.host).toBe("d.weighted.test");
      firsts[d.targets[0]!.host] = (firsts[d.targets[0]!.host] ?? 0) + 1;
    }
    // RFC 2782: pick in 0..sum(weights); a wins for 0..60 (61 of 101 values), b and c for 20 each.
    expect(Math.abs(firsts["a.weighted.test"]! / runs - 61 / 101)).toBeLessThan(0.03);
    expect(Math.abs(firsts["b.weighted.test"]! / runs - 20 / 101)).toBeLessThan(0.03);
    expect(Math.abs(firsts["c.weighted.test"]! / runs - 20 / 101)).toBeLessThan(0.03);
    // The order is drawn on every call, but DNS was asked once.
    expect(calls).toHaveLength(2);
  });

  test("lists every target in fail-over order, each with its URL, port, priority and weight", async () => {
    const d = found(await setup({ random: seeded(7) }).discovery.discover("weighted.test"));
    // dnsmasq may list the records in any order, so the weighted order within priority 10 varies.
    expect(d.targets.map((t) => t.priority)).toEqual([10, 10, 10, 20]);
    expect([...d.targets].sort((x, y) => x.host.localeCompare(y.host))).toEqual([
      {
        url: "https://a.weighted.test:8443/.well-known/ischedule",
        host: "a.weighted.test",
        port: 8443,
        priority: 10,
        weight: 60,
      },
      {
        url: "https://b.weighted.test:8443/.well-known/ischedule",
        host: "b.weighted.test",
        port: 8443,
        priority: 10,
        weight: 20,
      },
      {
        url: "https://c.weighted.test:8443/.well-known/ischedule",
        host: "c.weighted.test",
        port: 8443,
        priority: 10,
        weight: 20,
      },
      {
        url: "https://d.weighted.test:9443/.well-known/ischedule",
        host: "d.weighted.test",
        port: 9443,
        priority: 20,
        weight: 0,
      },
    ]);
  });
});

describe("static routes", () => {
  const route: PeerRoute = {
    domain: "Static.Test",
    url: "https://peer.static.test:8443/isched?x=1",
    sign: false,
  };

  test("a static route wins over the domain's SRV record and asks no DNS", async () => {
    const { discovery, calls } = setup({ staticRoutes: [route] });
    const d = found(await discovery.discover("static.test"));
    expect(d).toMatchObject({
      domain: "static.test",
      how: "static",
      path: "/isched?x=1",
      sign: false,
      targets: [{ url: "https://peer.static.test:8443/isched?x=1", host: "peer.static.test", port: 8443 }],
    });
    expect(calls).toEqual([]);
    // Without the route the same domain has an SRV record.
    expect(found(await setup().discovery.discover("static.test")).how).toBe("srv");
  });

  test("two routes for one domain are refused at creation", () => {
    expect(() =>
      createDiscovery({
        resolver: counting(createResolver({ servers: [dns.server] })),
        staticRoutes: [route, route],
      }),
    ).toThrow("Two static routes for static.test");
  });
});

describe("legacy peers: _ischedule._tcp (plain HTTP) only with --peer D=legacy-http", () => {
  const legacy: PeerRoute = { domain: "old.test", legacyHttp: true, sign: true };

  test("a legacy peer without _ischedules._tcp is found at _ischedule._tcp, on http, with its TXT path", async () => {
    const { discovery, calls } = setup({ staticRoutes: [legacy] });
    const d = found(await discovery.discover("old.test"));
    expect(d).toMatchObject({ how: "srv", legacyHttp: true, path: "/ischedule" });
    expect(d.targets.map((t) => t.url)).toEqual(["http://cal.old.test:8008/ischedule"]);
    expect(calls).toEqual([
      `SRV ${SRV}.old.test`,
      "SRV _ischedule._tcp.old.test",
      "TXT _ischedule._tcp.old.test",
    ]);
  });

  test("a legacy peer with _ischedules._tcp uses it, https, and may follow redirects to http", async () => {
    const { discovery } = setup({ staticRoutes: [{ ...legacy, domain: "wk.test" }] });
    const d = found(await discovery.discover("wk.test"));
    expect(d.targets.map((t) => t.url)).toEqual(["https://cal.wk.test/.well-known/ischedule"]);
    expect(d.legacyHttp).toBe(true);
  });

  test("any other domain with only _ischedule._tcp has no receiver, and the reason names the opt-in", async () => {
    expect(await setup().discovery.discover("old.test")).toMatchObject({
      kind: "none",
      reason:
        "no _ischedules._tcp SRV record for old.test (it publishes _ischedule._tcp, plain HTTP, which isched uses only for a peer named with --peer old.test=legacy-http)",
    });
  });
});

describe("parent walk (draft §4.1)", () => {
  test("with walkParents, cal.sub.example.test is found at example.test after asking each level", async () => {
    const { discovery, calls } = setup({ walkParents: true });
    const d = found(await discovery.discover("cal.sub.example.test"));
    expect(d.domain).toBe("example.test");
    expect(d.targets.map((t) => t.url)).toEqual(["https://cal.example.test:8443/.well-known/ischedule"]);
    expect(calls).toEqual([
      `SRV ${SRV}.cal.sub.example.test`,
      `SRV ${SRV}.sub.example.test`,
      `SRV ${SRV}.example.test`,
      `TXT ${SRV}.example.test`,
    ]);
  });

  test("without walkParents, cal.sub.example.test is none and only its own name is asked", async () => {
    const { discovery, calls } = setup();
    expect(await discovery.discover("cal.sub.example.test")).toMatchObject({
      kind: "none",
      reason: `no ${SRV} SRV record for cal.sub.example.test`,
    });
    // The old plain-HTTP service is looked up only to name the opt-in in the reason.
    expect(calls).toEqual([`SRV ${SRV}.cal.sub.example.test`, "SRV _ischedule._tcp.cal.sub.example.test"]);
  });

  test("the walk names every level in its reason and stops at a '.' target", async () => {
    const walk = setup({ walkParents: true }).discovery;
    expect(await walk.discover("a.b.gone.test")).toMatchObject({
      kind: "none",
      reason: `no ${SRV} SRV record for a.b.gone.test or its parents b.gone.test, gone.test`,
    });
    expect(await walk.discover("x.closed.example.test")).toMatchObject({
      kind: "none",
      reason: `SRV target '.' at ${SRV}.closed.example.test says no iSchedule service`,
    });
  });

  test("candidates stop at two labels and before a public second level", () => {
    expect(discoveryCandidates("cal.sub.example.test", true)).toEqual([
      "cal.sub.example.test",
      "sub.example.test",
      "example.test",
    ]);
    expect(discoveryCandidates("a.b.example.co.uk", true)).toEqual([
      "a.b.example.co.uk",
      "b.example.co.uk",
      "example.co.uk",
    ]);
    expect(discoveryCandidates("example.test", true)).toEqual(["example.test"]);
    expect(discoveryCandidates("cal.sub.example.test", false)).toEqual(["cal.sub.example.test"]);
  });
});

describe("caching by TTL", () => {
  test("a found answer is cached for its TTL (300 s), then asked again", async () => {
    const { discovery, calls, advance } = setup();
    await discovery.discover("txt.test");
    advance(299);
    expect(found(await discovery.discover("txt.test")).ttlSeconds).toBe(1);
    expect(calls).toHaveLength(2);
    advance(2);
    expect(found(await discovery.discover("txt.test")).ttlSeconds).toBe(300);
    expect(calls).toHaveLength(4);
  });

  test("the TTL is clamped to maxTtlSeconds", async () => {
    const { discovery, calls, advance } = setup({ maxTtlSeconds: 100 });
    expect(found(await discovery.discover("txt.test")).ttlSeconds).toBe(100);
    advance(101);
    await discovery.discover("txt.test");
    expect(calls).toHaveLength(4);
  });

  test("a negative answer is cached for its SOA TTL", async () => {
    const { discovery, calls, advance } = setup({}, authDns.server);
    expect(await discovery.discover("neg.test")).toEqual({
      kind: "none",
      reason: `no ${SRV} SRV record for neg.test`,
      ttlSeconds: 120,
    });
    advance(119);
    await discovery.discover("neg.test");
    expect(calls).toEqual([`SRV ${SRV}.neg.test`, "SRV _ischedule._tcp.neg.test"]);
    advance(2);
    await discovery.discover("neg.test");
    expect(calls).toHaveLength(4);
  });

  test("concurrent calls for one domain share one lookup", async () => {
    const { discovery, calls } = setup();
    const all = await Promise.all([1, 2, 3].map(() => discovery.discover("wk.test")));
    expect(all.map((d) => d.kind)).toEqual(["found", "found", "found"]);
    expect(calls).toHaveLength(2);
  });

  test("invalidate() forgets a domain, whether asked as or found at", async () => {
    const { discovery, calls } = setup({ walkParents: true });
    await discovery.discover("cal.sub.example.test");
    discovery.invalidate("example.test");
    await discovery.discover("cal.sub.example.test");
    expect(calls).toHaveLength(8);
  });
});

describe("txtPath", () => {
  const record = (...strings: string[]) => ({
    strings: strings.map((s) => new Uint8Array(Buffer.from(s, "latin1"))),
    text: strings.join(""),
    ttl: 60,
  });

  test("ignores strings starting with '=' and other keys", () => {
    expect(txtPath([record("=path=/x", "pathx=/y", "path=/z")])).toEqual({ path: "/z", warnings: [] });
  });

  test("refuses a key without value, a relative path, a query and disagreeing records", () => {
    expect(txtPath([record("path")]).path).toBeUndefined();
    expect(txtPath([record("path=ischedule")]).warnings[0]).toContain("not an absolute URL path");
    expect(txtPath([record("path=/i?x=1")]).path).toBeUndefined();
    const two = txtPath([record("path=/a"), record("path=/b")]);
    expect(two.path).toBeUndefined();
    expect(two.warnings).toEqual(["TXT records give different paths (/a, /b); using /.well-known/ischedule"]);
    expect(txtPath([record("path=/a"), record("path=/a")])).toEqual({ path: "/a", warnings: [] });
  });
});
