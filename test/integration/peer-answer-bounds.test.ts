/**
 * What a hostile receiver's answer can leave in isched's queue: isched delivers to a peer over real
 * HTTPS (a static route to a Bun.serve with a test CA) that answers with a 500 KB description or a
 * 100 KB request-status. The delivery's reason and status, and its attempt's error, are clipped; the
 * raw answer is kept in the attempt, capped at 16 KB.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ISCHEDULE_NS } from "../../src/ischedule/namespaces.ts";
import { parsePeerFlag } from "../../src/outbound/static-routes.ts";
import { startIsched, type TestServer } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";

let ca: TestCa;
let peer: ReturnType<typeof Bun.serve>;
let isched: TestServer;

const CAPABILITIES = `<?xml version="1.0" encoding="utf-8"?><query-result xmlns="${ISCHEDULE_NS}"><capabilities><serial-number>1</serial-number><versions><version>1.0</version></versions></capabilities></query-result>`;

beforeAll(async () => {
  ca = createTestCa();
  const cert = ca.issue(["127.0.0.1"]);
  peer = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: cert.certPem, key: cert.keyPem },
    async fetch(req) {
      const xml = (status: number, body: string) =>
        new Response(body, { status, headers: { "Content-Type": "application/xml" } });
      if (req.method === "GET") return xml(200, CAPABILITIES);
      await req.arrayBuffer();
      const recipient = req.headers.get("recipient") ?? "";
      if (recipient.startsWith("mailto:long-description@")) {
        return xml(
          403,
          `<error xmlns="${ISCHEDULE_NS}"><verification-failed/><response-description>${"v".repeat(500 * 1024)}</response-description></error>`,
        );
      }
      return xml(
        200,
        `<schedule-response xmlns="${ISCHEDULE_NS}"><response><recipient>${recipient}</recipient><request-status>5.3;${"e".repeat(100 * 1024)}</request-status></response></schedule-response>`,
      );
    },
  });
  isched = await startIsched({
    domains: ["home.test"],
    peers: [parsePeerFlag(`far.test=https://127.0.0.1:${peer.port}/ischedule`)],
    ca: ca.caCertPem,
    retryScheduleMs: [3_600_000],
    // isched's own key is in no DNS here.
    signUnpublished: true,
  });
});

afterAll(async () => {
  await isched?.close();
  peer?.stop(true);
  ca?.remove();
});

interface Delivery {
  state: string;
  requestStatus: string;
  lastError: string | null;
  attemptList: { error: string | null; response: string | null }[];
}

async function deliver(recipient: string): Promise<Delivery> {
  const calendar = [
    "BEGIN:VCALENDAR",
    "VERSION:2.0",
    "PRODID:-//test//EN",
    "METHOD:REQUEST",
    "BEGIN:VEVENT",
    `UID:${crypto.randomUUID()}`,
    "DTSTAMP:20261125T120000Z",
    "DTSTART:20261202T100000Z",
    "ORGANIZER:mailto:alice@home.test",
    `ATTENDEE:${recipient}`,
    "END:VEVENT",
    "END:VCALENDAR",
    "",
  ].join("\r\n");
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${isched.consoleUrl}/api/v1${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${isched.apiToken}`, "Content-Type": "application/json" },
    });
  const submitted = await api("/messages", { method: "POST", body: JSON.stringify({ calendar }) });
  expect(submitted.status).toBe(202);
  const { id } = (await submitted.json()) as { id: number };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const view = (await (await api(`/messages/${id}`)).json()) as { deliveries: Delivery[] };
    const d = view.deliveries[0]!;
    if (d.attemptList.length > 0 && d.state !== "in-flight") return d;
    if (Date.now() > deadline) throw new Error(`no attempt recorded: ${JSON.stringify(d).slice(0, 300)}`);
    await Bun.sleep(20);
  }
}

test("a 500 KB description from a peer is clipped to 2 KB in the delivery's reason and its attempt", async () => {
  const d = await deliver("mailto:long-description@far.test");
  expect(d.state).toBe("failed");
  expect(d.lastError).toStartWith(
    `https://127.0.0.1:${peer.port}/ischedule could not verify isched's DKIM signature (HTTP 403, verification-failed: vvv`,
  );
  expect(d.lastError!.length).toBe(2048);
  expect(d.lastError).toEndWith("v...");
  expect(d.attemptList[0]!.error).toBe(d.lastError);
  expect(d.attemptList[0]!.response!.length).toBe(16 * 1024);
});

test("a 100 KB request-status from a peer is clipped to 256 characters and still read as 5.3", async () => {
  const d = await deliver("mailto:long-status@far.test");
  expect(d.state).toBe("failed");
  expect(d.requestStatus).toBe(`5.3;${"e".repeat(249)}...`);
});
