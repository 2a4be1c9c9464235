/**
 * The capabilities cache against real HTTPS servers on loopback (certificates from a throwaway CA),
 * reached through peerFetch; a plain HTTP server for the downgrade case; dnsmasq for one run from
 * discovery to a group plan. The clock is injected; server hits are recorded per path.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { createResolver } from "../../src/dns/client.ts";
import { type PeerFetchOptions, type PeerRequest, peerFetch } from "../../src/net/peer-fetch.ts";
import {
  type CapabilitiesResult,
  createCapabilitiesCache,
  maxAgeSeconds,
} from "../../src/outbound/capabilities-cache.ts";
import { createDiscovery } from "../../src/outbound/discovery.ts";
import { planGroups } from "../../src/outbound/fit.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

// draft §5.1, the split </administrator> joined back.
const DRAFT = `<?xml version="1.0" encoding="utf-8" ?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities>
<serial-number>123</serial-number><versions><version>1.0</version></versions>
<scheduling-messages>
<component name="VEVENT"><method name="REQUEST"/><method name="ADD"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VTODO"><method name="REQUEST"/><method name="ADD"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VFREEBUSY"><method name="REQUEST"/></component></scheduling-messages>
<calendar-data-types><calendar-data-type content-type="text/calendar" version="2.0"/></calendar-data-types>
<attachments><inline/><external/></attachments>
<rscales><rscale>GREGORIAN</rscale><rscale>CHINESE</rscale></rscales>
<max-content-length>102400</max-content-length><min-date-time>19910101T000000Z</min-date-time>
<max-date-time>20381231T000000Z</max-date-time><max-instances>150</max-instances>
<max-recipients>250</max-recipients><administrator>mailto:ischedule-admin@example.com</administrator>
</capabilities></query-result>`;

const withSerial = (serial: number): string =>
  DRAFT.replace("<serial-number>123<", `<serial-number>${serial}<`);

// Cyrus http_ischedule.c (docs/interop.md): empty max-recipients and administrator, jCal, inline only.
const CYRUS = `<?xml version="1.0" encoding="utf-8"?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capabilities><serial-number>1718000003</serial-number>
<versions><version>1.0</version></versions><scheduling-messages>
<component name="VEVENT"><method name="REQUEST"/><method name="REPLY"/><method name="CANCEL"/></component>
<component name="VFREEBUSY"><method name="REQUEST"/></component></scheduling-messages>
<calendar-data-types><calendar-data-type content-type="text/calendar" version="2.0"/>
<calendar-data-type content-type="application/calendar+json" version="2.0"/></calendar-data-types>
<attachments><inline/></attachments><max-content-length>2147483647</max-content-length>
<min-date-time>19000101T000000Z</min-date-time><max-date-time>20380119T031407Z</max-date-time>
<max-recipients/><administrator/></capabilities></query-result>`;

// CalendarServer doCapabilities (docs/interop.md): the serial as a stray <version>, external only.
const CALENDAR_SERVER = `<?xml version='1.0' encoding='UTF-8'?>
<query-result xmlns='urn:ietf:params:xml:ns:ischedule'><capabilities><version>7</version>
<versions><version>1.0</version></versions><scheduling-messages>
<component name='VEVENT'><method name='REQUEST'/><method name='CANCEL'/><method name='REPLY'/></component>
<component name='VFREEBUSY'><method name='REQUEST'/></component></scheduling-messages>
<calendar-data-types><calendar-data-type content-type='text/calendar' version='2.0'/></calendar-data-types>
<attachments><external/></attachments><max-content-length>102400</max-content-length>
<min-date-time>20250101T000000Z</min-date-time><max-date-time>20360615T120000Z</max-date-time>
<max-instances>1000</max-instances><max-recipients>100</max-recipients>
<administrator>https://cal.peer.test/ischedule</administrator></capabilities></query-result>`;

// DAViCal well-known.php (docs/interop.md): the -01 schema, and only for ?query=capabilities.
const DAVICAL = `<?xml version="1.0" encoding="utf-8" ?>
<query-result xmlns="urn:ietf:params:xml:ns:ischedule"><capability-set>
<supported-version-set><version>1.0</version></supported-version-set>
<supported-scheduling-message-set><comp name="VEVENT"><method name="REQUEST"/><method name="REPLY"/></comp>
<comp name="VTODO"/><comp name="VFREEBUSY"/></supported-scheduling-message-set>
<supported-calendar-data-type><calendar-data-type content-type="text/calendar" version="2.0"/></supported-calendar-data-type>
<supported-attachment-values><inline-attachment/><external-attachment/></supported-attachment-values>
<supported-recipient-uri-scheme-set><scheme>mailto</scheme></supported-recipient-uri-scheme-set>
<max-content-length>102400</max-content-length><min-date-time>19910101T000000Z</min-date-time>
<max-date-time>20381231T000000Z</max-date-time><max-instances>150</max-instances>
<max-recipients>250</max-recipients><administrator>mailto:admin@davical.test</administrator>
</capability-set></query-result>`;

interface Hit {
  /** Path and query as received. */
  target: string;
  host: string;
  headers: Headers;
}
type Handler = (req: Request, hit: Hit) => Response | Promise<Response>;

const XML = { "Content-Type": "application/xml; charset=utf-8" };
const routes = new Map<string, Handler>();
const hits: Hit[] = [];
const plainHits: string[] = [];
let ca: TestCa;
let https: ReturnType<typeof Bun.serve>;
let plain: ReturnType<typeof Bun.serve>;
let dns: RunningDnsmasq;
let port: number;

const addresses: PeerFetchOptions["resolver"] = {
  async addresses(name) {
    if (!name.endsWith(".peer.test")) return { status: "nxdomain", ttl: 60 };
    return { status: "ok", records: [{ address: "127.0.0.1", family: 4, ttl: 60 }], ttl: 60 };
  },
};

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["cal.peer.test", "new.peer.test"]);
  https = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    fetch(req) {
      const url = new URL(req.url);
      const hit = {
        target: `${url.pathname}${url.search}`,
        host: req.headers.get("host") ?? "",
        headers: req.headers,
      };
      hits.push(hit);
      const handler = routes.get(url.pathname);
      return handler ? handler(req, hit) : new Response("not found", { status: 404 });
    },
  });
  port = https.port!;
  plain = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      plainHits.push(req.url);
      return new Response(DRAFT, { headers: XML });
    },
  });
  dns = await startDnsmasq({
    zones: ["peer.test"],
    ttl: 300,
    srv: [{ name: "_ischedules._tcp.peer.test", target: "cal.peer.test", port }],
    txt: [{ name: "_ischedules._tcp.peer.test", strings: ["path=/e2e/ischedule"] }],
    hosts: [{ name: "cal.peer.test", address: "127.0.0.1" }],
  });
});

afterAll(async () => {
  https.stop(true);
  plain.stop(true);
  await dns.stop();
  ca.remove();
});

const at = (path: string, host = "cal.peer.test"): string => `https://${host}:${port}${path}`;
const hitsOn = (path: string): Hit[] => hits.filter((h) => h.target.split("?")[0] === path);

function setup(extra: { maxResponseBytes?: number } = {}) {
  let clock = 1_700_000_000_000;
  const fetch = (req: PeerRequest) =>
    peerFetch(req, {
      resolver: addresses,
      allowPrivate: true,
      ca: ca.caCertPem,
      connectTimeoutMs: 2000,
      ...extra,
    });
  const cache = createCapabilitiesCache({ fetch, nowMs: () => clock });
  return { cache, now: () => clock, advance: (s: number) => (clock += s * 1000) };
}

function ok(r: CapabilitiesResult): Extract<CapabilitiesResult, { ok: true }> {
  if (!r.ok) throw new Error(`expected capabilities, got ${JSON.stringify(r)}`);
  return r;
}

function serve(path: string, handler: Handler): void {
  routes.set(path, handler);
}

describe("fetching and reading", () => {
  test("GETs ?action=capabilities and reads the draft's full document", async () => {
    serve("/full", () => new Response(DRAFT, { headers: { ...XML, "iSchedule-Capabilities": "123" } }));
    const { cache, now } = setup();
    const r = ok(await cache.get(at("/full")));
    expect(hitsOn("/full").map((h) => h.target)).toEqual(["/full?action=capabilities"]);
    expect(hitsOn("/full")[0]!.headers.get("accept")).toStartWith("application/xml");
    expect(r).toMatchObject({ url: at("/full"), fromCache: false, fetchedAtMs: now(), warnings: [] });
    expect(r.capabilities).toMatchObject({
      serialNumber: 123,
      versions: ["1.0"],
      attachments: { inline: true, external: true },
      rscales: ["GREGORIAN", "CHINESE"],
      maxContentLength: 102400,
      minDateTime: "19910101T000000Z",
      maxDateTime: "20381231T000000Z",
      maxInstances: 150,
      maxRecipients: 250,
      administrator: "mailto:ischedule-admin@example.com",
    });
    expect(r.capabilities.components.map((c) => c.name)).toEqual(["VEVENT", "VTODO", "VFREEBUSY"]);
  });

  test("keeps the target's own query and adds action=capabilities to it", async () => {
    serve("/tenant", () => new Response(DRAFT, { headers: XML }));
    const r = ok(await setup().cache.get(at("/tenant?t=a%20b")));
    expect(hitsOn("/tenant").map((h) => h.target)).toEqual(["/tenant?t=a%20b&action=capabilities"]);
    expect(r.url).toBe(at("/tenant?t=a%20b"));
  });

  test("accepts a CalendarServer-style document (serial as a stray <version>, external attachments only)", async () => {
    serve(
      "/ccs",
      () => new Response(CALENDAR_SERVER, { headers: { ...XML, "iSchedule-Capabilities": "7" } }),
    );
    const r = ok(await setup().cache.get(at("/ccs")));
    expect(r.capabilities).toMatchObject({
      serialNumber: 7,
      attachments: { inline: false, external: true },
      maxRecipients: 100,
    });
    expect(r.capabilities.administrator).toBe("https://cal.peer.test/ischedule");
  });

  test("accepts a Cyrus-style document (empty max-recipients and administrator, jCal)", async () => {
    serve(
      "/cyrus",
      () => new Response(CYRUS, { headers: { ...XML, "Cache-Control": "max-age=86400", ETag: '"c1"' } }),
    );
    const r = ok(await setup().cache.get(at("/cyrus")));
    expect(r.capabilities.maxRecipients).toBeUndefined();
    expect(r.capabilities.administrator).toBeUndefined();
    expect(r.capabilities.calendarDataTypes.map((t) => t.contentType)).toEqual([
      "text/calendar",
      "application/calendar+json",
    ]);
    expect(r.capabilities.attachments).toEqual({ inline: true, external: false });
  });

  test("accepts a DAViCal-style server: 404 to action=, the -01 document to query=, which later refreshes use", async () => {
    serve("/davical", (req) =>
      new URL(req.url).searchParams.get("query") === "capabilities"
        ? new Response(DAVICAL, { headers: XML })
        : new Response("The application program does not understand that request.", { status: 404 }),
    );
    const { cache, advance } = setup();
    const r = ok(await cache.get(at("/davical")));
    expect(r.capabilities.recipientUriSchemes).toEqual(["mailto"]);
    expect(r.capabilities.components.map((c) => [c.name, c.methods.length])).toEqual([
      ["VEVENT", 2],
      ["VTODO", 0],
      ["VFREEBUSY", 0],
    ]);
    expect(r.warnings).toContain(`${at("/davical")} answers only the draft -00/-01 ?query=capabilities`);
    advance(3601);
    ok(await cache.get(at("/davical")));
    expect(hitsOn("/davical").map((h) => h.target)).toEqual([
      "/davical?action=capabilities",
      "/davical?query=capabilities",
      "/davical?query=capabilities",
    ]);
  });

  test("a document that is not capabilities is refused as not temporary", async () => {
    serve(
      "/html",
      () => new Response("<html><body>Welcome</body></html>", { headers: { "Content-Type": "text/html" } }),
    );
    const r = await setup().cache.get(at("/html"));
    expect(r).toMatchObject({ ok: false, temporary: false });
    expect(!r.ok && r.reason).toStartWith(
      `${at("/html")} does not serve iSchedule capabilities: Not a capabilities document`,
    );
  });
});

describe("failures", () => {
  test("404 (to both query styles) is not temporary and says the peer does not serve capabilities", async () => {
    const r = await setup().cache.get(at("/missing"));
    expect(r).toEqual({
      ok: false,
      temporary: false,
      reason: `${at("/missing?action=capabilities")} does not serve iSchedule capabilities (HTTP 404)`,
      httpStatus: 404,
    });
    expect(hitsOn("/missing").map((h) => h.target)).toEqual([
      "/missing?action=capabilities",
      "/missing?query=capabilities",
    ]);
  });

  test("503 is temporary, is asked once, and is not cached", async () => {
    serve("/busy", () => new Response("busy", { status: 503 }));
    const { cache } = setup();
    const r = await cache.get(at("/busy"));
    expect(r).toEqual({
      ok: false,
      temporary: true,
      reason: `${at("/busy?action=capabilities")} answered HTTP 503`,
      httpStatus: 503,
    });
    await cache.get(at("/busy"));
    expect(hitsOn("/busy")).toHaveLength(2);
  });

  test("a 2 MB document is refused by the size cap, not temporary", async () => {
    const huge = DRAFT.replace("</capabilities>", `<!-- ${"x".repeat(2 * 1024 * 1024)} --></capabilities>`);
    serve("/huge", () => new Response(huge, { headers: XML }));
    const r = await setup().cache.get(at("/huge"));
    expect(r).toMatchObject({ ok: false, temporary: false });
    expect(!r.ok && r.reason).toContain("exceeds 1048576 bytes");
  });

  test("a closed port is temporary", async () => {
    const probe = createServer();
    const closed = await new Promise<number>((resolve) =>
      probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await setup().cache.get(`https://cal.peer.test:${closed}/x`);
    expect(r).toMatchObject({ ok: false, temporary: true });
  });

  test("a target that is not a URL is refused", async () => {
    expect(await setup().cache.get("cal.peer.test/x")).toEqual({
      ok: false,
      temporary: false,
      reason: '"cal.peer.test/x" is not a URL',
    });
  });
});

describe("HTTP caching", () => {
  test("an ETag makes the re-check a conditional GET; a 304 keeps the document and refreshes the expiry", async () => {
    serve("/etag", (req) =>
      req.headers.get("if-none-match") === '"v1"'
        ? new Response(null, { status: 304, headers: { "Cache-Control": "max-age=600" } })
        : new Response(DRAFT, { headers: { ...XML, ETag: '"v1"', "Cache-Control": "max-age=60" } }),
    );
    const { cache, advance, now } = setup();
    const first = ok(await cache.get(at("/etag")));
    advance(61);
    const second = ok(await cache.get(at("/etag")));
    const seen = hitsOn("/etag");
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers.get("if-none-match")).toBeNull();
    expect(seen[1]!.headers.get("if-none-match")).toBe('"v1"');
    expect(second.capabilities).toEqual(first.capabilities);
    expect(second).toMatchObject({ fromCache: true, fetchedAtMs: now() });
    // The 304's max-age=600 now applies.
    advance(599);
    expect(ok(await cache.get(at("/etag"))).fromCache).toBe(true);
    expect(hitsOn("/etag")).toHaveLength(2);
  });

  test("Last-Modified makes the re-check carry If-Modified-Since", async () => {
    const stamp = "Tue, 25 Nov 2025 10:00:00 GMT";
    serve("/lastmod", (req) =>
      req.headers.get("if-modified-since") === stamp
        ? new Response(null, { status: 304 })
        : new Response(DRAFT, { headers: { ...XML, "Last-Modified": stamp } }),
    );
    const { cache, advance } = setup();
    ok(await cache.get(at("/lastmod")));
    advance(3601);
    expect(ok(await cache.get(at("/lastmod"))).fromCache).toBe(true);
    expect(hitsOn("/lastmod")[1]!.headers.get("if-modified-since")).toBe(stamp);
  });

  test("max-age is respected: cached until it passes, then fetched again", async () => {
    serve(
      "/maxage",
      () => new Response(DRAFT, { headers: { ...XML, "Cache-Control": "public, max-age=600" } }),
    );
    const { cache, advance } = setup();
    expect(ok(await cache.get(at("/maxage"))).fromCache).toBe(false);
    advance(599);
    expect(ok(await cache.get(at("/maxage"))).fromCache).toBe(true);
    expect(hitsOn("/maxage")).toHaveLength(1);
    advance(2);
    expect(ok(await cache.get(at("/maxage"))).fromCache).toBe(false);
    expect(hitsOn("/maxage")).toHaveLength(2);
  });

  test("max-age is clamped: no-cache still holds for a minute, a week for a day, none for an hour", async () => {
    for (const [path, cacheControl, heldSeconds] of [
      ["/nocache", "no-cache", 60],
      ["/week", "max-age=604800", 86400],
      ["/nomaxage", "", 3600],
    ] as const) {
      serve(
        path,
        () =>
          new Response(DRAFT, {
            headers: { ...XML, ...(cacheControl ? { "Cache-Control": cacheControl } : {}) },
          }),
      );
      const { cache, advance } = setup();
      await cache.get(at(path));
      advance(heldSeconds - 1);
      await cache.get(at(path));
      expect(hitsOn(path)).toHaveLength(1);
      advance(2);
      await cache.get(at(path));
      expect(hitsOn(path)).toHaveLength(2);
    }
  });

  test("concurrent gets share one request", async () => {
    serve("/shared", () => new Response(DRAFT, { headers: XML }));
    const { cache } = setup();
    const all = await Promise.all([1, 2, 3].map(() => cache.get(at("/shared"))));
    expect(all.every((r) => r.ok)).toBe(true);
    expect(hitsOn("/shared")).toHaveLength(1);
  });

  test("maxAgeSeconds reads max-age, no-cache and no-store", () => {
    expect(maxAgeSeconds("private, max-age=300, must-revalidate")).toBe(300);
    expect(maxAgeSeconds('max-age="42"')).toBe(42);
    expect(maxAgeSeconds("no-store")).toBe(0);
    expect(maxAgeSeconds("must-revalidate")).toBeUndefined();
    expect(maxAgeSeconds(null)).toBeUndefined();
  });
});

describe("serial numbers (draft §8.3)", () => {
  test("a different serial seen on a later response triggers an unconditional refetch; the same serial does not", async () => {
    let serial = 123;
    serve(
      "/serial",
      () =>
        new Response(withSerial(serial), {
          headers: {
            ...XML,
            ETag: `"s${serial}"`,
            "iSchedule-Capabilities": String(serial),
            "Cache-Control": "max-age=3600",
          },
        }),
    );
    const { cache } = setup();
    expect(ok(await cache.get(at("/serial"))).capabilities.serialNumber).toBe(123);
    cache.noteSerial(at("/serial"), "123");
    cache.noteSerial(at("/serial"), " 0123 ");
    cache.noteSerial(at("/serial"), null);
    cache.noteSerial(at("/serial"), "garbage");
    expect(ok(await cache.get(at("/serial"))).fromCache).toBe(true);
    expect(hitsOn("/serial")).toHaveLength(1);

    serial = 124;
    cache.noteSerial(at("/serial"), "124");
    const r = ok(await cache.get(at("/serial")));
    expect(r).toMatchObject({ fromCache: false, capabilities: { serialNumber: 124 } });
    expect(hitsOn("/serial")).toHaveLength(2);
    expect(hitsOn("/serial")[1]!.headers.get("if-none-match")).toBeNull();
    cache.noteSerial(at("/serial"), "124");
    expect(ok(await cache.get(at("/serial"))).fromCache).toBe(true);
    expect(hitsOn("/serial")).toHaveLength(2);
  });

  test("a document without any serial takes the first one noted as its baseline", async () => {
    serve(
      "/noserial",
      () => new Response(DRAFT.replace("<serial-number>123</serial-number>", ""), { headers: XML }),
    );
    const { cache } = setup();
    ok(await cache.get(at("/noserial")));
    cache.noteSerial(at("/noserial"), "9");
    expect(ok(await cache.get(at("/noserial"))).fromCache).toBe(true);
    cache.noteSerial(at("/noserial"), "10");
    expect(ok(await cache.get(at("/noserial"))).fromCache).toBe(false);
  });
});

describe("redirects", () => {
  test("a 301 is remembered: the result names the new endpoint and the next fetch goes straight there", async () => {
    serve(
      "/old",
      () =>
        new Response(null, {
          status: 301,
          headers: { Location: at("/ischedule?action=capabilities", "new.peer.test") },
        }),
    );
    serve("/ischedule", (_req, hit) =>
      hit.host.startsWith("new.peer.test")
        ? new Response(DRAFT, { headers: { ...XML, "Cache-Control": "max-age=60" } })
        : new Response("wrong host", { status: 500 }),
    );
    const { cache, advance } = setup();
    const first = ok(await cache.get(at("/old")));
    expect(first.url).toBe(at("/ischedule", "new.peer.test"));
    advance(61);
    expect(ok(await cache.get(at("/old"))).url).toBe(at("/ischedule", "new.peer.test"));
    expect(hitsOn("/old")).toHaveLength(1);
    expect(hitsOn("/ischedule").map((h) => [h.host, h.target])).toEqual([
      [`new.peer.test:${port}`, "/ischedule?action=capabilities"],
      [`new.peer.test:${port}`, "/ischedule?action=capabilities"],
    ]);
  });

  test("a 307 is followed (relative Location, query added back) but not remembered", async () => {
    serve("/temp", () => new Response(null, { status: 307, headers: { Location: "/temp-target" } }));
    serve("/temp-target", () => new Response(DRAFT, { headers: XML }));
    const { cache, advance } = setup();
    expect(ok(await cache.get(at("/temp"))).url).toBe(at("/temp"));
    expect(hitsOn("/temp-target").map((h) => h.target)).toEqual(["/temp-target?action=capabilities"]);
    advance(3601);
    ok(await cache.get(at("/temp")));
    expect(hitsOn("/temp")).toHaveLength(2);
  });

  test("a redirect loop is refused, not temporary", async () => {
    serve("/loop-a", () => new Response(null, { status: 302, headers: { Location: "/loop-b" } }));
    serve(
      "/loop-b",
      () => new Response(null, { status: 302, headers: { Location: "/loop-a?action=capabilities" } }),
    );
    const r = await setup().cache.get(at("/loop-a"));
    expect(r).toMatchObject({ ok: false, temporary: false, httpStatus: 302 });
    expect(!r.ok && r.reason).toStartWith("redirect loop:");
  });

  test("three redirects are followed, a fourth is refused", async () => {
    for (const n of [1, 2, 3, 4])
      serve(`/hop${n}`, () => new Response(null, { status: 308, headers: { Location: `/hop${n + 1}` } }));
    serve("/hop5", () => new Response(DRAFT, { headers: XML }));
    const { cache } = setup();
    expect(ok(await cache.get(at("/hop2"))).url).toBe(at("/hop5"));
    const r = await cache.get(at("/hop1"));
    expect(r).toMatchObject({ ok: false, temporary: false });
    expect(!r.ok && r.reason).toStartWith("more than 3 redirects (");
  });

  test("a redirect from https to http is refused and the http server is never asked", async () => {
    const target = `http://127.0.0.1:${plain.port}/ischedule`;
    serve("/down", () => new Response(null, { status: 302, headers: { Location: target } }));
    const r = await setup().cache.get(at("/down"));
    expect(r).toMatchObject({ ok: false, temporary: false });
    expect(!r.ok && r.reason).toContain("it leaves https for plain http");
    expect(plainHits).toEqual([]);
  });
});

describe("from discovery to a plan", () => {
  test("an SRV + TXT answer from dnsmasq leads to the capabilities and groups by max-recipients", async () => {
    serve("/e2e/ischedule", () => new Response(CALENDAR_SERVER, { headers: XML }));
    const resolver = createResolver({ servers: [dns.server], timeoutMs: 1000 });
    const discovery = createDiscovery({ resolver, staticRoutes: [] });
    const found = await discovery.discover("peer.test");
    if (found.kind !== "found") throw new Error(JSON.stringify(found));
    expect(found.targets[0]!.url).toBe(at("/e2e/ischedule"));
    const cache = createCapabilitiesCache({
      fetch: (req) => peerFetch(req, { resolver, allowPrivate: true, ca: ca.caCertPem }),
    });
    const caps = ok(await cache.get(found.targets[0]!.url));
    const recipients = Array.from({ length: 250 }, (_, i) => `mailto:u${i}@peer.test`);
    const plan = planGroups({
      recipients,
      capabilities: caps.capabilities,
      message: { component: "VEVENT", method: "REQUEST", contentType: "text/calendar", sizeBytes: 1000 },
    });
    expect(plan.groups.map((g) => g.length)).toEqual([100, 100, 50]);
  });
});
