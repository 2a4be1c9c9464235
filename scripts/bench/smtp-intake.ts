/**
 * SMTP intake benchmark (issue 6): iMIP messages per second accepted by isched A's SMTP intake
 * (`isched serve --smtp-listen`, pinned to CPU 0) and handed to iSchedule, i.e. sent signed
 * (rsa-sha256, 2048 bits) over HTTPS to isched B (`--deliver store`, pinned to CPU 1), timed from the
 * first SMTP connection until B holds every message. Beside it, in the same run and with the same N,
 * the outbound drain rate of A (scripts/bench/outbound.ts part 1: the same messages pre-filled in A's
 * queue). Target: the SMTP rate at least 80% of the drain rate (SMTP parsing must not be the
 * bottleneck).
 *
 * Messages are shaped as Cyrus IMAP sends them (test/smtp-intake/_messages.ts): multipart/mixed
 * holding multipart/alternative (text/plain, text/html, text/calendar; method=REQUEST, quoted-
 * printable) and the same iCalendar as a base64 `Invitation.ics` attachment; from alice@a.test to one
 * attendee each at b.test (about 3.3 KB). The load generator is a separate Bun process on CPU 1 (beside
 * B, which has room to spare) sending pre-built messages with nodemailer over --connections pooled
 * SMTP connections.
 *
 *   npx bun scripts/bench/smtp-intake.ts [--messages 3000] [--connections 8] [--limits 8,16]
 *                                        [--profile DIR] [--write BENCHMARKS.md]
 *
 * --limits: the dispatcher's per-target limits to run both measurements with (8 is the default, --max-per-peer;
 * others replace it in A's process only, see _two-ischeds.ts). Internal role: --role send.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  cpuMsOf,
  type DrainResult,
  machineLine,
  measureDrain,
  pinSelf,
  prepareTwoOrgs,
  replaceBetweenMarkers,
  spawnIsched,
  type TwoOrgs,
  waitFor,
  waitForPort,
} from "./_two-ischeds.ts";

const { values: args } = parseArgs({
  options: {
    role: { type: "string" },
    messages: { type: "string", default: "3000" },
    connections: { type: "string", default: "8" },
    limits: { type: "string", default: "8,16" },
    profile: { type: "string" },
    write: { type: "string" },
    port: { type: "string" },
  },
});

const DEFAULT_PER_TARGET = 8; // isched serve --max-per-peer default

// ---------------------------------------------------------------------------------------------
// The load generator

interface SendResult {
  sent: number;
  failed: number;
  firstError?: string;
  /** performance.timeOrigin + now at the first send and when the last 250 came back. */
  startedAt: number;
  acceptedAt: number;
  cpuMs: number;
}

/** --role send: --messages Cyrus-style iMIP messages to 127.0.0.1:--port over --connections. */
async function sendRole(): Promise<void> {
  const nodemailer = (await import("nodemailer")).default;
  const { cyrusMail, itipRequest } = await import("../../test/smtp-intake/_messages.ts");
  const n = Number(args.messages);
  const mails = Array.from({ length: n }, (_, i) => {
    const to = `user${i}@b.test`;
    const itip = itipRequest({
      organizer: "alice@a.test",
      attendees: [to],
      uid: `smtp-bench-${i}@a.test`,
      summary: "Quarterly planning",
    });
    return { to, raw: Buffer.from(cyrusMail({ from: "alice@a.test", to: [to], itip })) };
  });
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port: Number(args.port),
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: Number(args.connections),
    maxMessages: Number.POSITIVE_INFINITY,
    socketTimeout: 120_000,
  });
  const cpu0 = process.cpuUsage();
  const startedAt = performance.timeOrigin + performance.now();
  let failed = 0;
  let firstError: string | undefined;
  await Promise.all(
    mails.map(({ to, raw }) =>
      transport.sendMail({ envelope: { from: "alice@a.test", to: [to] }, raw }).catch((e: Error) => {
        failed++;
        firstError ??= e.message;
      }),
    ),
  );
  const acceptedAt = performance.timeOrigin + performance.now();
  const cpu = process.cpuUsage(cpu0);
  transport.close();
  const result: SendResult = {
    sent: n - failed,
    failed,
    firstError,
    startedAt,
    acceptedAt,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  console.log(JSON.stringify(result));
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

interface SmtpResult {
  messages: number;
  /** From the first SMTP send until B held them all. */
  seconds: number;
  perSecond: number;
  /** From the first SMTP send until the last 250. */
  acceptSeconds: number;
  acceptedPerSecond: number;
  failed: number;
  atB: number;
  cpuA: number;
  cpuB: number;
  cpuGenerator: number;
}

async function measureSmtp(o: { orgs: TwoOrgs; dir: string; messages: number; limit: number }) {
  const { Database } = await import("bun:sqlite");
  const { freePort } = await import("../../test/support/ports.ts");
  const smtpPort = await freePort();
  const dataB = join(o.dir, "b-data");
  const b = spawnIsched({ cpu: 1, flags: o.orgs.flagsB({ dataDir: dataB }) });
  const a = spawnIsched({
    cpu: 0,
    flags: o.orgs.flagsA({ dataDir: join(o.dir, "a-data"), smtpListen: `127.0.0.1:${smtpPort}` }),
    maxPerTarget: o.limit === DEFAULT_PER_TARGET ? undefined : o.limit,
    profileDir: args.profile ? join(args.profile, `smtp-${o.limit}`) : undefined,
  });
  try {
    await waitForPort(o.orgs.portB);
    await waitForPort(smtpPort);
    const cpuStart = { a: cpuMsOf(a.pid), b: cpuMsOf(b.pid) };
    const generator = spawn(
      "taskset",
      [
        "-c",
        "1",
        process.execPath,
        new URL(import.meta.url).pathname,
        "--role",
        "send",
        "--port",
        String(smtpPort),
        "--messages",
        String(o.messages),
        "--connections",
        args.connections!,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    generator.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const generatorDone = new Promise<SendResult>((resolve, reject) =>
      generator.on("exit", (code) =>
        code === 0
          ? resolve(JSON.parse(out.trim().split("\n").at(-1)!) as SendResult)
          : reject(new Error(`the generator exited with ${code}`)),
      ),
    );
    await waitFor("B's database", () => Bun.file(join(dataB, "isched.db")).size > 0, 30_000);
    const dbB = new Database(join(dataB, "isched.db"), { readonly: true });
    const atB = dbB.query<{ n: number }, []>(
      "SELECT count(*) AS n FROM messages WHERE direction = 'inbound'",
    );
    let sent: SendResult | undefined;
    generatorDone.then((r) => {
      sent = r;
    });
    await waitFor(
      `${o.messages} messages at B`,
      () => {
        if (a.child.exitCode !== null) throw new Error(`isched A exited: ${a.stderr()}`);
        if (sent && sent.failed > 0) throw new Error(`${sent.failed} sends failed: ${sent.firstError}`);
        return atB.get()!.n >= o.messages;
      },
      30 * 60_000,
      20,
    );
    const heldAt = performance.timeOrigin + performance.now();
    const s = await generatorDone;
    const wallMs = heldAt - s.startedAt;
    const held = atB.get()!.n;
    dbB.close();
    const pct = (ms: number) => (ms / wallMs) * 100;
    const result: SmtpResult = {
      messages: o.messages,
      seconds: wallMs / 1000,
      perSecond: held / (wallMs / 1000),
      acceptSeconds: (s.acceptedAt - s.startedAt) / 1000,
      acceptedPerSecond: s.sent / ((s.acceptedAt - s.startedAt) / 1000),
      failed: s.failed,
      atB: held,
      cpuA: pct(cpuMsOf(a.pid) - cpuStart.a),
      cpuB: pct(cpuMsOf(b.pid) - cpuStart.b),
      cpuGenerator: pct(s.cpuMs),
    };
    return result;
  } finally {
    await a.stop();
    await b.stop();
  }
}

interface Row {
  limit: number;
  drain: DrainResult;
  smtp: SmtpResult;
}

function report(rows: Row[], messages: number): string {
  const pct = (x: number) => `${Math.round(x)}%`;
  const lines = [
    machineLine(),
    `Command: \`npx bun scripts/bench/smtp-intake.ts${args.write ? ` --write ${args.write}` : ""}\``,
    "",
    `| ${messages} messages, one recipient each | per-target limit | messages/s | A's CPU | B's CPU | generator's CPU |`,
    "|---|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const limit = `${r.limit}${r.limit === DEFAULT_PER_TARGET ? " (default)" : ""}`;
    lines.push(
      `| outbound drain: pre-filled queue → B | ${limit} | ${Math.round(r.drain.perSecond)} | ${pct(r.drain.cpuA)} | ${pct(r.drain.cpuB)} | - |`,
      `| SMTP intake → iSchedule → B (until B holds all) | ${limit} | ${Math.round(r.smtp.perSecond)} | ${pct(r.smtp.cpuA)} | ${pct(r.smtp.cpuB)} | ${pct(r.smtp.cpuGenerator)} |`,
      `| SMTP intake, accepted (until the last 250) | ${limit} | ${Math.round(r.smtp.acceptedPerSecond)} | | | |`,
    );
  }
  lines.push("");
  for (const r of rows) {
    const share = (r.smtp.perSecond / r.drain.perSecond) * 100;
    lines.push(
      `- Per-target limit ${r.limit}: SMTP → B at ${pct(share)} of the outbound drain rate (target ≥ 80%: ${share >= 80 ? "met" : "missed"}); B holds ${r.smtp.atB}/${r.smtp.messages}, ${r.smtp.failed} SMTP failures.`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  pinSelf(1);
  const messages = Number(args.messages);
  const dir = mkdtempSync(join(tmpdir(), "isched-bench-smtp-"));
  const rows: Row[] = [];
  try {
    const orgs = await prepareTwoOrgs({ dir: join(dir, "orgs") });
    try {
      let run = 0;
      for (const limit of args.limits!.split(",").map(Number)) {
        const drain = await measureDrain({
          orgs,
          dir: join(dir, `drain-${run}`),
          messages,
          receiver: "isched",
          maxPerTarget: limit === DEFAULT_PER_TARGET ? undefined : limit,
        });
        console.log(`drain, per-target limit ${limit}: ${JSON.stringify(drain)}`);
        const smtp = await measureSmtp({ orgs, dir: join(dir, `smtp-${run++}`), messages, limit });
        console.log(`smtp, per-target limit ${limit}: ${JSON.stringify(smtp)}`);
        rows.push({ limit, drain, smtp });
      }
    } finally {
      await orgs.stop();
    }
    const text = report(rows, messages);
    console.log(`\n${text}`);
    if (args.write) replaceBetweenMarkers(args.write, "smtp-intake-figures", text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.role === "send") await sendRole();
else await main();
