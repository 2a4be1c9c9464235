/**
 * `isched queue imip` says what really happened: the relay's answer to each delivery (a real SMTP
 * server that refuses one recipient with 451), not "sent" when the delivery was only queued again.
 * The gateway is the compiled binary; the peer's iSchedule server is down (real DNS points at a
 * closed port), so the deliveries wait in the queue for the operator.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageView } from "../../src/console/message-view.ts";
import { runIsched } from "../support/binary-run.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation } from "../support/isched.ts";
import { freePort } from "../support/ports.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";

let dir: string;
let data: string;
let dns: RunningDnsmasq;
let smtp: RunningSmtpServer;
let server: ServeProcess;
let token: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-queue-imip-"));
  data = join(dir, "data");
  const closed = await freePort();
  dns = await startDnsmasq({
    zones: ["remote.test"],
    srv: [{ name: "_ischedules._tcp.remote.test", target: "cal.remote.test", port: closed }],
    hosts: [{ name: "cal.remote.test", address: "127.0.0.1" }],
  });
  smtp = await startSmtpServer({ recipientReplies: { "carol@remote.test": 451 } });
  server = running(
    await serveProcess([
      ...["--domain", "home.test", "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0", "--data", data],
      ...["--dns-server", `${dns.server.host}:${dns.server.port}`, "--allow-private-peers"],
      ...["--smtp", `smtp://127.0.0.1:${smtp.port}`, "--retry", "1h,2h,4h"],
      // home.test's key is in no DNS here: sign anyway, so that the first attempts happen.
      "--sign-unpublished",
    ]),
  );
  token = readFileSync(join(data, "api-token"), "utf8").trim();
});

afterAll(async () => {
  await server?.stop();
  await smtp?.stop();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${server.consoleUrl}/api/v1${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as T;
}

/** A message to carol and dave at remote.test, once its first iSchedule attempt has failed. */
async function waitingMessage(uid: string): Promise<MessageView> {
  const calendar = invitation({
    uid,
    organizer: "mailto:alice@home.test",
    attendees: ["mailto:carol@remote.test", "mailto:dave@remote.test"],
  });
  const { id } = await api<{ id: number }>("POST", "/messages", { calendar });
  for (let i = 0; i < 200; i++) {
    const m = await api<MessageView>("GET", `/messages/${id}`);
    if (m.deliveries.every((d) => d.state === "queued" && d.attemptList.length === 1)) return m;
    await Bun.sleep(50);
  }
  throw new Error("the first attempts did not happen");
}

test("queue imip reports the relay's refusal and the requeue, and the relay's acceptance, exit 1", async () => {
  const m = await waitingMessage("imip-report-1");
  const carol = m.deliveries.find((d) => d.recipient === "mailto:carol@remote.test")!;
  const dave = m.deliveries.find((d) => d.recipient === "mailto:dave@remote.test")!;
  const r = await runIsched(["queue", "imip", String(carol.id), String(dave.id), "--data", data]);
  expect(r.stderr).toBe("");
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines[0]).toBe("2 of 2 deliveries queued to be sent by iMIP now");
  expect(lines).toContainEqual(
    expect.stringMatching(
      new RegExp(
        `^delivery ${carol.id} \\(mailto:carol@remote\\.test\\): NOT sent: the relay through smtp://127\\.0\\.0\\.1:${smtp.port} refused it \\(.*451.*\\); queued again by imip, next attempt \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$`,
      ),
    ),
  );
  expect(lines).toContainEqual(
    expect.stringMatching(
      new RegExp(
        `^delivery ${dave.id} \\(mailto:dave@remote\\.test\\): sent by iMIP through smtp://127\\.0\\.0\\.1:${smtp.port}`,
      ),
    ),
  );
  expect(lines.at(-1)).toBe("1 of 2 sent by iMIP");
  expect(r.exitCode).toBe(1);
  // What it said is what happened.
  expect(smtp.messages.map((x) => x.rcptTo)).toContainEqual(["dave@remote.test"]);
  const after = await api<MessageView>("GET", `/messages/${m.id}`);
  expect(after.deliveries.find((d) => d.id === carol.id)?.state).toBe("queued");
  expect(after.deliveries.find((d) => d.id === dave.id)?.state).toBe("sent-imip");
});

test("queue imip --message, all accepted: exit 0; --wait 0 only queues and says so", async () => {
  const m = await waitingMessage("imip-report-2");
  const dave = m.deliveries.find((d) => d.recipient === "mailto:dave@remote.test")!;
  const r = await runIsched(["queue", "imip", String(dave.id), "--data", data]);
  expect(r.stdout).toMatch(/sent by iMIP through smtp:\/\/127\.0\.0\.1:\d+.*\n1 of 1 sent by iMIP\n$/);
  expect(r.exitCode).toBe(0);
  const carol = m.deliveries.find((d) => d.recipient === "mailto:carol@remote.test")!;
  const quick = await runIsched(["queue", "imip", String(carol.id), "--wait", "0", "--data", data]);
  expect(quick.stdout).toBe("1 of 1 deliveries queued to be sent by iMIP now\n");
  expect(quick.exitCode).toBe(0);
});
