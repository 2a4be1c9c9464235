/**
 * Who may use the SMTP intake, over real sockets: the --smtp-allow ranges, AUTH from the accounts
 * file, STARTTLS with a test certificate, and the size limit.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCidrList } from "../../src/net/cidr.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/pki.ts";
import { dialog, type Harness, startHarness } from "./_harness.ts";
import { cyrusMail, plainMail } from "./_messages.ts";

let h: Harness | undefined;
let dir: string;
let ca: TestCa;
let cert: IssuedCert;
let authFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "isched-smtp-intake-"));
  ca = createTestCa();
  cert = ca.issue(["localhost", "127.0.0.1"]);
  authFile = join(dir, "smtp-users");
  const digest = createHash("sha256").update("calendar-secret").digest("hex");
  writeFileSync(authFile, `# calendar servers\ncyrus:{sha256}${digest}\nnextcloud:plain:text:pw\n`, {
    mode: 0o600,
  });
});
afterAll(() => {
  ca.remove();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const CAROL = "carol@mail-only.example";

describe("SMTP intake access", () => {
  test("a client outside --smtp-allow gets 554 5.7.1 instead of the greeting and is disconnected", async () => {
    h = await startHarness({ intake: { allow: parseCidrList("10.0.0.0/8,fd00::/8") } });
    const replies = await dialog(h.intake.port, ["EHLO client.example", "MAIL FROM:<alice@example.com>"]);
    expect(replies).toEqual(["554 5.7.1 Client 127.0.0.1 may not use this relay"]);
    const r = await h.send({ from: "alice@example.com", to: [CAROL], raw: plainMail() });
    expect(!r.ok && r.code).toBe(554);
    expect(h.sink.connections()).toBe(0);
  });

  test("with an accounts file, MAIL FROM without AUTH is refused with 530", async () => {
    h = await startHarness({ intake: { authFile } });
    const r = await h.send({ from: "alice@example.com", to: [CAROL], raw: plainMail() });
    expect(!r.ok && r.code).toBe(530);
    expect(h.sink.connections()).toBe(0);
  });

  test("AUTH accepts a {sha256} and a plain-text account and refuses a wrong password with 535 5.7.8", async () => {
    h = await startHarness({ intake: { authFile } });
    const good = await h.send({
      from: "alice@example.com",
      to: [CAROL],
      raw: plainMail(),
      transport: { auth: { user: "cyrus", pass: "calendar-secret" }, ignoreTLS: true },
    });
    expect(good.ok).toBe(true);
    const plain = await h.send({
      from: "alice@example.com",
      to: [CAROL],
      raw: plainMail(),
      transport: { auth: { user: "nextcloud", pass: "plain:text:pw", method: "LOGIN" }, ignoreTLS: true },
    });
    expect(plain.ok).toBe(true);
    const bad = await h.send({
      from: "alice@example.com",
      to: [CAROL],
      raw: plainMail(),
      transport: { auth: { user: "cyrus", pass: "guess" }, ignoreTLS: true },
    });
    expect(!bad.ok && bad.response).toBe("535 5.7.8 Authentication credentials invalid");
    expect(h.sink.messages).toHaveLength(2);
    expect(h.logs.join("")).not.toContain("guess");
  });

  test("40 wrong logins sent at once from one address: one password is checked, the others get 454 4.7.0", async () => {
    h = await startHarness({ intake: { authFile } });
    const replies = await authAtOnce(h.intake.port, 40, plainAuth("cyrus", "guess"));
    const checked = replies.filter((r) => r.startsWith("535 "));
    const slowed = replies.filter((r) =>
      /^454 4\.7\.0 Too many failed logins from your address; try again in \d+ s$/.test(r),
    );
    expect({ checked: checked.length, slowed: slowed.length }).toEqual({ checked: 1, slowed: 39 });
  });

  test("the third failed AUTH on one connection is answered 421 4.7.0 and closes it", async () => {
    h = await startHarness({ intake: { authFile } });
    const wrong = plainAuth("cyrus", "guess");
    const replies = await dialog(h.intake.port, ["EHLO client.example", wrong, wrong, wrong, wrong]);
    expect(replies.slice(2)).toEqual([
      "535 5.7.8 Authentication credentials invalid",
      expect.stringMatching(/^454 4\.7\.0 Too many failed logins/),
      "421 4.7.0 3 failed authentication attempts; closing the connection",
    ]);
  });

  test("STARTTLS is offered with a certificate and carries the whole transaction", async () => {
    h = await startHarness({ intake: { tls: { cert: cert.certPem, key: cert.keyPem } } });
    const ehlo = await dialog(h.intake.port, ["EHLO client.example"]);
    expect(ehlo[1]).toContain("250-STARTTLS");
    const r = await h.send({
      from: "alice@example.com",
      to: ["bob@ischedule.example"],
      raw: cyrusMail({ to: ["bob@ischedule.example"] }),
      transport: { requireTLS: true, tls: { ca: [ca.caCertPem] } },
    });
    expect(r.ok).toBe(true);
    expect(await h.queued()).toHaveLength(1);
  });

  test("without a certificate STARTTLS is not offered", async () => {
    h = await startHarness();
    const ehlo = await dialog(h.intake.port, ["EHLO client.example"]);
    expect(ehlo[1]).not.toContain("STARTTLS");
  });

  test("with a certificate, AUTH is only possible after STARTTLS", async () => {
    h = await startHarness({ intake: { authFile, tls: { cert: cert.certPem, key: cert.keyPem } } });
    const clear = await dialog(h.intake.port, [
      "EHLO client.example",
      "AUTH PLAIN AGN5cnVzAGNhbGVuZGFyLXNlY3JldA==",
    ]);
    expect(clear[2]).toMatch(/^538 .*STARTTLS/);
    const secure = await h.send({
      from: "alice@example.com",
      to: [CAROL],
      raw: plainMail(),
      transport: {
        requireTLS: true,
        tls: { ca: [ca.caCertPem] },
        auth: { user: "cyrus", pass: "calendar-secret" },
      },
    });
    expect(secure.ok).toBe(true);
  });

  test("a message over the size limit gets 552 5.3.4 after DATA and nothing is queued or relayed", async () => {
    h = await startHarness({ intake: { maxSizeBytes: 4096 } });
    const big = cyrusMail().replace("You have been invited", `${"x".repeat(8000)}\r\nYou have been invited`);
    const replies = await dialog(h.intake.port, [
      "EHLO client.example",
      "MAIL FROM:<alice@example.com>",
      "RCPT TO:<bob@ischedule.example>",
      "DATA",
      `${big.replace(/^\./gm, "..")}.`,
    ]);
    expect(replies[1]).toMatch(/^250[- ]SIZE 4096$/m);
    expect(replies.at(-1)).toMatch(/^552 5\.3\.4 The message exceeds the limit of 4096 octets/);
    expect(await h.queued()).toHaveLength(0);
    expect(h.sink.connections()).toBe(0);
  });

  test("a client that announces an oversized message is refused with 552 before sending it", async () => {
    h = await startHarness({ intake: { maxSizeBytes: 4096 } });
    const replies = await dialog(h.intake.port, [
      "EHLO client.example",
      "MAIL FROM:<alice@example.com> SIZE=10000",
    ]);
    expect(replies[2]).toMatch(/^552 /);
  });
});

const plainAuth = (user: string, password: string) =>
  `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString("base64")}`;

/**
 * `n` connections that each say EHLO, then all send `auth` in the same instant; the reply each got.
 */
async function authAtOnce(port: number, n: number, auth: string): Promise<string[]> {
  const connections = await Promise.all(
    Array.from({ length: n }, async () => {
      const socket = net.connect(port, "127.0.0.1");
      socket.setEncoding("latin1");
      let buffer = "";
      let waiting: ((line: string) => void) | undefined;
      const lines: string[] = [];
      socket.on("data", (d: string) => {
        buffer += d;
        for (let end = buffer.indexOf("\r\n"); end !== -1; end = buffer.indexOf("\r\n")) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          // The last line of a reply: three digits and a space (RFC 5321 §4.2.1).
          if (!/^\d{3} /.test(line)) continue;
          if (waiting) waiting(line);
          else lines.push(line);
        }
      });
      socket.on("error", () => {});
      const reply = () =>
        new Promise<string>((resolve) => {
          const queued = lines.shift();
          if (queued !== undefined) resolve(queued);
          else
            waiting = (line) => {
              waiting = undefined;
              resolve(line);
            };
        });
      await reply();
      socket.write("EHLO client.example\r\n");
      await reply();
      return { socket, reply };
    }),
  );
  for (const c of connections) c.socket.write(`${auth}\r\n`);
  const replies = await Promise.all(connections.map((c) => c.reply()));
  for (const c of connections) c.socket.destroy();
  return replies;
}
