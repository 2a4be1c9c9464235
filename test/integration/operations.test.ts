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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EVENT_AND_TODO_METHODS } from "../../src/delivery/target.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { buildCapabilities } from "../../src/inbound/capabilities.ts";
import { DEFAULT_LIMITS } from "../../src/inbound/limits.ts";
import { capabilitiesXml, scheduleResponseXml } from "../../src/ischedule/xml-writer.ts";
import { type Family, parseExposition } from "../metrics/_exposition.ts";
import { runIsched } from "../support/binary-run.ts";
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

/** serve's flags for org.test in `dataDir`, on free ports. */
const orgArgs = (dataDir: string, console = "127.0.0.1:0") => [
  "--domain",
  "org.test",
  "--data",
  dataDir,
  "--listen",
  "127.0.0.1:0",
  "--console",
  console,
];

/** The value of one series of a parsed scrape (0 when absent). */
function sample(families: readonly Family[], name: string, labels: Record<string, string> = {}): number {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const family = families.find((f) => f.name === name || f.name === base);
  const s = family?.samples.find(
    (x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  return s?.value ?? 0;
}

async function waitFor<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
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

describe("a console off loopback, under TLS", () => {
  let ca: TestCa;
  let isched: ServeProcess;
  let dataDir: string;
  let token: string;
  let consolePort: number;
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`https://127.0.0.1:${consolePort}${path}`, { headers, tls: { ca: ca.caCertPem } });

  beforeAll(async () => {
    ca = createTestCa();
    const cert = ca.issue(["127.0.0.1", "localhost"]);
    dataDir = mkdtempSync(join(tmpdir(), "isched-ops-tls-"));
    consolePort = await freePort();
    isched = running(
      await serveProcess([
        ...orgArgs(dataDir, `0.0.0.0:${consolePort}`),
        "--tls-cert",
        cert.certFile,
        "--tls-key",
        cert.keyFile,
      ]),
    );
    token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
  });

  afterAll(async () => {
    await isched?.stop();
    ca?.remove();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test("/metrics needs the API token; the certificate's expiry is a gauge; health needs nothing", async () => {
    const without = await get("/metrics");
    expect(without.status).toBe(401);
    expect(await without.text()).toBe(
      "/metrics on a console that is not on loopback needs the API token (Authorization: Bearer TOKEN), or serve it with --metrics-listen\n",
    );
    expect((await get("/metrics", { authorization: "Bearer not-the-token" })).status).toBe(401);
    const scraped = await get("/metrics", { authorization: `Bearer ${token}` });
    expect(scraped.status).toBe(200);
    const families = parseExposition(await scraped.text());
    const notAfter = Math.floor(Date.parse(new X509Certificate(ca.issue(["x.test"]).certPem).validTo) / 1000);
    const listen = sample(families, "isched_certificate_expiry_timestamp_seconds", { listener: "--listen" });
    // Issued by the same CA with the same validity: within the minute between the two issues.
    expect(Math.abs(listen - notAfter)).toBeLessThan(120);
    expect(sample(families, "isched_certificate_expiry_timestamp_seconds", { listener: "--console" })).toBe(
      listen,
    );
    expect((await get("/healthz")).status).toBe(200);
    expect((await get("/readyz")).status).toBe(200);
  });
});

describe("/readyz when the database takes no write", () => {
  let fs: SmallFilesystem;
  let isched: ServeProcess;

  beforeAll(async () => {
    fs = mountSmallFilesystem(24 * 1024 * 1024);
    isched = running(await serveProcess([...orgArgs(join(fs.path, "data")), "--sign-unpublished"]));
  });

  afterAll(async () => {
    await isched?.stop();
    fs?.unmount();
  });

  test("a full disk makes /readyz 503 naming the database, /healthz stays 200, and /readyz is 200 again once there is room", async () => {
    const ready = async () => {
      const res = await fetch(`${isched.url}/readyz`);
      return {
        status: res.status,
        report: (await res.json()) as {
          status: string;
          checks: Record<string, { status: string; output?: string }[]>;
        },
      };
    };
    expect((await ready()).status).toBe(200);
    fs.fill();
    // Answers are kept for a second: the next fresh one sees the full disk.
    const answered = async (status: number) => {
      const r = await ready();
      return r.status === status ? r : undefined;
    };
    const failing = await waitFor(() => answered(503), 10_000, "a 503 from /readyz");
    expect(failing.report.status).toBe("fail");
    expect(failing.report.checks["database:writable"]).toMatchObject([
      { status: "fail", output: "the database takes no write" },
    ]);
    expect((await fetch(`${isched.url}/healthz`)).status).toBe(200);
    fs.makeRoom();
    const back = await waitFor(() => answered(200), 10_000, "a 200 from /readyz");
    expect(back.report.checks["database:writable"]![0]!.status).toBe("pass");
  });
});

describe("retention in the running binary", () => {
  let dataDir: string;

  beforeAll(() => {
    dataDir = mkdtempSync(join(tmpdir(), "isched-ops-retain-"));
  });
  afterAll(() => {
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const start = (o: { clockOffsetSeconds?: number; clockRate?: number } = {}) =>
    serveProcess([...orgArgs(dataDir), "--retain-bodies", "30d"], o).then(running);

  async function submit(s: ServeProcess, token: string): Promise<number> {
    const res = await fetch(`${s.consoleUrl}/api/v1/messages`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "text/calendar" },
      body: invitation({
        uid: `keep-${crypto.randomUUID()}`,
        organizer: "mailto:alice@org.test",
        attendees: [ANN],
      }),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { id: number }).id;
  }

  const message = async (s: ServeProcess, token: string, id: number) =>
    (await (
      await fetch(`${s.consoleUrl}/api/v1/messages/${id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { body: string; bodyRemoved: { bytes: number; text: string } | null; itip: { ok: boolean } };

  test("a body older than --retain-bodies is emptied by the pruner, a newer one is kept, and the console says why", async () => {
    const today = await start();
    const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
    let old: number;
    try {
      old = await submit(today, token);
      const kept = await message(today, token, old);
      expect(kept.bodyRemoved).toBeNull();
      expect(kept.body).toContain("BEGIN:VCALENDAR");
    } finally {
      await today.stop();
    }

    // 31 days later, on a clock 30 times as fast: the pruner's first run (a minute after start) comes
    // within seconds.
    const later = await start({ clockOffsetSeconds: 31 * 86_400, clockRate: 30 });
    try {
      const fresh = await submit(later, token);
      await waitFor(
        () => (later.stderr().includes("retention pruned") ? true : undefined),
        20_000,
        "the pruner's run",
      );
      expect(later.stderr()).toMatch(/retention pruned bodies=1 /);
      const pruned = await message(later, token, old);
      expect(pruned.body).toBe("");
      expect(pruned.itip.ok).toBe(false);
      expect(pruned.bodyRemoved?.text).toStartWith("body removed after 30 days (--retain-bodies)");
      expect(pruned.bodyRemoved?.bytes).toBeGreaterThan(100);
      const notYet = await message(later, token, fresh);
      expect(notYet.bodyRemoved).toBeNull();
      expect(notYet.body).toContain("BEGIN:VCALENDAR");
      const families = parseExposition(await (await fetch(`${later.consoleUrl}/metrics`)).text());
      expect(sample(families, "isched_pruned_total", { kind: "bodies" })).toBe(1);
    } finally {
      await later.stop();
    }
  });
  test("ISCHED_BENCHMARK_RETENTION compresses the policy for a benchmark: bodies go within seconds, and start-up says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "isched-ops-bench-retain-"));
    const s = await serveProcess(orgArgs(dir), {
      env: { ISCHED_BENCHMARK_RETENTION: "bodies=1s,messages=1h,every=1s" },
    }).then(running);
    try {
      expect(s.stdout()).toContain(
        "retention     bodies=1s,messages=1h,every=1s from ISCHED_BENCHMARK_RETENTION, for benchmarks only",
      );
      expect(s.stderr()).not.toContain("is no flag's variable");
      const token = readFileSync(join(dir, "api-token"), "utf8").trim();
      const id = await submit(s, token);
      await waitFor(
        () => (/retention pruned bodies=1 /.test(s.stderr()) ? true : undefined),
        15_000,
        "a pruner run that empties the body",
      );
      const pruned = await message(s, token, id);
      expect(pruned.body).toBe("");
      expect(pruned.bodyRemoved?.bytes).toBeGreaterThan(100);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the operations flags at start-up", () => {
  test("a wrong value is one line naming its flag, exit 2, before anything is written", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "isched-ops-flags-"));
    try {
      for (const [args, line] of [
        [["--retain", "3d"], "flag --retain: 3d is shorter than the least allowed, 7d"],
        [["--retain", "400"], 'flag --retain: "400" has no unit'],
        [["--retain", "10d", "--retain-bodies", "20d"], "--retain-bodies"],
        [["--log-format", "xml"], "--log-format"],
        [["--metrics-listen", "nowhere"], "--metrics-listen"],
      ] as const) {
        const r = await runIsched(["serve", "--data", join(dataDir, "d"), ...args]);
        expect(r.exitCode).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stderr).toContain(line);
        expect(existsSync(join(dataDir, "d"))).toBe(false);
      }
      const env = await runIsched(["serve", "--data", join(dataDir, "d")], {
        env: { ISCHED_LOG_FORMAT: "yaml" },
      });
      expect(env.exitCode).toBe(2);
      expect(env.stderr).toContain("ISCHED_LOG_FORMAT (--log-format)");
      const bench = await runIsched(["serve", "--data", join(dataDir, "d")], {
        env: { ISCHED_BENCHMARK_RETENTION: "bodies=3m" },
      });
      expect(bench.exitCode).toBe(2);
      expect(bench.stderr.trim()).toBe(
        "isched: ISCHED_BENCHMARK_RETENTION: needs bodies=, messages= and every= (for example bodies=3m,messages=10m,every=60s)",
      );
      expect(existsSync(join(dataDir, "d"))).toBe(false);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test("isched help serve lists them with their defaults", async () => {
    const help = await runIsched(["help", "serve"]);
    expect(help.exitCode).toBe(0);
    for (const f of [
      "--retain DURATION",
      "--retain-bodies DURATION",
      "--log-format",
      "--metrics-listen HOST:PORT",
    ])
      expect(help.stdout).toContain(f);
    expect(help.stdout).toContain("400d");
    expect(help.stdout).toContain("ISCHED_METRICS_LISTEN");
  });
});
