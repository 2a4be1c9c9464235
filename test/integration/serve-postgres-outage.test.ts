/**
 * The compiled `isched serve --database` while its PostgreSQL is stopped and started again: signed
 * inbound requests are answered 503 with an iSchedule error element and Retry-After during the
 * outage (never a 500, never a stack trace), the log says once that the delivery queue cannot be
 * used and once that it works again, and without restarting isched the same request is accepted
 * afterwards and everything accepted, before or after, is delivered to the webhook once.
 * (test/postgres/database-outage.test.ts covers the SMTP intake and a crash under load in process.)
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { type RunningPostgres, startPostgres } from "../support/postgres.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";

const START_MS = 120_000;
const key = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
const ANN = "mailto:ann@org.test";

let pg: RunningPostgres;
let dir: string;
let webhook: RecordingWebhook;
let isched: ServeProcess;

const request = (uid: string) =>
  signedPostBytes({
    key,
    originator: "mailto:bernard@peer.test",
    recipients: [ANN],
    body: invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: [ANN] }),
  });
const send = (uid: string) => rawExchange({ port: isched.port, request: request(uid), timeoutMs: 15_000 });
const output = () => isched.stdout() + isched.stderr();
const delivered = (uid: string) => webhook.deliveries.filter((d) => d.uid === uid).length;

async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "isched-serve-pg-outage-"));
  webhook = startRecordingWebhook();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "webhook-secret"), `${webhook.secret}\n`, { mode: 0o600 });
  isched = running(
    await serveProcess(
      [
        "--domain",
        "org.test",
        "--listen",
        "127.0.0.1:0",
        "--console",
        "127.0.0.1:0",
        "--data",
        join(dir, "data"),
        "--database",
        pg.url,
        "--node-id",
        "outage-node",
        "--peer-key",
        `peer.test:s1=${join(dir, "peer.pub.pem")}`,
        "--sign-unpublished",
        "--deliver",
        `webhook:${webhook.url}`,
        "--webhook-secret-file",
        join(dir, "webhook-secret"),
        "--delivery-deadline",
        "500ms",
        "--retry",
        Array(20).fill("300ms").join(","),
      ],
      { timeoutMs: 30_000 },
    ),
  );
}, START_MS);

afterAll(async () => {
  webhook?.release();
  await isched?.stop();
  await webhook?.stop();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "PostgreSQL stopped under the running binary: 503 with Retry-After, one log line each way, and all delivered once after it is back",
  async () => {
    const before = await send("bin-before");
    expect(before.status).toBe(200);
    expect(statuses(before.text)[ANN]).toStartWith("2.0");
    // Accepted, its attempt in flight when the database goes.
    webhook.hold();
    const held = await send("bin-held");
    expect(held.status).toBe(200);
    expect(statuses(held.text)[ANN]).toStartWith("1.1");

    const logStart = output().length;
    await pg.stop({ keepData: true });
    try {
      webhook.release();
      const during = await send("bin-during");
      expect(during.status).toBe(503);
      expect(Number(during.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(errorElement(during.text)).toBeDefined();
      expect(during.text).toContain("try again later");
      expect(during.text).not.toMatch(/\.ts:\d+|Error:/);
      await Bun.sleep(6000);
      const outage = output().slice(logStart);
      expect(outage.match(/delivery queue: cannot/g) ?? []).toHaveLength(1);
      expect(outage).not.toMatch(/status=500|inbound request failed|\n\s+at /);
    } finally {
      await pg.start();
    }

    await waitFor(async () => (await send("bin-during")).status === 200, "the same request accepted again");
    await waitFor(
      () => ["bin-before", "bin-held", "bin-during"].every((uid) => delivered(uid) > 0),
      "every request delivered",
    );
    await Bun.sleep(1000);
    expect(["bin-before", "bin-held", "bin-during"].map(delivered)).toEqual([1, 1, 1]);
    await waitFor(() => /delivery queue works again/.test(output().slice(logStart)), "the recovery logged");
    expect(output()).not.toContain(pg.password);
  },
  START_MS,
);
