/**
 * A refused request, end to end with the compiled binary: it is logged with its reason, but it has no
 * deliverable state at all (no retry, no iMIP, no bulk action can ever deliver it), and it costs no
 * disk beyond its metadata: its body is never stored.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { LogPage } from "../../src/store/sqlite/message-search.ts";
import { invitation } from "../support/isched.ts";
import { type IschedProcess, startIschedProcess } from "../support/isched-process.ts";

let isched: IschedProcess;

beforeAll(async () => {
  isched = await startIschedProcess(["--domain", "example.com"]);
});

afterAll(async () => {
  await isched?.close();
});

/**
 * An unsigned POST, through fetch's kept-alive connections: a test that sends hundreds must not leave
 * an ephemeral port in TIME_WAIT for each (later tests listen on kernel-chosen port numbers).
 */
async function unsigned(o: {
  originator: string;
  recipient: string;
  body: string | Uint8Array<ArrayBuffer>;
}): Promise<{
  status: number;
  text: string;
}> {
  const res = await fetch(`${isched.url}/.well-known/ischedule`, {
    method: "POST",
    headers: {
      "iSchedule-Version": "1.0",
      "iSchedule-Message-ID": crypto.randomUUID(),
      Originator: o.originator,
      Recipient: o.recipient,
      "Content-Type": "text/calendar; component=VEVENT; method=REQUEST",
    },
    body: o.body,
  });
  return { status: res.status, text: await res.text() };
}

async function json<T>(res: Response): Promise<{ status: number; body: T }> {
  return { status: res.status, body: (await res.json()) as T };
}

/** Bytes of every file in a folder (the database, its WAL and everything else isched keeps). */
function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

describe("a forged message refused at intake", () => {
  const forged = invitation({
    uid: "forged-1",
    organizer: "mailto:alice@example.com",
    attendees: ["mailto:bob@example.com"],
    summary: "Wire the money today",
  });
  let messageId: number;

  beforeAll(async () => {
    const r = await unsigned({
      originator: "mailto:alice@example.com",
      recipient: "mailto:bob@example.com",
      body: forged,
    });
    expect(r.status).toBe(403);
    const page = await json<LogPage>(await isched.api("GET", "/messages?limit=1"));
    messageId = page.body.messages[0]!.id;
  });

  test("is listed as refused with its reason, and its body is not kept", async () => {
    const refused = await json<LogPage>(await isched.api("GET", "/messages?q=status:refused"));
    expect(refused.body.messages.map((m) => m.id)).toEqual([messageId]);
    const detail = await json<{
      deliveries: unknown[];
      body: string;
      refusal: { reason: string; status: number; bodyBytes: number; bodySha256: string } | null;
    }>(await isched.api("GET", `/messages/${messageId}`));
    expect(detail.body.deliveries).toEqual([]);
    expect(detail.body.body).toBe("");
    expect(detail.body.refusal?.status).toBe(403);
    expect(detail.body.refusal?.reason).toContain("DKIM-Signature");
    expect(detail.body.refusal?.bodyBytes).toBe(Buffer.byteLength(forged));
    expect(detail.body.refusal?.bodySha256).toBe(
      new Bun.CryptoHasher("sha256").update(forged).digest("base64"),
    );
    const shown = isched.cli(["queue", "show", String(messageId)]);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain("refused (HTTP 403)");
    expect(shown.stdout).toContain("DKIM-Signature");
  });

  test("isched queue retry/imip/cancel --message refuse in one line with exit code 1", () => {
    for (const action of ["retry", "imip", "cancel"]) {
      const r = isched.cli(["queue", action, "--message", String(messageId)]);
      expect({ action, exitCode: r.exitCode, lines: r.stderr.trim().split("\n").length }).toEqual({
        action,
        exitCode: 1,
        lines: 1,
      });
      expect(r.stderr).toContain("refused");
      expect(r.stdout).toBe("");
    }
  });

  test("the API answers 409 with the reason for every action on it, one by one or in bulk", async () => {
    for (const action of ["retry", "imip", "cancel"]) {
      const byMessage = await json<{ error: string }>(
        await isched.api("POST", `/deliveries/${action}`, { messageId }),
      );
      expect({ action, status: byMessage.status }).toEqual({ action, status: 409 });
      expect(byMessage.body.error).toContain("refused");
      const bulk = await json<{ error: string }>(
        await isched.api("POST", `/deliveries/${action}`, { q: "status:refused", dryRun: true }),
      );
      expect({ action, status: bulk.status }).toEqual({ action, status: 409 });
      expect(bulk.body.error).toContain("refused");
    }
    // A bulk retry of failed deliveries does not select it either.
    const failed = await json<{ count: number }>(
      await isched.api("POST", "/deliveries/retry", { q: "status:failed", dryRun: true }),
    );
    expect(failed.body.count).toBe(0);
  });

  test("is never delivered: Bob's inbox stays empty", async () => {
    await Bun.sleep(500);
    const inbox = await json<{ items: unknown[] }>(
      await isched.api("GET", `/inbox?recipient=${encodeURIComponent("mailto:bob@example.com")}`),
    );
    expect(inbox.body.items).toEqual([]);
  });
});

describe("refusals cost no disk", () => {
  test("200 refused 1 MB requests grow the data folder by under 2 MB", async () => {
    const body = new Uint8Array(1_000_000).fill(0x41);
    const before = folderBytes(isched.dataDir);
    for (let i = 0; i < 200; i++) {
      const r = await unsigned({
        originator: "mailto:x@stranger.test",
        recipient: "mailto:bob@example.com",
        body,
      });
      expect(r.status).toBe(403);
    }
    const grown = folderBytes(isched.dataDir) - before;
    expect(grown).toBeLessThan(2 * 1024 * 1024);
    // And yet every refusal is in the log (a flood's refusals are written a quarter second apart).
    const logged = async () =>
      (await json<LogPage>(await isched.api("GET", "/messages?q=status:refused&limit=500"))).body.messages;
    let refusals = await logged();
    for (let i = 0; i < 40 && refusals.length < 201; i++) {
      await Bun.sleep(50);
      refusals = await logged();
    }
    expect(refusals.length).toBe(201);
    expect(refusals[0]!.refusal).toContain("DKIM-Signature");
  }, 120_000);
});
