/**
 * isched as the verified edge of a real Cyrus IMAP (Debian): a remote peer's DKIM-signed requests
 * (its key published in a real DNS server on loopback) go through isched to Cyrus's /ischedule over
 * the trusted link, and the answers come back per recipient.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { getEvent, waitForEvent } from "../support/caldav.ts";
import { type RunningCyrus, startCyrus } from "../support/cyrus.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import {
  freeBusyRequest,
  invitation,
  postAsPeer,
  startIsched,
  statuses,
  type TestServer,
} from "../support/isched.ts";

const PEER_KEY = generateDkimKey("rsa");
const peerKey = loadSigningKey(PEER_KEY.privateKeyPem, "peer.test", "s1");

let dns: RunningDnsmasq;
let cyrus: RunningCyrus;
let isched: TestServer;
let endpoint: string;

beforeAll(async () => {
  dns = await startDnsmasq({
    zones: ["peer.test"],
    txt: [{ name: "s1._domainkey.peer.test", strings: splitTxtValue(PEER_KEY.record) }],
  });
  cyrus = await startCyrus({ domains: ["org.test"], users: [{ name: "cyrus", password: "pw-cyrus" }] });
  isched = await startIsched({
    domains: ["org.test"],
    deliver: [{ target: { kind: "ischedule", url: cyrus.ischeduleUrl } }],
    dnsServer: dns.server,
  });
  endpoint = `${isched.url}/.well-known/ischedule`;
});

afterAll(async () => {
  await isched?.close();
  await cyrus?.stop();
  await dns?.stop();
});

describe("a DKIM-signed request from peer.test", () => {
  test("an invitation ends up as an event in the Cyrus user's calendar, with Cyrus's 2.0", async () => {
    const body = invitation({
      uid: "cyr-1@peer.test",
      organizer: "mailto:bernard@peer.test",
      attendees: ["mailto:cyrus@org.test"],
    });
    const r = await postAsPeer({
      url: endpoint,
      key: peerKey,
      originator: "mailto:bernard@peer.test",
      recipients: ["mailto:cyrus@org.test"],
      body,
    });
    expect(r.status).toBe(200);
    expect(r.headers.get("ischedule-version")).toBe("1.0");
    expect(statuses(r.text)).toEqual({ "mailto:cyrus@org.test": "2.0;Success" });
    const event = await getEvent(cyrus, "cyrus", "pw-cyrus", "Default", "cyr-1@peer.test");
    expect(event).toContain("SUMMARY:Planning");
    expect(event).toContain("ORGANIZER;CN=Organizer:mailto:bernard@peer.test");
  });

  test("a free/busy request returns Cyrus's VFREEBUSY reply as calendar-data", async () => {
    const body = freeBusyRequest({
      uid: "fb-1@peer.test",
      organizer: "mailto:bernard@peer.test",
      attendees: ["mailto:cyrus@org.test"],
    });
    const r = await postAsPeer({
      url: endpoint,
      key: peerKey,
      originator: "mailto:bernard@peer.test",
      recipients: ["mailto:cyrus@org.test"],
      body,
    });
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ "mailto:cyrus@org.test": "2.0;Success" });
    // Cyrus 3.6.1 answers the reply without FREEBUSY lines (see test/support/cyrus.ts): what matters
    // here is that isched relays Cyrus's own reply for this request.
    const data = /<calendar-data[^>]*>([\s\S]*?)<\/calendar-data>/.exec(r.text)?.[1] ?? "";
    expect(data).toContain("METHOD:REPLY");
    expect(data).toContain("BEGIN:VFREEBUSY");
    expect(data).toContain("UID:fb-1@peer.test");
  });

  test("an unknown user gets Cyrus's 3.7, a user of another domain isched's own 3.7 (no relay)", async () => {
    const body = invitation({
      uid: "cyr-2@peer.test",
      organizer: "mailto:bernard@peer.test",
      attendees: ["mailto:nobody@org.test", "mailto:someone@elsewhere.test"],
    });
    const r = await postAsPeer({
      url: endpoint,
      key: peerKey,
      originator: "mailto:bernard@peer.test",
      recipients: ["mailto:nobody@org.test", "mailto:someone@elsewhere.test"],
      body,
    });
    expect(statuses(r.text)).toEqual({
      "mailto:nobody@org.test": "3.7;Invalid calendar user",
      "mailto:someone@elsewhere.test": "3.7;Invalid calendar user",
    });
    expect(r.text).toContain("does not relay");
  });

  test("with Cyrus down the answer is 1.1 (held: CalendarServer resends an all-1.0 answer), and the event arrives after Cyrus starts again", async () => {
    await cyrus.kill();
    const body = invitation({
      uid: "cyr-3@peer.test",
      organizer: "mailto:bernard@peer.test",
      attendees: ["mailto:cyrus@org.test"],
    });
    const r = await postAsPeer({
      url: endpoint,
      key: peerKey,
      originator: "mailto:bernard@peer.test",
      recipients: ["mailto:cyrus@org.test"],
      body,
    });
    expect(r.status).toBe(200);
    expect(statuses(r.text)).toEqual({ "mailto:cyrus@org.test": "1.1;Sent" });
    await Bun.sleep(800);
    await cyrus.start();
    const event = await waitForEvent(
      cyrus,
      "cyrus",
      "pw-cyrus",
      "Default",
      "cyr-3@peer.test",
      undefined,
      10_000,
    );
    expect(event).toContain("UID:cyr-3@peer.test");
    // The log shows the failed attempts and the final delivery.
    const detail = isched.db
      .query<{ state: string; attempts: number }, []>(
        "SELECT d.state, d.attempts FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.uid = 'cyr-3@peer.test'",
      )
      .get();
    expect(detail?.state).toBe("delivered");
    expect(detail!.attempts).toBeGreaterThan(1);
  });

  test("a replay of the same request gets the first answer and delivers nothing twice", async () => {
    const body = invitation({
      uid: "cyr-4@peer.test",
      organizer: "mailto:bernard@peer.test",
      attendees: ["mailto:cyrus@org.test"],
    });
    const request = {
      url: endpoint,
      key: peerKey,
      originator: "mailto:bernard@peer.test",
      recipients: ["mailto:cyrus@org.test"],
      body,
      messageId: "replay-1",
    };
    const first = await postAsPeer(request);
    const second = await postAsPeer(request);
    expect(second.status).toBe(first.status);
    expect(second.text).toBe(first.text);
    const n = isched.db
      .query<{ n: number }, []>("SELECT count(*) AS n FROM messages WHERE uid = 'cyr-4@peer.test'")
      .get();
    expect(n?.n).toBe(1);
  });
});
