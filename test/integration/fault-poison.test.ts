/**
 * What kill -9 counts against a delivery, with the compiled binary. isched takes a signed invitation
 * from a peer for its user and delivers it to a webhook that holds its answer, so the delivery stays
 * in flight for as long as the test likes; the test kills isched with SIGKILL and starts it again.
 *
 * A poison delivery is one whose attempt kills isched: each time it is attempted, isched dies holding
 * it. isched parks it as 'broken' for an operator once it was in flight at each of isched's last three
 * deaths. A delivery that a kill from outside catches is due again only seconds later (the recovery
 * delay, 5 to 10 s), and a death that does not hold it ends its count: caught at the 1st, 3rd and 4th
 * of four kills it goes back to the queue; caught at the 3rd, 4th and 5th it is parked.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { invitation, statuses } from "../support/isched.ts";
import { freePort } from "../support/ports.ts";
import { rawExchange } from "../support/raw-http.ts";
import { type RecordingWebhook, startRecordingWebhook } from "../support/recording-webhook.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { signedPostBytes } from "../support/signed-post.ts";

const ANN = "mailto:ann@org.test";
const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");

let dir: string;
let webhook: RecordingWebhook;
let isched: ServeProcess | undefined;
let args: string[];
let token: string;
const ports = { endpoint: 0, console: 0 };

const start = async () => {
  isched = running(await serveProcess(args, { timeoutMs: 20_000 }));
};

/** SIGKILL, then a new run: what that run's start-up recovery said (its log line). */
async function killAndRestart(): Promise<{ requeued: number; broken: number }> {
  isched!.process.kill("SIGKILL");
  await isched!.process.exited;
  await start();
  const line = /recovered deliveries left in flight by a previous run requeued=(\d+) broken=(\d+)/.exec(
    isched!.stderr(),
  );
  return { requeued: Number(line?.[1] ?? 0), broken: Number(line?.[2] ?? 0) };
}

async function queue(): Promise<Record<string, number>> {
  const res = await fetch(`http://127.0.0.1:${ports.console}/api/v1/overview`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return ((await res.json()) as { queue: Record<string, number> }).queue;
}

/** Waits until the delivery is in flight again (due after the recovery delay, held by the webhook). */
async function inFlight(): Promise<void> {
  const end = Date.now() + 20_000;
  while (((await queue())["in-flight"] ?? 0) !== 1) {
    if (Date.now() > end)
      throw new Error(`the delivery was not attempted again: ${JSON.stringify(await queue())}`);
    await Bun.sleep(100);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-poison-"));
  webhook = startRecordingWebhook();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "webhook-secret"), `${webhook.secret}\n`, { mode: 0o600 });
  [ports.endpoint, ports.console] = [await freePort(), await freePort()];
  args = [
    "--domain",
    "org.test",
    "--listen",
    `127.0.0.1:${ports.endpoint}`,
    "--console",
    `127.0.0.1:${ports.console}`,
    "--data",
    join(dir, "data"),
    "--peer-key",
    `peer.test:s1=${join(dir, "peer.pub.pem")}`,
    "--sign-unpublished",
    "--deliver",
    `webhook:${webhook.url}`,
    "--webhook-secret-file",
    join(dir, "webhook-secret"),
    "--delivery-deadline",
    "500ms",
    "--log-level",
    "warn",
  ];
  await start();
  token = readFileSync(join(dir, "data", "api-token"), "utf8").trim();
}, 30_000);

afterAll(async () => {
  webhook?.release();
  isched?.process.kill("SIGKILL");
  await isched?.process.exited;
  await webhook?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("kill -9 parks a delivery only when it was in flight at each of isched's last three deaths", async () => {
  webhook.hold();
  const body = invitation({ uid: "poison-1", organizer: "mailto:bernard@peer.test", attendees: [ANN] });
  const answer = await rawExchange({
    port: ports.endpoint,
    request: signedPostBytes({ key: peerKey, originator: "mailto:bernard@peer.test", body }),
    timeoutMs: 10_000,
  });
  expect(answer.status).toBe(200);
  expect(statuses(answer.text)[ANN]).toStartWith("1.1");
  await inFlight();

  // Caught by the 1st kill; the 2nd comes before it is due again; caught by the 3rd and the 4th.
  expect(await killAndRestart()).toEqual({ requeued: 1, broken: 0 });
  expect(await killAndRestart()).toEqual({ requeued: 0, broken: 0 });
  await inFlight();
  expect(await killAndRestart()).toEqual({ requeued: 1, broken: 0 });
  await inFlight();
  expect(await killAndRestart()).toEqual({ requeued: 1, broken: 0 });
  expect(await queue()).toMatchObject({ queued: 1, "in-flight": 0, broken: 0 });

  // In flight at the 5th as well: three deaths in a row held it, as they would a poison delivery.
  await inFlight();
  expect(await killAndRestart()).toEqual({ requeued: 0, broken: 1 });
  expect(await queue()).toMatchObject({ queued: 0, "in-flight": 0, broken: 1 });
  // The console says why it waits for an operator.
  const res = await fetch(`http://127.0.0.1:${ports.console}/api/v1/messages/1`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const view = (await res.json()) as { deliveries: { state: string; lastError: string }[] };
  expect(view.deliveries.map((d) => d.state)).toEqual(["broken"]);
  expect(view.deliveries[0]!.lastError).toContain("with this delivery in flight the last 3 times it died");
  expect(webhook.deliveries).toEqual([]);
}, 120_000);
