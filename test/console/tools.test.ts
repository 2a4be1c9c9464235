/** "Verify this request": a pasted signed request checked step by step, as the endpoint would. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { VerifyReport } from "../../src/console/verify-steps.ts";
import { type ConsoleServer, startConsoleServer } from "./_console.ts";

const FIXTURES = join(import.meta.dir, "..", "fixtures", "dkim");
const request = readFileSync(join(FIXTURES, "v1-invite-rsa.http"), "latin1");
const publicKey = readFileSync(join(FIXTURES, "test-rsa-2048.pub.pem"), "utf8");
// Inside the signature's t=..x= window.
const AT_MS = 1268069852_000 + 60_000;

let c: ConsoleServer;
beforeAll(async () => {
  c = await startConsoleServer();
});
afterAll(() => c.close());

async function verify(body: object): Promise<VerifyReport> {
  const res = await c.token("/api/v1/tools/verify", { method: "POST", json: body });
  expect(res.status).toBe(200);
  return (await res.json()) as VerifyReport;
}

describe("verify this request", () => {
  test("a good request passes every step, pasted with LF line ends", async () => {
    const pasted = request.replace(/\r\n/g, "\n");
    const r = await verify({ request: pasted, publicKey, atMs: AT_MS });
    expect(r.steps.map((s) => [s.title, s.outcome])).toEqual([
      ["Read the request", "ok"],
      ["DKIM-Signature tags", "ok"],
      ["Signed headers", "ok"],
      ["Time", "ok"],
      ["Body hash", "ok"],
      ["Key", "ok"],
      ["Verdict", "ok"],
    ]);
    expect(r.steps[0]!.lines).toContain("line ends restored to CRLF, as HTTP sends them");
    expect(r.steps[1]!.lines[0]).toBe("d=example.com s=jupiter a=rsa-sha256 c=ischedule-relaxed/simple");
    expect(r.verdict).toMatchObject({
      ok: true,
      domain: "example.com",
      selector: "jupiter",
      keySource: "private-exchange",
    });
  });

  test("a changed body fails at the body hash, and the verdict says so", async () => {
    const r = await verify({ request: request.replace("SUMMARY:", "SUMMARY:X"), publicKey, atMs: AT_MS });
    expect(r.steps.find((s) => s.title === "Body hash")?.outcome).toBe("failed");
    expect(r.verdict).toMatchObject({ ok: false, reason: "body-hash-mismatch" });
  });

  test("an expired signature fails at the time step", async () => {
    const r = await verify({ request, publicKey });
    expect(r.steps.find((s) => s.title === "Time")?.outcome).toBe("failed");
    expect(r.verdict).toMatchObject({ ok: false, reason: "signature-expired" });
  });

  test("what is not a request stops at the first step", async () => {
    const r = await verify({ request: "hello\n\nworld" });
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]).toMatchObject({ title: "Read the request", outcome: "failed" });
    expect(r.verdict).toBeNull();
    expect((await c.token("/api/v1/tools/verify", { method: "POST", json: { request: " " } })).status).toBe(
      400,
    );
  });
});
