/**
 * Which signing domains may speak for an Originator, in the compiled binary with keys in a real DNS
 * server (dnsmasq): a calendar server that signs with its host name (CalendarServer's default:
 * `d=cal.example.net` for users `@example.net`) and a signer the peer's policy names are accepted,
 * and the console says which rule accepted them; another organisation, a sibling under a public
 * suffix, a public suffix itself and anything under a hosted domain are refused. `--alignment strict`
 * keeps the old rule (the Originator's domain or a parent).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { messageDetailByUid } from "../support/console-api.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, statuses } from "../support/isched.ts";
import { type RawResponse, rawExchange } from "../support/raw-http.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";

/** One key, published under every signing domain of the tests. */
const KEY = generateDkimKey("rsa");
const SIGNERS = [
  "cal.example.net",
  "cal.hosting.test",
  "b.co.uk",
  "co.uk",
  "cal.org.test",
  "example.org",
] as const;

let dir: string;
let dns: RunningDnsmasq;
let relaxed: ServeProcess;
let strict: ServeProcess;

async function serve(name: string, extra: string[]): Promise<ServeProcess> {
  return running(
    await serveProcess([
      ...["--domain", "org.test", "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0"],
      ...["--data", join(dir, name), "--dns-server", `${dns.server.host}:${dns.server.port}`],
      ...["--log-level", "warn", ...extra],
    ]),
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-alignment-"));
  dns = await startDnsmasq({
    zones: ["example.net", "hosting.test", "co.uk", "org.test", "example.org"],
    txt: SIGNERS.map((d) => ({ name: `s1._domainkey.${d}`, strings: splitTxtValue(KEY.record) })),
  });
  [relaxed, strict] = await Promise.all([
    serve("relaxed", ["--trust", "customer.test=dkim,signers=cal.hosting.test,mail.hosting.test"]),
    serve("strict", ["--alignment", "strict"]),
  ]);
}, 60_000);

afterAll(async () => {
  await relaxed?.stop();
  await strict?.stop();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function post(to: ServeProcess, o: { d: string; from: string; uid: string }): Promise<RawResponse> {
  return rawExchange({
    port: to.port,
    request: signedPostBytes({
      key: loadSigningKey(KEY.privateKeyPem, o.d, "s1"),
      originator: o.from,
      recipients: ["mailto:ann@org.test"],
      body: invitation({ uid: o.uid, organizer: o.from, attendees: ["mailto:ann@org.test"] }),
    }),
  });
}

const detailOf = (server: ServeProcess, name: string, uid: string) =>
  messageDetailByUid(server, join(dir, name), uid);

describe("relaxed alignment (the default)", () => {
  test("a calendar server signing with its host name (d=cal.example.net for @example.net) is accepted", async () => {
    const r = await post(relaxed, { d: "cal.example.net", from: "mailto:cyrus@example.net", uid: "host-1" });
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ "mailto:ann@org.test": "2.0;Success" });
    const m = await detailOf(relaxed, "relaxed", "host-1");
    expect(m.dkim.result).toBe("pass");
    expect(m.dkim.domain).toBe("cal.example.net");
    expect(m.dkim.signerRule).toBe(
      "d=cal.example.net and the Originator's domain example.net are both in the organisational domain example.net (relaxed alignment, RFC 7489 §3.1).",
    );
  });

  test("a signer named by --trust customer.test=dkim,signers=... is accepted for customer.test and its subdomains", async () => {
    for (const [from, uid] of [
      ["mailto:boss@customer.test", "listed-1"],
      ["mailto:boss@eu.customer.test", "listed-2"],
    ] as const) {
      const r = await post(relaxed, { d: "cal.hosting.test", from, uid });
      expect(r.status).toBe(200);
      expect(statuses(r.text)).toEqual({ "mailto:ann@org.test": "2.0;Success" });
      expect((await detailOf(relaxed, "relaxed", uid)).dkim.signerRule).toBe(
        "d=cal.hosting.test is an extra signer named by --trust customer.test.",
      );
    }
  });

  const refused: [string, { d: string; from: string; uid: string }, string][] = [
    [
      "another organisation (d=cal.example.net for @example.org)",
      { d: "cal.example.net", from: "mailto:eve@example.org", uid: "other-1" },
      "The request is signed by cal.example.net, which is neither in the Originator's organisation nor a signer this server accepts for it: the Originator's domain is example.org.",
    ],
    [
      "a listed signer for a domain that did not list it (d=cal.hosting.test for @example.org)",
      { d: "cal.hosting.test", from: "mailto:eve@example.org", uid: "other-2" },
      "The request is signed by cal.hosting.test, which is neither in the Originator's organisation nor a signer this server accepts for it: the Originator's domain is example.org.",
    ],
    [
      "a sibling under a public suffix (d=b.co.uk for @a.co.uk)",
      { d: "b.co.uk", from: "mailto:eve@a.co.uk", uid: "suffix-1" },
      "The request is signed by b.co.uk, which is neither in the Originator's organisation nor a signer this server accepts for it: the Originator's domain is a.co.uk.",
    ],
    [
      "a public suffix itself (d=co.uk for @a.co.uk)",
      { d: "co.uk", from: "mailto:eve@a.co.uk", uid: "suffix-2" },
      "The request is signed by co.uk, a public suffix, which cannot speak for the Originator's domain a.co.uk.",
    ],
    [
      "a subdomain of a hosted domain (d=cal.org.test for @sub.org.test, isched hosts org.test)",
      { d: "cal.org.test", from: "mailto:ceo@sub.org.test", uid: "hosted-1" },
      "The request is signed by cal.org.test, which is neither in the Originator's organisation nor a signer this server accepts for it: the Originator's domain is sub.org.test.",
    ],
  ];
  for (const [name, request, reason] of refused) {
    test(`refused: ${name}`, async () => {
      const r = await post(relaxed, request);
      expect({ status: r.status, element: errorElement(r.text) }).toEqual({
        status: 403,
        element: "originator-denied",
      });
      expect(r.text).toContain(reason);
    });
  }
});

describe("--alignment strict", () => {
  test("the host name is refused: only the Originator's domain or a parent may sign", async () => {
    const r = await post(strict, { d: "cal.example.net", from: "mailto:cyrus@example.net", uid: "strict-1" });
    expect({ status: r.status, element: errorElement(r.text) }).toEqual({
      status: 403,
      element: "originator-denied",
    });
    expect(r.text).toContain("(this server requires strict alignment)");
  });
});
