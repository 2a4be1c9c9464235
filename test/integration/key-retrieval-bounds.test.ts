/**
 * Forged signatures cannot hold the receiver: a signature with q=http/well-known whose domain lists
 * many key servers in `_domainkey_lookup._tcp` (real dnsmasq) that never answer (TCP servers on
 * loopback that accept and stay silent) or hang up at once. At most 3 targets are tried, the whole
 * verification has one deadline, and key retrievals waiting on the network are limited per signing
 * domain and overall: a request over the limit is answered at once with 503 and an error element.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as net from "node:net";
import type { HeaderField } from "../../src/dkim/canonicalize.ts";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, signRequest } from "../../src/dkim/sign.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, startIsched, type TestServer } from "../support/isched.ts";
import { type RawResponse, rawExchange, requestBytes } from "../support/raw-http.ts";

const FORGER = generateDkimKey("rsa");
const PEER = generateDkimKey("rsa");
const TARGETS = 8;

interface TcpServer {
  readonly port: number;
  readonly connections: number;
  close(): Promise<void>;
}

/** A TCP server that accepts connections and never says a word (or, with hangUp, closes them at once). */
async function tcpServer(o: { hangUp: boolean }): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    if (o.hangUp) return socket.destroy();
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

let dns: RunningDnsmasq;
let isched: TestServer;
let silent: TcpServer;
let hangUps: TcpServer[];

beforeAll(async () => {
  silent = await tcpServer({ hangUp: false });
  hangUps = await Promise.all(Array.from({ length: TARGETS }, () => tcpServer({ hangUp: true })));
  const blackHoles = (domain: string) =>
    Array.from({ length: TARGETS }, (_, i) => ({
      name: `_domainkey_lookup._tcp.${domain}`,
      target: `k${i}.${domain}`,
      port: silent.port,
      priority: i,
    }));
  dns = await startDnsmasq({
    zones: ["bh.test", "bh2.test", "hangup.test", "peer.test"],
    srv: [
      ...blackHoles("bh.test"),
      ...blackHoles("bh2.test"),
      ...hangUps.map((s, i) => ({
        name: "_domainkey_lookup._tcp.hangup.test",
        target: `k${i}.hangup.test`,
        port: s.port,
        priority: i,
      })),
    ],
    hosts: ["bh.test", "bh2.test", "hangup.test"].flatMap((d) =>
      Array.from({ length: TARGETS }, (_, i) => ({ name: `k${i}.${d}`, address: "127.0.0.1" })),
    ),
    txt: [{ name: "s1._domainkey.peer.test", strings: splitTxtValue(PEER.record) }],
    // The peer's key stays in isched's cache for the flood test.
    ttl: 300,
  });
  isched = await startIsched({
    domains: ["org.test"],
    dnsServer: dns.server,
    verifyDeadlineMs: 2000,
    maxKeyFetches: 4,
    maxKeyFetchesPerDomain: 3,
  });
});

afterAll(async () => {
  await isched?.close();
  await dns?.stop();
  await silent?.close();
  await Promise.all((hangUps ?? []).map((s) => s.close()));
});

/** A POST signed by `domain` (with the forger's key, which no key server will ever give out). */
function forged(
  domain: string,
  selector: string,
  body = "",
  pemKey = FORGER.privateKeyPem,
): Promise<RawResponse> {
  const calendar =
    body ||
    invitation({
      uid: `forged-${selector}`,
      organizer: `mailto:x@${domain}`,
      attendees: ["mailto:ann@org.test"],
    });
  const fields: HeaderField[] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", crypto.randomUUID()],
    ["Originator", `mailto:x@${domain}`],
    ["Recipient", "mailto:ann@org.test"],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
  ];
  const signature = signRequest({
    key: loadSigningKey(pemKey, domain, selector),
    fields,
    body: Buffer.from(calendar),
    nowMs: Date.now(),
    queryMethods: domain === "peer.test" ? ["dns/txt"] : ["http/well-known"],
  });
  return rawExchange({
    port: Number(new URL(isched.url).port),
    request: requestBytes({
      path: "/.well-known/ischedule",
      fields: [["Host", "isched.org.test"], ["DKIM-Signature", signature], ...fields],
      body: calendar,
    }),
    timeoutMs: 60_000,
  });
}

function expect503(r: RawResponse): void {
  expect(r.status).toBe(503);
  expect(r.text).toContain("<verification-failed");
  expect(r.text).toContain("response-description");
  expect(r.headers.get("retry-after")).toMatch(/^\d+$/);
}

describe("key retrieval is bounded", () => {
  test("at most 3 of 8 SRV key servers are tried", async () => {
    const r = await forged("hangup.test", "s1");
    expect503(r);
    expect(hangUps.filter((s) => s.connections > 0).length).toBeLessThanOrEqual(3);
    expect(hangUps.reduce((n, s) => n + s.connections, 0)).toBeGreaterThan(0);
  }, 60_000);

  test("8 silent key servers hold a request no longer than the verification deadline (2 s here)", async () => {
    const r = await forged("bh.test", "deadline");
    expect503(r);
    expect(r.elapsedMs).toBeLessThan(3500);
    expect(r.elapsedMs).toBeGreaterThan(1500);
  }, 60_000);

  test("requests over the key-fetch limits (3 per domain, 4 overall) are answered at once with 503", async () => {
    // The peer's key is fetched (and cached) before the flood.
    expect((await forged("peer.test", "s1", "", PEER.privateKeyPem)).status).toBe(200);
    const started = performance.now();
    const flood = [
      ...Array.from({ length: 5 }, (_, i) => forged("bh.test", `flood${i}`)),
      ...Array.from({ length: 5 }, (_, i) => forged("bh2.test", `flood${i}`)),
    ];
    await Bun.sleep(300);
    // A known peer is not held up by the flood.
    const peer = await forged("peer.test", "s1", "", PEER.privateKeyPem);
    expect(peer.status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1500);
    const answers = await Promise.all(flood);
    for (const a of answers) expect503(a);
    const quick = answers.filter((a) => a.elapsedMs < 1000);
    const held = answers.filter((a) => a.elapsedMs >= 1000);
    expect(held.length).toBe(4);
    expect(quick.length).toBe(6);
    for (const a of quick) expect(a.text).toContain("too many");
    // Those refused before their body was read are in the refusal log all the same, with its size.
    await Bun.sleep(400);
    const logged = isched.db
      .query<{ body_size: number }, []>(
        "SELECT body_size FROM messages WHERE refusal LIKE '%too many key retrievals%' AND body_size IS NOT NULL",
      )
      .all();
    expect(logged.length).toBe(6);
  }, 60_000);
});
