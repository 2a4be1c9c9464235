/**
 * Dangerous trust settings, over real sockets: unsigned requests trusted from every address are
 * refused in the console (the command line refuses them too: serve-startup.test.ts), trusting
 * loopback without TLS is shown on the console's Overview, and with --trusted-proxy the endpoint and
 * the console take the client's address from the proxy's Forwarded / X-Forwarded-For header, and
 * only from the proxy. Requests come from 127.0.0.1 (the trusted proxy) or 127.0.0.2 (a stranger).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseCidrList } from "../../src/net/cidr.ts";
import { startConsoleServer } from "../console/_console.ts";
import { invitation, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../support/raw-http.ts";

const BERNARD = "mailto:bernard@peer.test";
const ANN = "mailto:ann@org.test";
const LOOPBACK_TRUST = {
  domain: "peer.test",
  policy: { mode: "unsigned" as const, from: parseCidrList("127.0.0.1") },
};

let proxied: TestServer;
let direct: TestServer;

beforeAll(async () => {
  // Their keys are in no DNS and they send nothing: --sign-unpublished keeps the Overview's problems
  // to the ones this test is about.
  proxied = await startIsched({
    domains: ["org.test"],
    trust: [LOOPBACK_TRUST],
    trustedProxies: parseCidrList("127.0.0.1"),
    signUnpublished: true,
  });
  direct = await startIsched({ domains: ["org.test"], trust: [LOOPBACK_TRUST], signUnpublished: true });
});

afterAll(async () => {
  await proxied?.close();
  await direct?.close();
});

/** An unsigned invitation from peer.test, with extra header fields, from `localAddress`. */
function unsignedPost(
  server: TestServer,
  extra: RawField[],
  localAddress = "127.0.0.1",
): Promise<RawResponse> {
  const uid = crypto.randomUUID();
  return rawExchange({
    port: Number(new URL(server.url).port),
    localAddress,
    request: requestBytes({
      path: "/.well-known/ischedule",
      fields: [
        ["Host", "isched.org.test"],
        ["iSchedule-Version", "1.0"],
        ["iSchedule-Message-ID", uid],
        ["Originator", BERNARD],
        ["Recipient", ANN],
        ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
        ...extra,
      ],
      body: invitation({ uid, organizer: BERNARD, attendees: [ANN] }),
    }),
  });
}

const accepted = (r: RawResponse) => r.status === 200 && statuses(r.text)[ANN]?.startsWith("2.0");
const refusedUnsigned = (r: RawResponse) => r.status === 403 && r.text.includes("<verification-failed/>");

describe("--trusted-proxy 127.0.0.1 with peer.test trusted unsigned from 127.0.0.1", () => {
  test("a request from the proxy host itself, without forwarding headers, is its own (a local server)", async () => {
    expect(accepted(await unsignedPost(proxied, []))).toBe(true);
  });

  test("a local client through the proxy (X-Forwarded-For: 127.0.0.1) is trusted", async () => {
    expect(accepted(await unsignedPost(proxied, [["X-Forwarded-For", "127.0.0.1"]]))).toBe(true);
  });

  const strangers: [string, RawField[]][] = [
    ["X-Forwarded-For: 203.0.113.9", [["X-Forwarded-For", "203.0.113.9"]]],
    ["Forwarded: for=203.0.113.9;proto=https", [["Forwarded", "for=203.0.113.9;proto=https"]]],
    ['Forwarded: for="[2001:db8::9]:4711"', [["Forwarded", 'for="[2001:db8::9]:4711"']]],
    [
      "a client's own X-Forwarded-For: 127.0.0.1 with the proxy's entry after it",
      [["X-Forwarded-For", "127.0.0.1, 203.0.113.9"]],
    ],
    [
      "Forwarded and X-Forwarded-For naming different clients",
      [
        ["Forwarded", "for=127.0.0.1"],
        ["X-Forwarded-For", "203.0.113.9"],
      ],
    ],
    ["Forwarded: for=unknown", [["Forwarded", "for=unknown"]]],
  ];
  for (const [name, fields] of strangers) {
    test(`a client the proxy forwards for is not trusted: ${name}`, async () => {
      expect(refusedUnsigned(await unsignedPost(proxied, fields))).toBe(true);
    });
  }

  test("a stranger's own forwarding header is ignored: X-Forwarded-For: 127.0.0.1 from 127.0.0.2", async () => {
    expect(
      refusedUnsigned(await unsignedPost(proxied, [["X-Forwarded-For", "127.0.0.1"]], "127.0.0.2")),
    ).toBe(true);
  });

  test("the console counts failed sign-ins per forwarded client, not per proxy", async () => {
    // A frozen clock: the address's wait after a failure (0.5 s) must not run out between guesses on a busy machine.
    const frozen = Date.now();
    const c = await startConsoleServer(
      { trustedProxies: parseCidrList("127.0.0.1") },
      { nowMs: () => frozen },
    );
    try {
      const wrong = (client: string) =>
        c.raw("/api/v1/session", {
          method: "POST",
          headers: { "Content-Type": "application/json", Origin: c.base, "X-Forwarded-For": client },
          body: JSON.stringify({ password: "a wrong guess" }),
        });
      expect((await wrong("203.0.113.1")).status).toBe(401);
      expect((await wrong("203.0.113.2")).status).toBe(401);
      expect((await wrong("203.0.113.1")).status).toBe(429);
    } finally {
      await c.close();
    }
  });
});

describe("without --trusted-proxy", () => {
  test("forwarding headers are ignored: the connection's address decides", async () => {
    expect(accepted(await unsignedPost(direct, [["X-Forwarded-For", "203.0.113.9"]]))).toBe(true);
    expect(refusedUnsigned(await unsignedPost(direct, [["X-Forwarded-For", "127.0.0.1"]], "127.0.0.2"))).toBe(
      true,
    );
  });

  test("trusting loopback without TLS is a problem on the console's Overview", async () => {
    const overview = await fetch(`${direct.consoleUrl}/api/v1/overview`, {
      headers: { Authorization: `Bearer ${direct.apiToken}` },
    });
    const { problems } = (await overview.json()) as { problems: { id: string; text: string }[] };
    expect(problems.map((p) => p.id)).toEqual(["loopback-trust"]);
    expect(problems[0]!.text).toStartWith(
      "--trust peer.test=unsigned:127.0.0.1 trusts unsigned requests from loopback, and the endpoint has no TLS",
    );
    expect(problems[0]!.text).toContain("--trusted-proxy");
  });
});

describe("console trust policies", () => {
  test("unsigned from every address is refused; unsigned from loopback is shown as a problem until removed", async () => {
    const c = await startConsoleServer({ signUnpublished: true });
    try {
      const put = (allowFrom: string) =>
        c.token("/api/v1/peers/peer.test/policy", { method: "PUT", json: { trust: "unsigned", allowFrom } });
      const problems = async () =>
        ((await (await c.token("/api/v1/overview")).json()) as { problems: { id: string; text: string }[] })
          .problems;
      for (const everyone of ["0.0.0.0/0", "0.0.0.0/1, 128.0.0.0/1", "::/0"]) {
        const res = await put(everyone);
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toMatch(
          /^allowFrom: unsigned requests from every IPv[46] address would let anyone speak for peer\.test without a signature/,
        );
      }
      expect(await problems()).toEqual([]);
      expect((await put("127.0.0.1")).status).toBe(200);
      const shown = await problems();
      expect(shown.map((p) => p.id)).toEqual(["loopback-trust"]);
      expect(shown[0]!.text).toStartWith(
        "the console's policy for peer.test (unsigned from 127.0.0.1) trusts",
      );
      expect((await c.token("/api/v1/peers/peer.test/policy", { method: "DELETE" })).status).toBe(200);
      expect(await problems()).toEqual([]);
    } finally {
      await c.close();
    }
  });
});
