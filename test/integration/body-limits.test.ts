/**
 * Request bodies are capped while they stream, on every route that reads one, in the compiled binary:
 * a 100 MB chunked body sent to the console's public routes (sign-in, setup), to a JSON route or to
 * the submission API is refused once it passes the route's limit, while the client is still sending, and the
 * server's memory does not grow with it. The iSchedule endpoint answers any declared Content-Length
 * over its limit with its own max-content-length error element and iSchedule headers (never Bun's
 * bare 413). A body that stalls gets the route's 408 at the body deadline (the endpoint's is in the
 * bad-input battery), not a connection Bun closes without a word.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RawField, rawExchange, requestBytes } from "../support/raw-http.ts";
import { running, type ServeProcess, serveProcess } from "../support/serve-process.ts";

const MB = 1024 * 1024;
const FLOOD_BYTES = 100 * MB;
/** --max-content-length of the server below. */
const CAP = 64 * 1024;

let dir: string;
let isched: ServeProcess;
let token: string;

const rssBytes = () =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${isched.process.pid}/status`, "utf8"))![1]) * 1024;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-bodies-"));
  isched = running(
    await serveProcess([
      ...["--domain", "org.test", "--listen", "127.0.0.1:0", "--console", "127.0.0.1:0"],
      ...["--data", join(dir, "data"), "--max-content-length", String(CAP), "--log-level", "warn"],
    ]),
  );
  token = readFileSync(join(dir, "data", "api-token"), "utf8").trim();
});

afterAll(async () => {
  await isched?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const portOf = (url: string) => Number(new URL(url).port);

/** Sends up to 100 MB of chunked body in 64 KB chunks, stopping once the server has answered. */
async function flood(url: string, path: string, fields: readonly RawField[], localAddress = "127.0.0.1") {
  const chunk = Buffer.concat([Buffer.from("10000\r\n"), Buffer.alloc(65536, "a"), Buffer.from("\r\n")]);
  const before = rssBytes();
  const r = await rawExchange({
    port: portOf(url),
    localAddress,
    request: requestBytes({
      path,
      fields: [["Host", `127.0.0.1:${portOf(url)}`], ["Transfer-Encoding", "chunked"], ...fields],
    }),
    async stream(send, answered) {
      for (let sent = 0; sent < FLOOD_BYTES && !answered(); sent += 65536) {
        await send(chunk);
        // Let the socket's events run between chunks: on an idle machine loopback takes 100 MB in
        // ~30 ms, and write callbacks alone would keep the answer's 'data' event waiting to the end.
        await new Promise((r) => setImmediate(r));
      }
      if (!answered()) await send(Buffer.from("0\r\n\r\n"));
    },
    timeoutMs: 60_000,
  });
  return { ...r, rssGrowth: rssBytes() - before };
}

describe("a 100 MB chunked body is refused while it streams, and the server's memory stays flat", () => {
  const json: RawField = ["Content-Type", "application/json"];
  const cases: [string, string, () => RawField[], RegExp][] = [
    ["POST /api/v1/session (public)", "/api/v1/session", () => [json], /larger than 16384 bytes/],
    ["POST /api/v1/setup (public)", "/api/v1/setup", () => [json], /larger than 16384 bytes/],
    [
      "POST /api/v1/keys/check (a JSON route, with the API token)",
      "/api/v1/keys/check",
      () => [json, ["Authorization", `Bearer ${token}`]],
      /larger than 2097152 bytes/,
    ],
    [
      "POST /api/v1/messages (the submission API)",
      "/api/v1/messages",
      () => [
        ["Content-Type", "text/calendar"],
        ["Authorization", `Bearer ${token}`],
      ],
      new RegExp(`larger than ${CAP} bytes`),
    ],
  ];
  for (const [i, [name, path, fields, error]] of cases.entries()) {
    test(name, async () => {
      // Each from an address of its own: the sign-in routes count a refused body as a failed guess.
      const r = await flood(isched.consoleUrl, path, fields(), `127.0.0.${10 + i}`);
      expect(r.status).toBe(413);
      expect((JSON.parse(r.text) as { error: string }).error).toMatch(error);
      // Answered while the client was still sending (how far it got before it noticed the answer
      // depends on the machine's load: the server keeps draining the socket), and nothing close to
      // the body was held.
      expect(r.bytesSent).toBeLessThan(FLOOD_BYTES);
      expect(r.rssGrowth).toBeLessThan(32 * MB);
    }, 90_000);
  }
});

describe("the iSchedule endpoint answers an oversized Content-Length with its own error element", () => {
  const head = (length: string): RawField[] => [
    ["Host", "127.0.0.1"],
    ["iSchedule-Version", "1.0"],
    ["Originator", "mailto:bernard@peer.test"],
    ["Recipient", "mailto:ann@org.test"],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
    ["Content-Length", length],
  ];
  for (const declared of [String(CAP + 1), String(3 * CAP), String(200 * MB), "10000000000"]) {
    test(`Content-Length: ${declared}`, async () => {
      const r = await rawExchange({
        port: isched.port,
        request: requestBytes({ path: "/.well-known/ischedule", fields: head(declared) }),
        timeoutMs: 10_000,
      });
      expect(r.status).toBe(413);
      expect(r.headers.get("ischedule-version")).toBe("1.0");
      expect(r.headers.get("ischedule-capabilities")).toMatch(/^\d+$/);
      expect(r.text).toContain("<max-content-length/>");
      expect(r.text).toContain(
        `The body (${declared} bytes) is larger than the ${CAP} bytes this server accepts.`,
      );
    });
  }

  test("a chunked body past the limit", async () => {
    const r = await flood(isched.url, "/.well-known/ischedule", head("0").slice(1, -1));
    expect(r.status).toBe(413);
    expect(r.headers.get("ischedule-version")).toBe("1.0");
    expect(r.text).toContain("<max-content-length/>");
    // Answered while the client was still sending (see the console's cases above).
    expect(r.bytesSent).toBeLessThan(FLOOD_BYTES);
    expect(r.rssGrowth).toBeLessThan(32 * MB);
  }, 90_000);
});

describe("a body that stalls is answered 408 at the 30 s body deadline, not cut off by Bun's idle timer", () => {
  // Bun.serve closes a connection after 10 s without an answer, body or no body, unless the request is
  // given more time: each route's own deadline must answer first.
  const stall = (path: string, fields: readonly RawField[], method = "POST") =>
    rawExchange({
      port: portOf(isched.consoleUrl),
      request: requestBytes({
        method,
        path,
        fields: [["Host", `127.0.0.1:${portOf(isched.consoleUrl)}`], ["Content-Length", "500"], ...fields],
        body: '{"password":',
      }),
      timeoutMs: 45_000,
    });

  test("on a JSON route, signing in and the submission API", async () => {
    const auth: RawField = ["Authorization", `Bearer ${token}`];
    const answers = await Promise.all([
      stall("/api/v1/peers/peer.test/policy", [auth, ["Content-Type", "application/json"]], "PUT"),
      stall("/api/v1/session", [["Content-Type", "application/json"]]),
      stall("/api/v1/messages", [auth, ["Content-Type", "application/json"]]),
    ]);
    expect(answers.map((r) => [r.status, JSON.parse(r.text).error])).toEqual([
      [408, "the body did not arrive within 30 s"],
      [408, "the body did not arrive within 30 s"],
      [408, "the body did not arrive within 30000 ms"],
    ]);
    for (const r of answers) expect(r.elapsedMs).toBeGreaterThan(29_000);
  }, 60_000);
});

describe("a chunked body that breaks off is the client's mistake, not a failure of isched", () => {
  // Bun answers the broken framing itself (400); isched's route, already reading, must not log an
  // internal error or answer 500 for it.
  const broken = (url: string, path: string, fields: readonly RawField[], method = "POST") =>
    rawExchange({
      port: portOf(url),
      request: Buffer.concat([
        requestBytes({
          method,
          path,
          fields: [["Host", `127.0.0.1:${portOf(url)}`], ["Transfer-Encoding", "chunked"], ...fields],
        }),
        Buffer.from('5\r\n{"a":\r\nzz\r\nbroken\r\n0\r\n\r\n'),
      ]),
    });

  test("on the endpoint, a JSON route, signing in and the submission API", async () => {
    const before = isched.stderr().length;
    const auth: RawField = ["Authorization", `Bearer ${token}`];
    const json: RawField = ["Content-Type", "application/json"];
    const answers = await Promise.all([
      broken(isched.url, "/.well-known/ischedule", [
        ["iSchedule-Version", "1.0"],
        ["Originator", "mailto:bernard@peer.test"],
        ["Recipient", "mailto:ann@org.test"],
        ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
      ]),
      broken(isched.consoleUrl, "/api/v1/peers/peer.test/policy", [auth, json], "PUT"),
      broken(isched.consoleUrl, "/api/v1/session", [json], "POST"),
      broken(isched.consoleUrl, "/api/v1/messages", [auth, json], "POST"),
    ]);
    expect(answers.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    // Past every route's handling of it.
    await Bun.sleep(200);
    expect(
      isched
        .stderr()
        .slice(before)
        .match(/^\S+ error .*$/gm) ?? [],
    ).toEqual([]);
  });
});
