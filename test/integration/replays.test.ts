/**
 * Replays, over real sockets with keys in a real DNS server (dnsmasq): copies of one signed request
 * (sent together, or while the first is still being delivered to a slow calendar server, or under
 * another message id when the id is not signed) are delivered once and all get the first answer;
 * and a signature's life is bounded, so that replays cannot come back later.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey, type SigningKey, signRequest } from "../../src/dkim/sign.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, startIsched, statuses, type TestServer } from "../support/isched.ts";
import { type RawField, type RawResponse, rawExchange, requestBytes } from "../support/raw-http.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";
import { onBothBackends } from "../support/store-backends.ts";

const KEYS = {
  peer: generateDkimKey("rsa"),
  /** Used once, by copies that arrive together: each must fetch the key from DNS. */
  fresh: generateDkimKey("rsa"),
};
const signer = (domain: string, pem: string): SigningKey => loadSigningKey(pem, domain, "s1");

let dns: RunningDnsmasq;
let isched: TestServer;
let hook: ReturnType<typeof Bun.serve>;
let hookHits = 0;

onBothBackends("replays", (b) => {
  beforeAll(async () => {
    dns = await startDnsmasq({
      zones: ["peer.test", "fresh.test"],
      txt: [
        { name: "s1._domainkey.peer.test", strings: splitTxtValue(KEYS.peer.record) },
        { name: "s1._domainkey.fresh.test", strings: splitTxtValue(KEYS.fresh.record) },
      ],
    });
    // A calendar server that takes half a second to answer, so a first copy is still unanswered
    // when its replays arrive.
    hook = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      async fetch(req) {
        hookHits++;
        const body = (await req.json()) as { recipients: string[] };
        await Bun.sleep(500);
        return Response.json({
          recipients: body.recipients.map((recipient) => ({ recipient, status: "2.0;Success" })),
        });
      },
    });
    isched = await startIsched({
      domains: ["org.test", "slow.test"],
      deliver: [
        { domain: "org.test", target: { kind: "store" } },
        { domain: "slow.test", target: { kind: "webhook", url: `http://127.0.0.1:${hook.port}/hook` } },
      ],
      webhookSecret: "test-secret",
      dnsServer: dns.server,
      database: await b.serverDatabase(),
    });
  });

  afterAll(async () => {
    await isched?.close();
    await dns?.stop();
    hook?.stop(true);
  });

  const send = (request: Uint8Array): Promise<RawResponse> =>
    rawExchange({ port: Number(new URL(isched.url).port), request });

  const invite = (uid: string, organizer: string, attendee = "mailto:ann@org.test") =>
    invitation({ uid, organizer, attendees: [attendee] });

  const count = async (sql: string, uid: string) =>
    (await b.rows<{ n: number }>(isched.store, sql, [uid]))[0]!.n;
  const storedCount = (uid: string) => count("SELECT count(*) AS n FROM messages WHERE uid = $1", uid);

  describe("replays", () => {
    const peer = () => signer("peer.test", KEYS.peer.privateKeyPem);
    const webhookDeliveries = (uid: string) =>
      count(
        `SELECT count(*) AS n FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
        JOIN messages m ON m.id = d.message_id WHERE m.uid = $1 AND a.outcome = 'delivered'`,
        uid,
      );

    test("one signed request sent 4 times within 300 ms is delivered once, and every copy gets the first answer", async () => {
      const hitsBefore = hookHits;
      const request = signedPostBytes({
        key: peer(),
        originator: "mailto:b@peer.test",
        recipients: ["mailto:sam@slow.test"],
        body: invite("replay-burst-1", "mailto:b@peer.test", "mailto:sam@slow.test"),
      });
      const answers: Promise<RawResponse>[] = [];
      for (let i = 0; i < 4; i++) {
        answers.push(send(request));
        await Bun.sleep(75);
      }
      const done = await Promise.all(answers);
      expect(done.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(new Set(done.map((a) => a.text)).size).toBe(1);
      expect(statuses(done[0]!.text)).toEqual({ "mailto:sam@slow.test": "2.0;Success" });
      expect(done.slice(1).map((a) => a.headers.get("ischedule-replay"))).toEqual(["true", "true", "true"]);
      expect(await storedCount("replay-burst-1")).toBe(1);
      expect(await webhookDeliveries("replay-burst-1")).toBe(1);
      expect(hookHits - hitsBefore).toBe(1);
    });

    test("4 copies sent at the same instant, all waiting for the signer's key, are stored once", async () => {
      const request = signedPostBytes({
        key: signer("fresh.test", KEYS.fresh.privateKeyPem),
        originator: "mailto:b@fresh.test",
        recipients: ["mailto:sam@slow.test"],
        body: invite("replay-burst-2", "mailto:b@fresh.test", "mailto:sam@slow.test"),
      });
      const done = await Promise.all([send(request), send(request), send(request), send(request)]);
      expect(done.map((a) => a.status)).toEqual([200, 200, 200, 200]);
      expect(new Set(done.map((a) => a.text)).size).toBe(1);
      expect(await storedCount("replay-burst-2")).toBe(1);
      expect(await webhookDeliveries("replay-burst-2")).toBe(1);
    });

    test("a replay under another message id is caught when the message id is not signed", async () => {
      const body = invite("replay-unsigned-id", "mailto:b@peer.test");
      const signedHeaders = ["Originator", "Recipient", "Content-Type", "iSchedule-Version"];
      const fields: RawField[] = [
        ["iSchedule-Version", "1.0"],
        ["Originator", "mailto:b@peer.test"],
        ["Recipient", "mailto:ann@org.test"],
        ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
      ];
      const signature = signRequest({
        key: peer(),
        fields,
        body: Buffer.from(body),
        nowMs: Date.now(),
        signedHeaders,
      });
      const withId = (id: string) =>
        requestBytes({
          path: "/.well-known/ischedule",
          fields: [
            ["Host", "isched.org.test"],
            ["DKIM-Signature", signature],
            ["iSchedule-Message-ID", id],
            ...fields,
          ],
          body,
        });
      const first = await send(withId("first-id"));
      const again = await send(withId("another-id"));
      expect([first.status, again.status]).toEqual([200, 200]);
      expect(again.headers.get("ischedule-replay")).toBe("true");
      expect(again.text).toBe(first.text);
      expect(await storedCount("replay-unsigned-id")).toBe(1);
    });

    test("a signature without x= whose t= is over an hour old is refused", async () => {
      const r = await send(
        signedPostBytes({
          key: peer(),
          originator: "mailto:b@peer.test",
          body: invite("old-t-1", "mailto:b@peer.test"),
          nowMs: Date.now() - 2 * 3600_000,
          expireSeconds: 0,
        }),
      );
      expect({ status: r.status, element: errorElement(r.text) }).toEqual({
        status: 403,
        element: "verification-failed",
      });
      expect(r.text).toContain("old");
      expect(await storedCount("old-t-1")).toBe(0);
    });

    test("x= counts for at most 24 hours after t=", async () => {
      const r = await send(
        signedPostBytes({
          key: peer(),
          originator: "mailto:b@peer.test",
          body: invite("long-x-1", "mailto:b@peer.test"),
          nowMs: Date.now() - 25 * 3600_000,
          expireSeconds: 30 * 24 * 3600,
        }),
      );
      expect({ status: r.status, element: errorElement(r.text) }).toEqual({
        status: 403,
        element: "verification-failed",
      });
      expect(await storedCount("long-x-1")).toBe(0);
    });

    test("a signature half an hour old without x= is still accepted", async () => {
      const r = await send(
        signedPostBytes({
          key: peer(),
          originator: "mailto:b@peer.test",
          body: invite("fresh-t-1", "mailto:b@peer.test"),
          nowMs: Date.now() - 1800_000,
          expireSeconds: 0,
        }),
      );
      expect(r.status).toBe(200);
    });
  });
});
