/**
 * "What happens next" on a message's page says what this isched will really do, in three
 * configurations: iMIP on (--smtp), iMIP off, and iMIP on with --fallback-after. Each sends one
 * invitation to two peers through static routes: one whose server is down (the delivery waits for its
 * next attempt) and a real isched that refuses the recipient with 3.7 (the delivery has failed). The
 * page, read in Chromium, and `isched queue show` give the attempt count, the next step and the iMIP
 * fallback as the configuration has them, and never offer e-mail when iMIP is off.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Page } from "playwright-core";
import type { MessageView } from "../../src/console/message-view.ts";
import { parseCidrList } from "../../src/net/cidr.ts";
import { parsePeerFlag } from "../../src/outbound/static-routes.ts";
import { runBinary as run } from "../support/cli.ts";
import { invitation, startIsched, type TestServer } from "../support/isched.ts";
import { freePort } from "../support/ports.ts";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";
import { startBrowser, type TestBrowser } from "./_browser.ts";
import { type ConsoleServer, PASSWORD, startConsoleServer } from "./_console.ts";
import { eventually } from "./_webhook.ts";

const SCHEDULE_MS = [60_000, 300_000, 900_000];
const HOUR = 3_600_000;

type Config = "imip-on" | "imip-off" | "fallback-after";

let smtp: RunningSmtpServer;
let peer: TestServer;
let closedPort: number;
let b: TestBrowser;
let page: Page;
const senders = new Map<Config, { c: ConsoleServer; message: MessageView }>();

async function sender(config: Config): Promise<ConsoleServer> {
  const imip = config !== "imip-off";
  return startConsoleServer({
    domains: ["home.example"],
    trust: [{ domain: "home.example", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
    peers: [
      parsePeerFlag(`down.example=http://127.0.0.1:${closedPort}/.well-known/ischedule,sign=no,legacy-http`),
      parsePeerFlag(`gone.example=${peer.url}/.well-known/ischedule,sign=no,legacy-http`),
    ],
    retryScheduleMs: SCHEDULE_MS,
    smtpUrl: imip ? `smtp://127.0.0.1:${smtp.port}` : undefined,
    fallbackAfterMs: config === "fallback-after" ? HOUR : undefined,
  });
}

/** An invitation from the organisation's own server to both peers; resolves once both have an outcome. */
async function invite(c: ConsoleServer): Promise<MessageView> {
  const res = await fetch(`${c.isched.url}/.well-known/ischedule`, {
    method: "POST",
    headers: {
      "iSchedule-Version": "1.0",
      Originator: "mailto:alice@home.example",
      Recipient: "mailto:bob@down.example, mailto:carol@gone.example",
      "Content-Type": "text/calendar; method=REQUEST; component=VEVENT",
    },
    body: invitation({
      uid: "next-step@home.example",
      organizer: "mailto:alice@home.example",
      attendees: ["mailto:bob@down.example", "mailto:carol@gone.example"],
    }),
  });
  expect(res.status).toBe(200);
  return eventually(async () => {
    const list = await (await c.token("/api/v1/messages?q=uid:next-step@home.example")).json();
    const id = (list as { messages: { id: number }[] }).messages[0]?.id;
    if (id === undefined) return undefined;
    const m = (await (await c.token(`/api/v1/messages/${id}`)).json()) as MessageView;
    const states = m.deliveries.map((d) => `${d.recipient} ${d.state} ${d.attempts}`).sort();
    return states.join() === "mailto:bob@down.example queued 1,mailto:carol@gone.example failed 1"
      ? m
      : undefined;
  });
}

beforeAll(async () => {
  smtp = await startSmtpServer();
  closedPort = await freePort();
  peer = await startIsched({
    domains: ["far.example"],
    trust: [{ domain: "home.example", policy: { mode: "unsigned", from: parseCidrList("127.0.0.1") } }],
  });
  for (const config of ["imip-on", "imip-off", "fallback-after"] as const) {
    const c = await sender(config);
    senders.set(config, { c, message: await invite(c) });
  }
  b = await startBrowser();
  page = b.page;
}, 60_000);

afterAll(async () => {
  await b?.close();
  for (const { c } of senders.values()) await c.close();
  await peer?.close();
  await smtp?.stop();
});

interface Shown {
  attempts: string;
  next: string;
  fallback: string;
  imipButton: "enabled" | "disabled";
}

/** What the message's page shows for one recipient. */
async function shown(config: Config, recipient: string): Promise<Shown> {
  const { c, message } = senders.get(config)!;
  if (!page.url().startsWith(c.base)) {
    await page.goto(`${c.base}/`);
    await page.fill("#password", PASSWORD);
    await page.click("#sign-in");
    await page.waitForSelector("h1:text('Overview')");
  }
  await page.goto(`${c.base}/#/messages/${message.id}`);
  const card = page.locator("section.delivery", { hasText: recipient });
  await card.waitFor();
  const row = (name: string) => card.locator("table.facts tr", { hasText: name }).locator("td").textContent();
  return {
    attempts: (await row("Attempts"))!,
    next: (await card.locator(".plan-next").textContent())!,
    fallback: (await card.locator(".plan-fallback").textContent())!,
    imipButton: (await card.locator("button.action-imip").isDisabled()) ? "disabled" : "enabled",
  };
}

const nextAt = (config: Config, recipient: string): string => {
  const d = senders.get(config)!.message.deliveries.find((x) => x.recipient === recipient)!;
  return new Date(d.nextAttemptAt!).toISOString();
};

describe("a delivery waiting for its next attempt", () => {
  const bob = "mailto:bob@down.example";

  test("iMIP on: attempt 2 of 4, then e-mail when the retries run out", async () => {
    expect(await shown("imip-on", bob)).toEqual({
      attempts: "1 of 4",
      next: `attempt 2 of 4 at ${nextAt("imip-on", bob)} (retry schedule 1m,5m,15m)`,
      fallback: "by iMIP after attempt 4; at once if the peer has no iSchedule service (5.2/5.3)",
      imipButton: "enabled",
    });
  });

  test("iMIP off: the delivery fails after attempt 4, and e-mail is not offered", async () => {
    expect(await shown("imip-off", bob)).toEqual({
      attempts: "1 of 4",
      next: `attempt 2 of 4 at ${nextAt("imip-off", bob)} (retry schedule 1m,5m,15m)`,
      fallback: "never: iMIP is off (no --smtp), so the delivery fails after attempt 4",
      imipButton: "disabled",
    });
  });

  test("--fallback-after 1h: e-mail at the fallback time if the retries have not run out by then", async () => {
    const d = senders.get("fallback-after")!.message.deliveries.find((x) => x.recipient === bob)!;
    // An hour after the message came in (the two times are read a moment apart).
    expect(Math.abs(d.fallbackAt! - d.createdAt - HOUR)).toBeLessThan(1000);
    expect(await shown("fallback-after", bob)).toEqual({
      attempts: "1 of 4",
      next: `attempt 2 of 4 at ${nextAt("fallback-after", bob)} (retry schedule 1m,5m,15m)`,
      fallback: `by iMIP after attempt 4 or at ${new Date(d.fallbackAt!).toISOString()} (--fallback-after), whichever comes first; at once if the peer has no iSchedule service (5.2/5.3)`,
      imipButton: "enabled",
    });
  });
});

describe("a delivery the peer refused for good (3.7)", () => {
  const carol = "mailto:carol@gone.example";

  for (const config of ["imip-on", "fallback-after"] as const) {
    test(`${config}: one attempt made; retry or e-mail are the operator's to choose`, async () => {
      const s = await shown(config, carol);
      expect(s).toMatchObject({
        attempts: "1 made",
        fallback: "not automatic for a delivery that failed: Send by iMIP now",
        imipButton: "enabled",
      });
      expect(s.next).toMatch(
        /^nothing until an operator acts \(the answer 3\.7;[^)]+ is final\): Retry now queues it again; Send by iMIP now e-mails it$/,
      );
    });
  }

  test("imip-off: no word of e-mail, and its button is disabled", async () => {
    const s = await shown("imip-off", carol);
    expect(s).toMatchObject({
      attempts: "1 made",
      fallback: "off: isched runs without --smtp, so nothing is sent by e-mail",
      imipButton: "disabled",
    });
    expect(s.next).toMatch(
      /^nothing until an operator acts \(the answer 3\.7;[^)]+ is final\): Retry now queues it again$/,
    );
  });

  test("isched queue show prints the same", async () => {
    const { c, message } = senders.get("imip-off")!;
    const r = await run([
      "queue",
      "show",
      String(message.id),
      "--server",
      c.base,
      "--data",
      c.isched.dataDir,
    ]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("    attempts 1 made; next -; status 3.7;");
    expect(r.out).toContain(
      "    iMIP fallback: off: isched runs without --smtp, so nothing is sent by e-mail",
    );
    expect(r.out).toContain(
      "    iMIP fallback: never: iMIP is off (no --smtp), so the delivery fails after attempt 4",
    );
    expect(r.out).not.toContain("iMIP now");
  });
});
