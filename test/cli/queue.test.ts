/**
 * `isched queue` and the command groups, run as the compiled binary against a real isched: filter
 * terms that start with `-` are terms, not flags; the "more:" hint repeats the connection flags the
 * user gave; `isched queue --help` (and `dkim`, `admin`) lists the subcommands.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseTrustRule } from "../../src/config/rules.ts";
import { runBinary as run } from "../support/cli.ts";
import { invitation, postAsPeer, startIsched, type TestServer } from "../support/isched.ts";

let server: TestServer;

async function invite(uid: string, method = "REQUEST"): Promise<void> {
  const res = await postAsPeer({
    url: `${server.url}/.well-known/ischedule`,
    originator: "mailto:alice@example.org",
    recipients: ["mailto:bob@home.test"],
    body: invitation({
      uid,
      method,
      organizer: "mailto:alice@example.org",
      attendees: ["mailto:bob@home.test"],
    }),
  });
  expect(res.status).toBe(200);
}

beforeAll(async () => {
  server = await startIsched({
    domains: ["home.test"],
    trust: [parseTrustRule("example.org=unsigned:127.0.0.1")],
  });
  for (let i = 0; i < 3; i++) await invite(`req-${i}@example.org`);
  await invite("cancel-1@example.org", "CANCEL");
});

afterAll(async () => {
  await server?.close();
});

describe("isched queue list", () => {
  test("a negated term (-method:CANCEL) is a filter term, not a flag", async () => {
    const r = await run([
      "queue",
      "list",
      "direction:in",
      "-method:CANCEL",
      "--server",
      server.consoleUrl,
      "--data",
      server.dataDir,
    ]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("REQUEST");
    expect(r.out).not.toContain("CANCEL");
    expect(r.out.trim().split("\n")).toHaveLength(4);
  });

  test("the more: hint repeats --server and --data, so it can be pasted as it is", async () => {
    const r = await run([
      "queue",
      "list",
      "-method:CANCEL",
      "--limit",
      "2",
      "--server",
      server.consoleUrl,
      "--data",
      server.dataDir,
    ]);
    expect(r.code).toBe(0);
    const more = r.out.split("\n").find((l) => l.startsWith("more: "));
    expect(more).toMatch(
      new RegExp(
        `^more: isched queue list '-method:CANCEL' --limit 2 --server ${server.consoleUrl} --data ${server.dataDir} --before \\d+$`,
      ),
    );
    const next = await run(
      more!
        .slice("more: isched ".length)
        .split(" ")
        .map((w) => w.replace(/^'|'$/g, "")),
    );
    expect(next.code).toBe(0);
    expect(next.out.trim().split("\n")).toHaveLength(2);
    expect(next.out).not.toContain("more: ");
  });

  test("a mistyped key is refused with the nearest key", async () => {
    const r = await run([
      "queue",
      "list",
      "stauts:failed",
      "--server",
      server.consoleUrl,
      "--data",
      server.dataDir,
    ]);
    expect(r.code).toBe(2);
    expect(r.err).toStartWith('isched: unknown key "stauts:" (did you mean status?)');
    expect(r.err.split("\n")).toHaveLength(2);
  });
});

describe("command groups", () => {
  for (const [group, subs] of [
    ["queue", ["list", "show", "retry", "cancel", "imip"]],
    ["dkim", ["sign", "verify"]],
    ["admin", ["set-password"]],
  ] as const) {
    test(`isched ${group} --help lists its subcommands and exits 0`, async () => {
      for (const args of [
        [group, "--help"],
        ["help", group],
      ]) {
        const r = await run(args);
        expect(r.err).toBe("");
        expect(r.code).toBe(0);
        for (const s of subs) expect(r.out).toMatch(new RegExp(`^  ${group} ${s} `, "m"));
      }
    });
  }

  test("a group without a subcommand is still a usage error", async () => {
    const r = await run(["queue"]);
    expect(r.code).toBe(2);
    expect(r.err).toBe("isched: 'queue' needs a subcommand: list, show, retry, cancel, imip\n");
  });
});
