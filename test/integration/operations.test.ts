/**
 * What an operator watches `isched serve` with, from the compiled binary: its log (every delivery
 * attempt in one line, JSON with --log-format json), /healthz and /readyz (a database that takes no
 * write makes /readyz 503: the data folder on a small tmpfs the test fills), /metrics (on the console,
 * with the API token off loopback, and on --metrics-listen; counters moved by real requests, read by
 * the strict exposition reader), and retention (a body older than --retain-bodies is emptied by the
 * pruner, on a clock a month ahead, and the console says so).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EVENT_AND_TODO_METHODS } from "../../src/delivery/target.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { buildCapabilities } from "../../src/inbound/capabilities.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { capabilitiesXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import { type Family, parseExposition } from "../metrics/_exposition.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { rawExchange, requestBytes } from "../support/raw-http.ts";
import { type ServedBinary, serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";
import { mountSmallFilesystem, type SmallFilesystem } from "../support/small-filesystem.ts";

const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
const ANN = "mailto:ann@org.test";
const BOB = "mailto:bob@peer.test";

/** The value of one series of a parsed scrape (0 when absent). */
function sample(families: readonly Family[], name: string, labels: Record<string, string> = {}): number {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const family = families.find((f) => f.name === name || f.name === base);
  const s = family?.samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  return s?.value ?? 0;
}

async function waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}

/** A peer that has iSchedule and refuses every recipient for good (5.3, "no scheduling support"). */
function startRefusingPeer() {
  const capabilities = capabilitiesXml(
    buildCapabilities(
      {
        targets: [EVENT_AND_TODO_METHODS],
        limits: DEFAULT_LIMITS,
        administrator: "mailto:postmaster@peer.test",
        inlineAttachments: false,
      },
      1,
    ),
  );
  const xml = { "content-type": "application/xml; charset=utf-8", "ischedule-version": "1.0" };
  let posts = 0;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      if (request.method === "GET") return new Response(capabilities, { headers: xml });
      await request.arrayBuffer();
      posts++;
      const recipients = (request.headers.get("recipient") ?? "").split(",").map((r) => r.trim());
      return new Response(
        scheduleResponseXml(
          recipients.map((recipient) => ({ recipient, requestStatus: "5.3;No scheduling support for user" })),
        ),
        { headers: xml },
      );
    },
  });
  return { url: `http://127.0.0.1:${server.port}/.well-known/ischedule`, posts: () => posts, server };
}

describe("logs and metrics of a running isched", () => {
  let dir: string;
  let peer: ReturnType<typeof startRefusingPeer>;
  let isched: ServedBinary;
  let metricsPort: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "isched-ops-"));
    writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
    peer = startRefusingPeer();
    metricsPort = await freePort();
    isched = await serveBinary([
      "--domain",
      "org.test",
      "--log-format",
      "json",
      "--metrics-listen",
      `127.0.0.1:${metricsPort}`,
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      "--peer",
      `peer.test=${peer.url},legacy-http`,
      "--allow-private-peers",
      "--sign-unpublished",
    ]);
  });

  afterAll(async () => {
    await isched?.stop();
    peer?.server.stop(true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a delivery a peer refuses for good is one JSON log line with peer, recipient, route, status, reason and no next attempt; every line is JSON", async () => {
    await submitInvitation(isched, { domain: "org.test", attendee: BOB });
    const attempt = await waitFor(
      () =>
        isched
          .stderr()
          .split("\n")
          .filter((l) => l.includes('"delivery attempt: ')) // parsed below, with the rest
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => l.recipient === BOB),
      15_000,
      "the attempt's log line",
    );
    expect(attempt).toMatchObject({
      level: "warn",
      msg: "delivery attempt: permanent",
      delivery: expect.any(Number),
      message: expect.any(String),
      recipient: BOB,
      peer: "peer.test",
      route: "ischedule",
      target: peer.url,
      status: "permanent",
      requestStatus: "5.3;No scheduling support for user",
      next: "none",
      state: "failed",
      attempt: 1,
    });
    expect(String(attempt.reason)).toContain("No scheduling support for user");
    expect(peer.posts()).toBe(1);
    // Every line the binary wrote on standard error is one JSON object with time, level and msg first.
    const lines = isched
      .stderr()
      .split("\n")
      .filter((l) => l !== "");
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(parsed).slice(0, 3)).toEqual(["time", "level", "msg"]);
    }
  });

  test("a signed and an unsigned request move the request and DKIM counters of /metrics, read by the strict reader, on the console and on --metrics-listen", async () => {
    const scrape = async (url: string) => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      return parseExposition(await res.text());
    };
    const before = await scrape(`${isched.consoleUrl}/metrics`);

    const body = invitation({
      uid: `ops-${crypto.randomUUID()}`,
      organizer: "mailto:bernard@peer.test",
      attendees: [ANN],
    });
    const signed = signedPostBytes({ key: peerKey, originator: "mailto:bernard@peer.test", body });
    const accepted = await rawExchange({ port: Number(new URL(isched.url).port), request: signed });
    expect(accepted.status).toBe(200);
    expect(statuses(accepted.text)[ANN]).toStartWith("2.0");
    const unsigned = requestBytes({
      path: "/.well-known/ischedule",
      fields: [
        ["Host", "isched.org.test"],
        ["iSchedule-Version", "1.0"],
        ["iSchedule-Message-ID", crypto.randomUUID()],
        ["Originator", "mailto:bernard@peer.test"],
        ["Recipient", ANN],
        ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
      ],
      body,
    });
    const refused = await rawExchange({ port: Number(new URL(isched.url).port), request: unsigned });
    expect(refused.status).toBe(403);
    expect(errorElement(refused.text)).toBe("verification-failed");

    for (const url of [`${isched.consoleUrl}/metrics`, `http://127.0.0.1:${metricsPort}/metrics`]) {
      const after = await scrape(url);
      const moved = (name: string, labels: Record<string, string>) =>
        sample(after, name, labels) - sample(before, name, labels);
      expect(
        moved("isched_requests_total", { intake: "ischedule", outcome: "accepted", error: "none" }),
      ).toBe(1);
      expect(
        moved("isched_requests_total", {
          intake: "ischedule",
          outcome: "refused",
          error: "verification-failed",
        }),
      ).toBe(1);
      expect(moved("isched_dkim_verdicts_total", { result: "pass", reason: "none" })).toBe(1);
      expect(moved("isched_dkim_verdicts_total", { result: "none", reason: "none" })).toBe(1);
      // The submission of the first test, and its refused delivery to peer.test.
      expect(
        sample(after, "isched_requests_total", { intake: "submission", outcome: "accepted", error: "none" }),
      ).toBe(1);
      expect(sample(after, "isched_peer_attempts_total", { peer: "peer.test", outcome: "permanent" })).toBe(
        1,
      );
      expect(sample(after, "isched_deliveries_total", { route: "ischedule", state: "failed" })).toBe(1);
      expect(
        sample(after, "isched_attempt_duration_seconds_count", { route: "ischedule", outcome: "permanent" }),
      ).toBe(1);
      // The signed request's delivery to the local store.
      expect(sample(after, "isched_deliveries", { state: "delivered" })).toBe(1);
      expect(sample(after, "isched_deliveries", { state: "failed" })).toBe(1);
      expect(sample(after, "isched_queue_depth")).toBe(0);
      expect(sample(after, "isched_build_info", {})).toBe(1);
    }
    // The refusal log is written in batches: the unsigned request's row shows up within a window.
    const rows = sample(before, "isched_refusal_log_rows");
    const end = Date.now() + 5000;
    while (sample(await scrape(`${isched.consoleUrl}/metrics`), "isched_refusal_log_rows") !== rows + 1) {
      if (Date.now() > end) throw new Error("the refusal log's row count did not move");
      await Bun.sleep(100);
    }
  });

  test("/healthz and /readyz answer without authentication on the endpoint, the console and --metrics-listen", async () => {
    for (const base of [isched.url, isched.consoleUrl, `http://127.0.0.1:${metricsPort}`]) {
      const live = await fetch(`${base}/healthz`);
      expect(live.status).toBe(200);
      expect(live.headers.get("content-type")).toBe("application/health+json");
      expect(((await live.json()) as { status: string }).status).toBe("pass");
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      const report = (await ready.json()) as { status: string; checks: Record<string, { status: string }[]> };
      expect(report.status).toBe("pass");
      expect(report.checks["database:writable"]![0]!.status).toBe("pass");
      expect(report.checks["dispatcher:heartbeat"]![0]!.status).toBe("pass");
      expect(report.checks["listeners:up"]!.map((c) => c.status)).toEqual(["pass", "pass", "pass"]);
    }
    // Not the metrics on the endpoint: they name peers.
    expect((await fetch(`${isched.url}/metrics`)).status).toBe(404);
  });
});
