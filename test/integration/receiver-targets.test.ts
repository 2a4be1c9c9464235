/**
 * The other local delivery targets end to end: webhook (HMAC-signed JSON, its answer relayed, free/busy
 * included), store (isched's own inbox, read through the API) and iMIP (a real SMTP server on loopback).
 * The peer's key is fetched over http/well-known from an HTTPS key server with a test CA.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { simpleParser } from "mailparser";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import {
  freeBusyRequest,
  invitation,
  postAsPeer,
  startIsched,
  statuses,
  type TestServer,
} from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";
import { onBothBackends } from "../support/store-backends.ts";

const PEER = generateDkimKey("rsa");
const peerKey = loadSigningKey(PEER.privateKeyPem, "wk-peer.test", "k1");
const SECRET = "webhook-secret-for-tests";

let ca: TestCa;
let keyServer: ReturnType<typeof Bun.serve>;
let webhook: ReturnType<typeof Bun.serve>;
let smtp: RunningSmtpServer;
let dns: RunningDnsmasq;
let isched: TestServer;
let endpoint: string;
const webhookCalls: { body: Record<string, unknown>; signatureOk: boolean }[] = [];

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["keys.wk-peer.test"]);
  keyServer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    fetch: (req) =>
      new URL(req.url).pathname === "/.well-known/domainkey/wk-peer.test/k1"
        ? new Response(`${PEER.record}\r\n`, { headers: { "Content-Type": "text/plain" } })
        : new Response("no", { status: 404 }),
  });
  webhook = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const text = await req.text();
      const ts = req.headers.get("x-isched-timestamp") ?? "";
      const expected = `sha256=${createHmac("sha256", SECRET).update(`${ts}.${text}`).digest("hex")}`;
      const body = JSON.parse(text) as { recipients: string[]; component: string; uid: string };
      webhookCalls.push({ body, signatureOk: req.headers.get("x-isched-signature") === expected });
      const recipients = body.recipients.map((recipient) => {
        if (recipient.startsWith("mailto:ghost@")) return { recipient, status: "3.7;Invalid calendar user" };
        if (body.component === "VFREEBUSY") {
          const reply = `BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//webhook//EN\r\nMETHOD:REPLY\r\nBEGIN:VFREEBUSY\r\nUID:${body.uid}\r\nDTSTAMP:20261125T120000Z\r\nORGANIZER:mailto:bernard@wk-peer.test\r\nATTENDEE:${recipient}\r\nFREEBUSY;FBTYPE=BUSY:20261202T090000Z/20261202T100000Z\r\nEND:VFREEBUSY\r\nEND:VCALENDAR\r\n`;
          return { recipient, status: "2.0;Success", calendarData: reply };
        }
        return { recipient, status: "2.0;Success" };
      });
      return Response.json({ recipients });
    },
  });
  smtp = await startSmtpServer();
  dns = await startDnsmasq({
    zones: ["wk-peer.test"],
    srv: [
      { name: "_domainkey_lookup._tcp.wk-peer.test", target: "keys.wk-peer.test", port: keyServer.port! },
    ],
    hosts: [{ name: "keys.wk-peer.test", address: "127.0.0.1" }],
  });
});

afterAll(async () => {
  await dns?.stop();
  await smtp?.stop();
  webhook?.stop(true);
  keyServer?.stop(true);
  ca?.remove();
});

const send = (recipients: string[], body: string) =>
  postAsPeer({ url: endpoint, key: peerKey, originator: "mailto:bernard@wk-peer.test", recipients, body });

onBothBackends("local targets", (b) => {
  beforeAll(async () => {
    isched = await startIsched({
      domains: ["hooks.test", "boxes.test", "mail.test"],
      deliver: [
        { domain: "hooks.test", target: { kind: "webhook", url: `http://127.0.0.1:${webhook.port}/isched` } },
        { domain: "boxes.test", target: { kind: "store" } },
        { domain: "mail.test", target: { kind: "imip" } },
      ],
      webhookSecret: SECRET,
      smtpUrl: `smtp://127.0.0.1:${smtp.port}`,
      imipFrom: "isched@mail.test",
      dnsServer: dns.server,
      ca: ca.caCertPem,
      database: await b.serverDatabase(),
    });
    endpoint = `${isched.url}/.well-known/ischedule`;
  });
  afterAll(async () => {
    await isched?.close();
  });

  describe("webhook target", () => {
    test("gets HMAC-signed JSON with the iTIP body, and its per-recipient answer is relayed", async () => {
      const r = await send(
        ["mailto:ann@hooks.test", "mailto:ghost@hooks.test"],
        invitation({
          uid: "wh-1",
          organizer: "mailto:bernard@wk-peer.test",
          attendees: ["mailto:ann@hooks.test", "mailto:ghost@hooks.test"],
        }),
      );
      expect(r.status).toBe(200);
      expect(statuses(r.text)).toEqual({
        "mailto:ann@hooks.test": "2.0;Success",
        "mailto:ghost@hooks.test": "3.7;Invalid calendar user",
      });
      const call = webhookCalls.at(-1)!;
      expect(call.signatureOk).toBe(true);
      expect(call.body).toMatchObject({
        method: "REQUEST",
        component: "VEVENT",
        uid: "wh-1",
        dkim: { result: "pass", domain: "wk-peer.test" },
      });
      expect(String(call.body.calendar)).toContain("UID:wh-1");
      // The peer published its key only at /.well-known/domainkey (no TXT record): the log says so.
      const [{ r: reason } = { r: undefined }] = await b.rows<{ r: string }>(
        isched.store,
        "SELECT dkim_reason AS r FROM messages WHERE uid = 'wh-1'",
      );
      expect(reason).toBe("verified with the key from http/well-known (2048 bits)");
    });

    test("answers free/busy with the webhook's VFREEBUSY reply", async () => {
      const r = await send(
        ["mailto:ann@hooks.test"],
        freeBusyRequest({
          uid: "wh-fb",
          organizer: "mailto:bernard@wk-peer.test",
          attendees: ["mailto:ann@hooks.test"],
        }),
      );
      expect(statuses(r.text)).toEqual({ "mailto:ann@hooks.test": "2.0;Success" });
      expect(r.text).toContain("FREEBUSY;FBTYPE=BUSY:20261202T090000Z/20261202T100000Z");
    });
  });

  describe("store target", () => {
    test("keeps the invitation in isched's inbox, readable through the API with the token", async () => {
      const r = await send(
        ["mailto:bob@boxes.test"],
        invitation({
          uid: "st-1",
          organizer: "mailto:bernard@wk-peer.test",
          attendees: ["mailto:bob@boxes.test"],
        }),
      );
      expect(statuses(r.text)).toEqual({ "mailto:bob@boxes.test": "2.0;Success" });
      const url = `${isched.consoleUrl}/api/v1/inbox?recipient=${encodeURIComponent("mailto:bob@boxes.test")}`;
      expect((await fetch(url)).status).toBe(401);
      const res = await fetch(url, { headers: { Authorization: `Bearer ${isched.apiToken}` } });
      expect(res.status).toBe(200);
      const page = (await res.json()) as {
        items: { uid: string; body: string; dkimResult: string; originator: string }[];
      };
      expect(page.items[0]).toMatchObject({
        uid: "st-1",
        dkimResult: "pass",
        originator: "mailto:bernard@wk-peer.test",
      });
      expect(page.items[0]!.body).toContain("BEGIN:VCALENDAR");
    });

    test("a free/busy query for a store-only user answers 5.3: the store cannot compute free/busy", async () => {
      const r = await send(
        ["mailto:bob@boxes.test"],
        freeBusyRequest({
          uid: "st-fb",
          organizer: "mailto:bernard@wk-peer.test",
          attendees: ["mailto:bob@boxes.test"],
        }),
      );
      expect(statuses(r.text)).toEqual({ "mailto:bob@boxes.test": "5.3;No scheduling support for user" });
    });
  });

  describe("iMIP target", () => {
    test("emails the invitation to the local user through a real SMTP server", async () => {
      const before = smtp.messages.length;
      const r = await send(
        ["mailto:carol@mail.test"],
        invitation({
          uid: "im-1",
          organizer: "mailto:bernard@wk-peer.test",
          attendees: ["mailto:carol@mail.test"],
          summary: "Budget review",
        }),
      );
      expect(statuses(r.text)).toEqual({ "mailto:carol@mail.test": "1.1;Sent" });
      await smtp.waitFor(before + 1, 5000);
      const m = smtp.messages[before]!;
      expect(m.mailFrom).toBe("isched@mail.test");
      expect(m.rcptTo).toEqual(["carol@mail.test"]);
      const parsed = await simpleParser(Buffer.from(m.raw));
      expect(parsed.subject).toBe("Invitation: Budget review");
      expect(parsed.replyTo?.text).toBe("bernard@wk-peer.test");
      const calendar = parsed.attachments.find((a) => a.contentType === "text/calendar");
      expect(calendar?.content.toString()).toContain("UID:im-1");
    });
  });

  test("isched's own key record is served at /.well-known/domainkey for http/well-known retrieval", async () => {
    const [{ selector }] = (await b.rows<{ selector: string }>(
      isched.store,
      "SELECT selector FROM dkim_keys WHERE domain = 'hooks.test'",
    )) as [{ selector: string }];
    const res = await fetch(`${isched.url}/.well-known/domainkey/hooks.test/${selector}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/plain");
    expect(await res.text()).toMatch(/^v=DKIM1; k=rsa; h=sha256; s=ischedule; p=MII[A-Za-z0-9+/=]+\r\n$/);
    expect((await fetch(`${isched.url}/.well-known/domainkey/hooks.test/nope`)).status).toBe(404);
  });
});
