/**
 * The remote iSchedule target against real parts: dnsmasq for the SRV and TXT records, a Bun HTTPS
 * receiver with certificates from a throwaway CA that verifies every request's DKIM signature with
 * isched's own verifier and answers schedule-responses, peerFetch, the real discovery and
 * capabilities cache. The clock is injected and shared with the receiver's verifier.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import type { TargetMessage } from "../../src/delivery/target.ts";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey } from "../../src/dkim/sign.ts";
import type { DkimVerdict } from "../../src/dkim/verdict.ts";
import { verifyRequest } from "../../src/dkim/verify.ts";
import { createResolver, type DnsResolver } from "../../src/dns/client.ts";
import { type Capabilities, DEFAULT_CALENDAR_DATA_TYPE } from "../../src/ischedule/capabilities.ts";
import { classifyStatus } from "../../src/ischedule/status.ts";
import { capabilitiesXml, errorXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import { parseItip } from "../../src/itip/index.ts";
import { type PeerFetchOptions, type PeerRequest, peerFetch } from "../../src/net/peer-fetch.ts";
import { type CapabilitiesCache, createCapabilitiesCache } from "../../src/outbound/capabilities-cache.ts";
import { createDiscovery } from "../../src/outbound/discovery.ts";
import { sendFactsOf, storableSendFacts } from "../../src/outbound/message-facts.ts";
import { remoteIScheduleTarget } from "../../src/outbound/remote-target.ts";
import type { PeerRoute } from "../../src/outbound/static-routes.ts";
import { keysFor, RSA_PRIVATE, RSA_PUBLIC } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const KEY = loadSigningKey(RSA_PRIVATE, "example.org", "cal");
const OUR_KEYS = keysFor([{ domain: "example.org", selector: "cal", key: RSA_PUBLIC }]);
// A receiver that holds another key for example.org: every signature of ours fails there.
const WRONG_KEYS = keysFor([
  { domain: "example.org", selector: "cal", key: generateDkimKey("rsa").publicKeyPem },
]);
const XML = { "Content-Type": "application/xml; charset=utf-8" };

const CAPS: Capabilities = {
  serialNumber: 1,
  versions: ["1.0"],
  components: [
    { name: "VEVENT", methods: ["REQUEST", "REPLY", "CANCEL"] },
    { name: "VTODO", methods: ["REQUEST", "REPLY", "CANCEL"] },
    { name: "VFREEBUSY", methods: ["REQUEST"] },
  ],
  calendarDataTypes: [DEFAULT_CALENDAR_DATA_TYPE],
  attachments: { inline: true, external: true },
  maxRecipients: 2,
};
const NO_TODO: Capabilities = { ...CAPS, components: CAPS.components.filter((c) => c.name !== "VTODO") };
// A receiver with every restriction the iTIP body decides (draft §9.2.1.5, §9.2.1.8 to §9.2.1.10).
const STRICT: Capabilities = {
  ...CAPS,
  attachments: { inline: false, external: false },
  maxDateTime: "20270101T000000Z",
  maxInstances: 3,
};

interface Post {
  path: string;
  fields: HeaderField[];
  body: string;
  verdict?: DkimVerdict;
}
type PostHandler = (post: Post, recipients: string[]) => Response | Promise<Response>;

let clock = NOW;
const posts: Post[] = [];
const gets: string[] = [];
const plainHits: string[] = [];
let ca: TestCa;
let https: ReturnType<typeof Bun.serve>;
let plain: ReturnType<typeof Bun.serve>;
let dns: RunningDnsmasq;
let resolver: DnsResolver;
let port: number;
let closedPort: number;

const header = (p: Post, name: string): string | undefined =>
  p.fields.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
const postsTo = (path: string): Post[] => posts.filter((p) => p.path === path);
const tag = (p: Post, name: string): string | undefined =>
  new RegExp(`(?:^|;)\\s*${name}=([^;]*)`).exec(header(p, "dkim-signature") ?? "")?.[1]?.trim();

const success = (_post: Post, recipients: readonly string[]): Response =>
  new Response(
    scheduleResponseXml(recipients.map((recipient) => ({ recipient, requestStatus: "2.0;Success" }))),
    {
      headers: { ...XML, "iSchedule-Capabilities": "1" },
    },
  );

/** Endpoint path -> [capabilities, POST handler]. */
const ENDPOINTS: Record<string, [Capabilities, PostHandler]> = {
  "/ok": [CAPS, success],
  "/fo": [CAPS, success],
  "/redir": [
    CAPS,
    () => {
      clock += 5000;
      return new Response(null, { status: 307, headers: { Location: "/redir-final" } });
    },
  ],
  "/redir-final": [CAPS, success],
  "/perm": [CAPS, () => new Response(null, { status: 308, headers: { Location: "/perm-new" } })],
  "/perm-new": [CAPS, success],
  "/downgrade": [
    CAPS,
    () => new Response(null, { status: 307, headers: { Location: `http://cal.peer.test:${plain.port}/x` } }),
  ],
  "/down": [CAPS, () => new Response("busy", { status: 503, headers: { "Retry-After": "120" } })],
  "/badsig": [CAPS, success],
  "/notodo": [NO_TODO, success],
  "/strict": [STRICT, success],
  "/slow": [
    CAPS,
    async (p, r) => {
      await Bun.sleep(2500);
      return success(p, r);
    },
  ],
  "/partial": [CAPS, (p, r) => success(p, r.slice(0, 1))],
  "/refuse": [
    CAPS,
    () => new Response(errorXml("invalid-scheduling-message", "No thanks."), { status: 400, headers: XML }),
  ],
  "/serial": [CAPS, (p, r) => withSerial(success(p, r), "2")],
  "/nosign": [CAPS, success],
};

function withSerial(res: Response, serial: string): Response {
  res.headers.set("iSchedule-Capabilities", serial);
  return res;
}

const DOMAINS = [
  "ok",
  "redir",
  "perm",
  "downgrade",
  "down",
  "badsig",
  "notodo",
  "strict",
  "slow",
  "partial",
  "refuse",
  "serial",
];

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["cal.peer.test", "dead.peer.test"]);
  https = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    async fetch(req) {
      const url = new URL(req.url);
      const endpoint = ENDPOINTS[url.pathname];
      if (!endpoint) return new Response("not found", { status: 404 });
      const [caps, handler] = endpoint;
      if (req.method === "GET") {
        gets.push(url.pathname);
        return new Response(capabilitiesXml(caps), { headers: { ...XML, "iSchedule-Capabilities": "1" } });
      }
      const body = new Uint8Array(await req.arrayBuffer());
      const fields: HeaderField[] = [...req.headers];
      const post: Post = { path: url.pathname, fields, body: new TextDecoder().decode(body) };
      if (header(post, "dkim-signature") !== undefined) {
        const keys = url.pathname === "/badsig" ? WRONG_KEYS : OUR_KEYS;
        post.verdict = await verifyRequest({ fields, body }, { keys, nowMs: clock });
      }
      posts.push(post);
      if (post.verdict && !post.verdict.ok) {
        return new Response(errorXml("verification-failed", post.verdict.message), {
          status: 403,
          headers: XML,
        });
      }
      const recipients = (header(post, "recipient") ?? "").split(",").map((r) => r.trim());
      return handler(post, recipients);
    },
  });
  port = https.port!;
  plain = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      plainHits.push(req.url);
      return new Response("plain", { status: 200 });
    },
  });
  closedPort = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const zone = (d: string) => `${d}.test`;
  dns = await startDnsmasq({
    zones: ["peer.test", "fo.test", "nosrv.test", ...DOMAINS.map(zone)],
    ttl: 300,
    srv: [
      ...DOMAINS.map((d) => ({ name: `_ischedules._tcp.${zone(d)}`, target: "cal.peer.test", port })),
      { name: "_ischedules._tcp.fo.test", target: "dead.peer.test", port: closedPort, priority: 0 },
      { name: "_ischedules._tcp.fo.test", target: "cal.peer.test", port, priority: 10 },
    ],
    txt: [...DOMAINS, "fo"].map((d) => ({ name: `_ischedules._tcp.${zone(d)}`, strings: [`path=/${d}`] })),
    hosts: [
      { name: "cal.peer.test", address: "127.0.0.1" },
      { name: "dead.peer.test", address: "127.0.0.1" },
    ],
  });
  resolver = createResolver({ servers: [dns.server], timeoutMs: 1000 });
});

afterAll(async () => {
  https?.stop(true);
  plain?.stop(true);
  await dns?.stop();
  ca?.remove();
});

const nosignRoute = (): PeerRoute => ({
  domain: "nosign.test",
  url: `https://cal.peer.test:${port}/nosign`,
  sign: false,
});

interface Setup {
  fetchOptions?: Partial<PeerFetchOptions>;
  capabilities?: CapabilitiesCache;
  signingKey?: (domain: string) => SigningKey | undefined;
}

function setup(s: Setup = {}) {
  const requests: PeerRequest[] = [];
  const fetch = (req: PeerRequest) => {
    requests.push(req);
    return peerFetch(req, {
      resolver,
      allowPrivate: true,
      ca: ca.caCertPem,
      connectTimeoutMs: 1000,
      totalTimeoutMs: 4000,
      ...s.fetchOptions,
    });
  };
  const routes = [nosignRoute()];
  const discovery = createDiscovery({ resolver, staticRoutes: routes, random: () => 0 });
  const capabilities = s.capabilities ?? createCapabilitiesCache({ fetch });
  const signed: string[] = [];
  const target = remoteIScheduleTarget({
    discovery,
    capabilities,
    fetch,
    signingKey:
      s.signingKey ??
      ((domain) => {
        signed.push(domain);
        return domain === "example.org" ? KEY : undefined;
      }),
    peerRoutes: routes,
    nowMs: () => clock,
    userAgent: "isched-test/1",
  });
  const postRequests = () => requests.filter((r) => r.method === "POST");
  return { target, postRequests, signed };
}

const crlf = (...lines: string[]): string => `${lines.join("\r\n")}\r\n`;

function itip(component: "VEVENT" | "VTODO" | "VFREEBUSY", attendees: readonly string[]): string {
  const dates =
    component === "VTODO" ? ["DUE:20260301T100000Z"] : ["DTSTART:20260301T090000Z", "DTEND:20260301T100000Z"];
  return crlf(
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//isched tests//EN",
    "METHOD:REQUEST",
    `BEGIN:${component}`,
    "DTSTAMP:20260115T110000Z",
    "UID:remote-target-1@example.org",
    "ORGANIZER:mailto:alice@example.org",
    ...dates,
    ...(component === "VFREEBUSY" ? [] : ["SUMMARY:Planning"]),
    ...attendees.map((a) => `ATTENDEE;CN=${a.slice(7, a.indexOf("@"))}:${a}`),
    `END:${component}`,
    "END:VCALENDAR",
  );
}

let uuidCounter = 0;
function message(component: "VEVENT" | "VTODO" | "VFREEBUSY", attendees: readonly string[]): TargetMessage {
  uuidCounter++;
  return {
    uuid: `00000000-0000-4000-8000-${String(uuidCounter).padStart(12, "0")}`,
    originator: "mailto:alice@example.org",
    method: "REQUEST",
    component,
    contentType: `text/calendar; charset=utf-8; method=REQUEST; component=${component}`,
    body: Buffer.from(itip(component, attendees)),
    uid: "remote-target-1@example.org",
    summary: "Planning",
    dkimDomain: null,
    dkimResult: "trusted",
    sendFacts: null,
  };
}

const people = (domain: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `mailto:user${i + 1}@${domain}`);
const signal = () => AbortSignal.timeout(15_000);
const recipientsOf = (p: Post): string[] => (header(p, "recipient") ?? "").split(",");

describe("sending", () => {
  test("delivers with a signature the receiver verifies, h= covering the five iSchedule headers", async () => {
    const to = people("ok.test", 2);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes.map((o) => [o.recipient, o.requestStatus])).toEqual(
      to.map((r) => [r, "2.0;Success"]),
    );
    const [post] = postsTo("/ok").slice(-1);
    if (!post?.verdict?.ok) throw new Error(`not verified: ${JSON.stringify(post?.verdict)}`);
    expect(post.verdict.domain).toBe("example.org");
    expect(post.verdict.signedHeaders.map((h) => h.toLowerCase())).toEqual(
      expect.arrayContaining([
        "originator",
        "recipient",
        "content-type",
        "ischedule-version",
        "ischedule-message-id",
      ]),
    );
    expect(tag(post, "q")).toBe("dns/txt:http/well-known");
    expect(Number(tag(post, "x")) - Number(tag(post, "t"))).toBe(3600);
    expect(header(post, "content-type")).toBe(
      "text/calendar; charset=utf-8; method=REQUEST; component=VEVENT",
    );
    expect(header(post, "ischedule-version")).toBe("1.0");
    expect(header(post, "originator")).toBe("mailto:alice@example.org");
    expect(header(post, "cache-control")).toBe("no-cache, no-transform");
    expect(header(post, "user-agent")).toBe("isched-test/1");
    expect(attempt.outcomes[0]!.via).toMatchObject({
      target: `https://cal.peer.test:${port}/ok`,
      httpStatus: 200,
    });
    expect(attempt.outcomes[0]!.via?.response).toContain("schedule-response");
    expect(attempt.error).toBeUndefined();
  });

  test("sends the group's recipients in one Recipient header, joined by bare commas", async () => {
    const to = ["mailto:Ann@ok.test", "mailto:bob@ok.test"];
    const { target, postRequests } = setup();
    await target.deliver(message("VEVENT", to), to, signal());
    const headers = postRequests()[0]!.headers as [string, string][];
    expect(headers.filter(([n]) => n.toLowerCase() === "recipient")).toEqual([["Recipient", to.join(",")]]);
    expect(header(postsTo("/ok").at(-1)!, "recipient")).toBe("mailto:Ann@ok.test,mailto:bob@ok.test");
  });

  test("a retry of the same group carries the same iSchedule-Message-ID; another group gets another", async () => {
    const to = people("ok.test", 2);
    const m = message("VEVENT", to);
    const { target } = setup();
    await target.deliver(m, to, signal());
    await target.deliver(m, [...to].reverse(), signal());
    await setup().target.deliver(m, to.slice(0, 1), signal());
    const ids = postsTo("/ok")
      .slice(-3)
      .map((p) => header(p, "ischedule-message-id"));
    expect(ids[0]).toStartWith(`${m.uuid}-`);
    expect(ids[1]).toBe(ids[0]!);
    expect(ids[2]).not.toBe(ids[0]!);
  });

  test("splits five recipients into POSTs of at most max-recipients (2, 2, 1)", async () => {
    const to = people("ok.test", 5);
    const before = postsTo("/ok").length;
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    const sent = postsTo("/ok").slice(before);
    expect(sent.map(recipientsOf)).toEqual([to.slice(0, 2), to.slice(2, 4), to.slice(4)]);
    expect(new Set(sent.map((p) => header(p, "ischedule-message-id"))).size).toBe(3);
    expect(attempt.outcomes.every((o) => o.requestStatus === "2.0;Success")).toBe(true);
  });

  test("a VFREEBUSY body lists only the ATTENDEEs of its own group", async () => {
    const to = people("ok.test", 3);
    const before = postsTo("/ok").length;
    await setup().target.deliver(message("VFREEBUSY", to), to, signal());
    const sent = postsTo("/ok").slice(before);
    expect(sent).toHaveLength(2);
    for (const p of sent) {
      expect(p.verdict?.ok).toBe(true);
      expect(parseItip(p.body).attendeeAddresses).toEqual(recipientsOf(p));
    }
  });

  test("a peer route with sign=no sends no DKIM-Signature and needs no key", async () => {
    const to = ["mailto:carol@nosign.test"];
    const { target, signed } = setup();
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("2.0;Success");
    expect(header(postsTo("/nosign").at(-1)!, "dkim-signature")).toBeUndefined();
    expect(signed).toEqual([]);
  });
});

describe("redirects", () => {
  test("follows a 307 keeping POST and the body, and signs the new hop afresh", async () => {
    const to = people("redir.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]).toMatchObject({
      requestStatus: "2.0;Success",
      via: { target: `https://cal.peer.test:${port}/redir-final`, httpStatus: 200 },
    });
    const first = postsTo("/redir").at(-1)!;
    const second = postsTo("/redir-final").at(-1)!;
    expect(second.body).toBe(first.body);
    expect(second.verdict?.ok).toBe(true);
    // The 307 handler moved the clock 5 s: the second hop has its own t= and signature.
    expect(Number(tag(second, "t")) - Number(tag(first, "t"))).toBe(5);
    expect(tag(second, "b")).not.toBe(tag(first, "b"));
    expect(header(second, "ischedule-message-id")).toBe(header(first, "ischedule-message-id")!);
  });

  test("remembers a 308 so that later groups POST to the new URL directly", async () => {
    const to = people("perm.test", 3);
    const { target, postRequests } = setup();
    await target.deliver(message("VEVENT", to), to, signal());
    await target.deliver(message("VEVENT", to), to.slice(0, 1), signal());
    expect(postRequests().map((r) => new URL(r.url).pathname)).toEqual([
      "/perm",
      "/perm-new",
      "/perm-new",
      "/perm-new",
    ]);
  });

  test("refuses a redirect from https to plain http and sends the recipients to iMIP", async () => {
    const to = people("downgrade.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]).toMatchObject({
      requestStatus: "5.2;Invalid calendar service",
      reroute: "imip",
    });
    expect(attempt.outcomes[0]!.description).toContain("it leaves https for plain http");
    expect(plainHits).toEqual([]);
  });
});

describe("failures", () => {
  test("fails over to the next SRV target when the first refuses connections", async () => {
    const to = people("fo.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]).toMatchObject({
      requestStatus: "2.0;Success",
      via: { target: `https://cal.peer.test:${port}/fo` },
    });
  });

  test("a POST that cannot connect to the first target goes to the next one", async () => {
    const to = people("fo.test", 1);
    const { target, postRequests } = setup({ capabilities: anyTarget(CAPS) });
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    expect(postRequests().map((r) => new URL(r.url).host)).toEqual([
      `dead.peer.test:${closedPort}`,
      `cal.peer.test:${port}`,
    ]);
    expect(attempt.outcomes[0]!.requestStatus).toBe("2.0;Success");
  });

  test("503 with Retry-After is 5.1 with retryAfterMs", async () => {
    const to = people("down.test", 2);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes.map((o) => o.requestStatus)).toEqual([
      "5.1;Service unavailable",
      "5.1;Service unavailable",
    ]);
    expect(attempt.retryAfterMs).toBe(120_000);
    expect(attempt.httpStatus).toBe(503);
    expect(attempt.error).toContain("answered HTTP 503");
  });

  test("403 verification-failed is permanent, not retried", async () => {
    const to = people("badsig.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    const outcome = attempt.outcomes[0]!;
    expect(postsTo("/badsig").at(-1)!.verdict?.ok).toBe(false);
    expect(outcome.requestStatus).toBe("5.2;Invalid calendar service");
    expect(classifyStatus(outcome.requestStatus)).toBe("permanent");
    expect(outcome.description).toContain(
      "could not verify isched's DKIM signature (HTTP 403, verification-failed: ",
    );
  });

  test("another 4xx is permanent with the error element and description", async () => {
    const to = people("refuse.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.2;Invalid calendar service");
    expect(attempt.outcomes[0]!.description).toContain("(HTTP 400, invalid-scheduling-message: No thanks.)");
  });

  test("a recipient the answer leaves out gets 5.1", async () => {
    const to = people("partial.test", 2);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes.map((o) => o.requestStatus)).toEqual(["2.0;Success", "5.1;Service unavailable"]);
    expect(attempt.outcomes[1]!.description).toContain(`did not answer for ${to[1]}`);
  });

  test("a domain without an SRV record (NXDOMAIN) sends every recipient to iMIP", async () => {
    const to = people("nosrv.test", 2);
    const { target, postRequests } = setup();
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    for (const o of attempt.outcomes) {
      expect(o).toMatchObject({ requestStatus: "5.2;Invalid calendar service", reroute: "imip" });
      expect(o.description).toContain("no _ischedules._tcp SRV record for nosrv.test");
    }
    expect(postRequests()).toEqual([]);
  });

  test("a DNS failure is temporary (5.1), not a reason to use iMIP", async () => {
    const to = ["mailto:x@elsewhere.example"];
    const attempt = await setup().target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(attempt.outcomes[0]!.reroute).toBeUndefined();
  });

  test("a receiver that does not take VTODO gets none: the recipients go to iMIP with the reason", async () => {
    const to = people("notodo.test", 1);
    const attempt = await setup().target.deliver(message("VTODO", to), to, signal());
    expect(attempt.outcomes[0]).toMatchObject({
      requestStatus: "5.2;Invalid calendar service",
      reroute: "imip",
      description: "the peer does not accept VTODO messages (accepts VEVENT, VFREEBUSY)",
    });
    expect(postsTo("/notodo")).toEqual([]);
  });

  test("a receiver that does not answer in time is 5.1", async () => {
    const to = people("slow.test", 1);
    const { target } = setup({ fetchOptions: { totalTimeoutMs: 700 } });
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.1;Service unavailable");
    expect(attempt.outcomes[0]!.description).toContain("within 700ms");
  });

  test("the attempt's own deadline ends a hanging POST with 5.1", async () => {
    const to = people("slow.test", 1);
    const attempt = await setup().target.deliver(message("VEVENT", to), to, AbortSignal.timeout(700));
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.1;Service unavailable");
  });

  test("an address isched may not connect to is a permanent 5.2", async () => {
    const to = people("ok.test", 1);
    const { target } = setup({ capabilities: anyTarget(CAPS), fetchOptions: { allowPrivate: false } });
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.2;Invalid calendar service");
    expect(attempt.outcomes[0]!.reroute).toBeUndefined();
    expect(attempt.outcomes[0]!.description).toContain("127.0.0.1");
  });

  test("without a key for the Originator's domain nothing is sent unsigned", async () => {
    const to = people("ok.test", 1);
    const { target, postRequests } = setup({ signingKey: () => undefined });
    const attempt = await target.deliver(message("VEVENT", to), to, signal());
    expect(attempt.outcomes[0]!.requestStatus).toBe("5.2;Invalid calendar service");
    expect(attempt.outcomes[0]!.description).toBe("isched has no DKIM key for example.org to sign with");
    expect(postRequests()).toEqual([]);
  });
});

describe("the receiver's restrictions on the iTIP body (draft §5)", () => {
  /** An event for one recipient, with `extra` lines in its VEVENT and the facts intake keeps of it. */
  const eventWith = (to: readonly string[], kept: "kept" | "parsed", ...extra: string[]): TargetMessage => {
    const base = message("VEVENT", to);
    const text = new TextDecoder()
      .decode(base.body)
      .replace("END:VEVENT", [...extra, "END:VEVENT"].join("\r\n"));
    const withDates = text.replace(/DTSTART:\S+\r\nDTEND:\S+/, (d) =>
      extra.some((l) => l.startsWith("DTSTART")) ? "" : d,
    );
    const body = Buffer.from(withDates.replace(/\r\n\r\n/g, "\r\n"));
    const sendFacts = kept === "kept" ? storableSendFacts(sendFactsOf(parseItip(withDates))) : null;
    return { ...base, body, sendFacts };
  };
  const cases: [string, string[], string | undefined][] = [
    [
      "an external attachment",
      ["ATTACH:https://files.example.org/a.pdf"],
      "the peer does not accept external (URI) attachments",
    ],
    [
      "a meeting after max-date-time",
      ["DTSTART:20280301T090000Z", "DTEND:20280301T100000Z"],
      "the first instance of the message starts at 20280301T090000Z, after the maximum 20270101T000000Z",
    ],
    [
      "five daily instances (max-instances 3)",
      ["RRULE:FREQ=DAILY;COUNT=5"],
      "the message has 4 instances; the peer accepts at most 3",
    ],
    ["a daily meeting with no end (not counted)", ["RRULE:FREQ=DAILY"], undefined],
  ];
  for (const [what, extra, refusal] of cases) {
    test(`${what}: ${refusal ? "refused" : "sent"} alike with the facts kept at intake and without`, async () => {
      for (const kept of ["parsed", "kept"] as const) {
        const to = people("strict.test", 1);
        const before = postsTo("/strict").length;
        const attempt = await setup().target.deliver(eventWith(to, kept, ...extra), to, signal());
        if (refusal === undefined) {
          expect(attempt.outcomes[0]!.requestStatus).toBe("2.0;Success");
          expect(postsTo("/strict").length).toBe(before + 1);
        } else {
          expect(attempt.outcomes[0]).toMatchObject({
            requestStatus: "5.2;Invalid calendar service",
            reroute: "imip",
            description: refusal,
          });
          expect(postsTo("/strict").length).toBe(before);
        }
      }
    });
  }

  test("the facts kept at intake answer the checks: the stored body is not parsed again to send it", async () => {
    const to = people("strict.test", 1);
    // Kept facts that say what the body does not (an external attachment): the check reads the facts.
    const plain = eventWith(to, "parsed");
    const facts = {
      ...sendFactsOf(parseItip(new TextDecoder().decode(plain.body))),
      externalAttachment: true,
    };
    const before = postsTo("/strict").length;
    const attempt = await setup().target.deliver(
      { ...plain, sendFacts: storableSendFacts(facts) },
      to,
      signal(),
    );
    expect(attempt.outcomes[0]).toMatchObject({
      requestStatus: "5.2;Invalid calendar service",
      description: "the peer does not accept external (URI) attachments",
    });
    expect(postsTo("/strict").length).toBe(before);
  });
});

describe("capabilities", () => {
  test("a new iSchedule-Capabilities serial on a POST answer makes the next attempt refetch them", async () => {
    const to = people("serial.test", 1);
    const { target } = setup();
    await target.deliver(message("VEVENT", to), to, signal());
    await target.deliver(message("VEVENT", to), to, signal());
    expect(gets.filter((g) => g === "/serial")).toHaveLength(2);
  });
});

/** A capabilities cache that answers `caps` for any URL, so a POST is the first contact. */
function anyTarget(caps: Capabilities): CapabilitiesCache {
  return {
    async get(url) {
      return { ok: true, capabilities: caps, url, fetchedAtMs: NOW, fromCache: true, warnings: [] };
    },
    noteSerial() {},
  };
}
