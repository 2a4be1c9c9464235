/**
 * Trust boundaries of the receiver, over real sockets with keys in a real DNS server (dnsmasq): a
 * policy cannot be dodged through a subdomain of the domain it names or through the signing domain,
 * and no remote signer can speak for a hosted domain or any subdomain of one.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey } from "../../src/dkim/sign.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { type RawResponse, rawExchange } from "../support/raw-http.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";

const KEYS = {
  peer: generateDkimKey("rsa"),
  evil: generateDkimKey("rsa"),
  corp: generateDkimKey("rsa"),
  /** A key published for org.test, which isched hosts: a remote signer that claims to be org.test. */
  org: generateDkimKey("rsa"),
};
const signer = (domain: string, pem: string): SigningKey => loadSigningKey(pem, domain, "s1");

let dns: RunningDnsmasq;
let isched: TestServer;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ["peer.test", "evil.test", "corp.test", "org.test"],
    txt: [
      { name: "s1._domainkey.peer.test", strings: splitTxtValue(KEYS.peer.record) },
      { name: "s1._domainkey.evil.test", strings: splitTxtValue(KEYS.evil.record) },
      { name: "s1._domainkey.corp.test", strings: splitTxtValue(KEYS.corp.record) },
      { name: "s1._domainkey.org.test", strings: splitTxtValue(KEYS.org.record) },
      { name: "s1._domainkey.sub.org.test", strings: splitTxtValue(KEYS.org.record) },
    ],
  });
  isched = await startIsched({
    domains: ["org.test"],
    trust: [
      { domain: "evil.test", policy: { mode: "deny" } },
      { domain: "corp.test", policy: { mode: "deny" } },
      { domain: "sales.corp.test", policy: { mode: "dkim" } },
    ],
    dnsServer: dns.server,
  });
});

afterAll(async () => {
  await isched?.close();
  await dns?.stop();
});

const send = (request: Uint8Array): Promise<RawResponse> =>
  rawExchange({ port: Number(new URL(isched.url).port), request });

const invite = (uid: string, organizer: string, attendee = "mailto:ann@org.test") =>
  invitation({ uid, organizer, attendees: [attendee] });

const storedCount = (uid: string): number =>
  isched.db.query<{ n: number }, [string]>("SELECT count(*) AS n FROM messages WHERE uid = ?").get(uid)!.n;

describe("policies cannot be dodged through subdomains or parents", () => {
  test("--trust evil.test=deny refuses a request signed d=evil.test for x@sub.evil.test", async () => {
    const r = await send(
      signedPostBytes({
        key: signer("evil.test", KEYS.evil.privateKeyPem),
        originator: "mailto:x@sub.evil.test",
        body: invite("sub-evil-1", "mailto:x@sub.evil.test"),
      }),
    );
    expect({ status: r.status, element: errorElement(r.text) }).toEqual({
      status: 403,
      element: "originator-denied",
    });
    expect(storedCount("sub-evil-1")).toBe(0);
  });

  test("a policy on d= applies too: d=corp.test (denied) cannot sign for sales.corp.test (allowed)", async () => {
    const r = await send(
      signedPostBytes({
        key: signer("corp.test", KEYS.corp.privateKeyPem),
        originator: "mailto:x@sales.corp.test",
        body: invite("corp-1", "mailto:x@sales.corp.test"),
      }),
    );
    expect({ status: r.status, element: errorElement(r.text) }).toEqual({
      status: 403,
      element: "originator-denied",
    });
    expect(r.text).toContain("corp.test");
  });

  test("a remote signer d=org.test cannot speak for ceo@sub.org.test when isched hosts org.test", async () => {
    const r = await send(
      signedPostBytes({
        key: signer("org.test", KEYS.org.privateKeyPem),
        originator: "mailto:ceo@sub.org.test",
        body: invite("sub-hosted-1", "mailto:ceo@sub.org.test"),
      }),
    );
    expect({ status: r.status, element: errorElement(r.text) }).toEqual({
      status: 403,
      element: "originator-denied",
    });
    expect(r.text).toContain("org.test");
    expect(storedCount("sub-hosted-1")).toBe(0);
  });

  test("nor can d=sub.org.test, a subdomain of a hosted domain", async () => {
    const r = await send(
      signedPostBytes({
        key: signer("sub.org.test", KEYS.org.privateKeyPem),
        originator: "mailto:ceo@sub.org.test",
        body: invite("sub-hosted-2", "mailto:ceo@sub.org.test"),
      }),
    );
    expect({ status: r.status, element: errorElement(r.text) }).toEqual({
      status: 403,
      element: "originator-denied",
    });
  });

  test("a peer without a policy still gets in, for its own domain and its subdomains", async () => {
    const r = await send(
      signedPostBytes({
        key: signer("peer.test", KEYS.peer.privateKeyPem),
        originator: "mailto:b@cal.peer.test",
        body: invite("peer-sub-1", "mailto:b@cal.peer.test"),
      }),
    );
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ "mailto:ann@org.test": "2.0;Success" });
  });
});
