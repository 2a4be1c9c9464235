/**
 * createSmtpSender() against a real SMTP server (test/support/smtp-server.ts) over real sockets on
 * loopback: what arrives is parsed with mailparser, and the relay's refusals, outages and TLS set-ups
 * are checked for how the result classifies them.
 */

import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type Socket } from "node:net";
import { simpleParser } from "mailparser";
import {
  buildImipMessage,
  createSmtpSender,
  type ImipMessage,
  imipBodies,
  imipSubject,
  parseSmtpUrl,
  type SmtpResult,
  type SmtpSender,
} from "../../src/imip/index.ts";
import { createTestCa, type IssuedCert, type TestCa } from "../support/pki.ts";
import { type RunningSmtpServer, type SmtpServerOptions, startSmtpServer } from "../support/smtp-server.ts";
import { A1_CANCEL, A1_REPLY, NON_ASCII_REQUEST, NON_ASCII_SUMMARY, requestOptions } from "./_fixtures.ts";
import { header, mimeTree, outline } from "./_mime-tree.ts";

const PASSWORD = "pä55:w/rd@%42";
let ca: TestCa;
let cert: IssuedCert;
const running: { servers: RunningSmtpServer[]; senders: SmtpSender[] } = { servers: [], senders: [] };

beforeAll(() => {
  ca = createTestCa();
  cert = ca.issue(["localhost", "127.0.0.1"]);
});
afterAll(() => ca.remove());
afterEach(async () => {
  for (const s of running.senders.splice(0)) s.close();
  await Promise.all(running.servers.splice(0).map((s) => s.stop()));
});

async function server(options: SmtpServerOptions = {}): Promise<RunningSmtpServer> {
  const s = await startSmtpServer(options);
  running.servers.push(s);
  return s;
}

function sender(url: string, extra: { ca?: string; connectTimeoutMs?: number } = {}): SmtpSender {
  const s = createSmtpSender({ url: parseSmtpUrl(url), name: "isched.example.net", ...extra });
  running.senders.push(s);
  return s;
}

const tlsOptions = () => ({ certPem: cert.certPem, keyPem: cert.keyPem });
const userinfo = `isched:${encodeURIComponent(PASSWORD)}`;

function invitation(to = ["cyrus@example.org"]): ImipMessage {
  return buildImipMessage(requestOptions({ to }));
}

function expectFailure(r: SmtpResult): Extract<SmtpResult, { ok: false }> {
  if (r.ok) throw new Error(`expected a failure, got ${r.response}`);
  return r;
}

describe("sending iMIP messages to a real SMTP server", () => {
  test("the server receives the built bytes, from MAIL FROM isched's address to RCPT TO the attendee", async () => {
    const smtp = await server();
    const msg = invitation();
    const result = await sender(`smtp://127.0.0.1:${smtp.port}`).send(msg);
    expect(result).toMatchObject({
      ok: true,
      accepted: ["cyrus@example.org"],
      rejected: [],
      rejections: [],
      messageId: msg.messageId,
    });
    if (result.ok) expect(result.response).toStartWith("250");
    const [received] = await smtp.waitFor(1);
    expect(received!.mailFrom).toBe("isched@example.net");
    expect(received!.rcptTo).toEqual(["cyrus@example.org"]);
    expect(received!.ehloName).toBe("isched.example.net");
    expect(Buffer.from(received!.raw).equals(Buffer.from(msg.raw))).toBe(true);
  });

  test("a received REQUEST parses as an invitation: MIME tree, calendar part, attachment and headers", async () => {
    const smtp = await server();
    const subject = imipSubject({ method: "REQUEST", summary: NON_ASCII_SUMMARY, sequence: 2 });
    const bodies = imipBodies({ title: subject, when: "Thu 2 Sep 2004, 13:00-14:00 UTC" });
    const msg = buildImipMessage(
      requestOptions({
        itipText: NON_ASCII_REQUEST,
        subject,
        textBody: bodies.text,
        htmlBody: bodies.html,
        from: { address: "isched@example.net", name: "Bernard Désruisseaux via isched" },
      }),
    );
    expect((await sender(`smtp://127.0.0.1:${smtp.port}`).send(msg)).ok).toBe(true);
    const [received] = await smtp.waitFor(1);

    expect(outline(mimeTree(received!.raw))).toEqual([
      "multipart/mixed",
      "  multipart/alternative",
      "    text/plain",
      "    text/html",
      "    text/calendar",
      "  application/ics",
    ]);
    const mail = await simpleParser(Buffer.from(received!.raw));
    expect(mail.subject).toBe(`Updated invitation: ${NON_ASCII_SUMMARY}`);
    expect(mail.from?.value).toEqual([
      { address: "isched@example.net", name: "Bernard Désruisseaux via isched" },
    ]);
    expect(mail.replyTo?.value).toEqual([{ address: "bernard@example.com", name: "" }]);
    expect(mail.date?.toISOString()).toBe("2004-09-01T20:02:00.000Z");
    expect(mail.messageId).toBe(msg.messageId);
    expect(mail.headers.get("auto-submitted")).toBe("auto-generated");
    expect(mail.text).toContain("When: Thu 2 Sep 2004, 13:00-14:00 UTC");
    expect(mail.html).toContain(`<h2>Updated invitation: ${NON_ASCII_SUMMARY}</h2>`);

    const calendar = mail.attachments.find((a) => a.contentType === "text/calendar");
    expect(calendar?.headers.get("content-type")).toMatchObject({
      value: "text/calendar",
      params: { method: "REQUEST", charset: "UTF-8", component: "VEVENT" },
    });
    expect(calendar?.content.equals(Buffer.from(NON_ASCII_REQUEST, "utf8"))).toBe(true);
    const ics = mail.attachments.find((a) => a.contentType === "application/ics");
    expect(ics?.contentDisposition).toBe("attachment");
    expect(ics?.filename).toBe("invite.ics");
    expect(ics?.content.equals(Buffer.from(NON_ASCII_REQUEST, "utf8"))).toBe(true);
  });

  test("a REPLY and a CANCEL arrive with their method, Reply-To and subject", async () => {
    const smtp = await server();
    const send = sender(`smtp://127.0.0.1:${smtp.port}`);
    const reply = buildImipMessage(
      requestOptions({
        itipText: A1_REPLY,
        method: "REPLY",
        from: { address: "isched@example.org", name: "Cyrus Daboo via isched" },
        replyTo: "cyrus@example.org",
        to: ["bernard@example.com"],
        subject: imipSubject({ method: "REPLY", summary: "Design meeting", partstat: "ACCEPTED" }),
        uid: "reply-1",
      }),
    );
    const cancel = buildImipMessage(
      requestOptions({
        itipText: A1_CANCEL,
        method: "CANCEL",
        subject: imipSubject({ method: "CANCEL", summary: "Design meeting" }),
        uid: "cancel-1",
      }),
    );
    expect((await send.send(reply)).ok).toBe(true);
    expect((await send.send(cancel)).ok).toBe(true);
    const [r, c] = await smtp.waitFor(2);

    expect(r!.mailFrom).toBe("isched@example.org");
    expect(r!.rcptTo).toEqual(["bernard@example.com"]);
    const replyMail = await simpleParser(Buffer.from(r!.raw));
    expect(replyMail.subject).toBe("Accepted: Design meeting");
    expect(replyMail.replyTo?.value[0]?.address).toBe("cyrus@example.org");
    expect(header(mimeTree(r!.raw).children[0]!.children[2]!, "content-type")).toBe(
      "text/calendar; method=REPLY; charset=UTF-8; component=VEVENT",
    );
    const cancelMail = await simpleParser(Buffer.from(c!.raw));
    expect(cancelMail.subject).toBe("Cancelled: Design meeting");
    const part = cancelMail.attachments.find((a) => a.contentType === "text/calendar");
    expect(part?.headers.get("content-type")).toMatchObject({ params: { method: "CANCEL" } });
    expect(part?.content.toString("utf8")).toBe(A1_CANCEL);
  });

  test("several messages go over one pooled connection", async () => {
    const smtp = await server();
    const send = sender(`smtp://127.0.0.1:${smtp.port}`);
    for (const uid of ["m1", "m2", "m3"]) {
      expect((await send.send(buildImipMessage(requestOptions({ uid })))).ok).toBe(true);
    }
    await smtp.waitFor(3);
    expect(smtp.connections()).toBe(1);
  });
});

describe("classifying what the relay answers", () => {
  test("451 for the only recipient is a temporary failure with the code and the reply", async () => {
    const smtp = await server({ recipientReplies: { "cyrus@example.org": 451 } });
    const r = expectFailure(await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation()));
    expect(r).toMatchObject({ temporary: true, kind: "envelope", code: 451 });
    expect(r.response).toStartWith("451 ");
    expect(r.rejections).toEqual([
      { address: "cyrus@example.org", code: 451, response: expect.stringContaining("451"), temporary: true },
    ]);
    expect(r.message).toStartWith(`Cannot send through smtp://127.0.0.1:${smtp.port}: `);
    expect(smtp.messages).toHaveLength(0);
  });

  test("550 for the only recipient is a permanent failure", async () => {
    const smtp = await server({ recipientReplies: { "cyrus@example.org": 550 } });
    const r = expectFailure(await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation()));
    expect(r).toMatchObject({ temporary: false, kind: "envelope", code: 550 });
    expect(r.rejections.map((x) => [x.address, x.code, x.temporary])).toEqual([
      ["cyrus@example.org", 550, false],
    ]);
  });

  test("one refused recipient among several is reported while the others get the message", async () => {
    const smtp = await server({ recipientReplies: { "gone@example.org": 550, "full@example.org": 452 } });
    const to = ["cyrus@example.org", "gone@example.org", "full@example.org"];
    const result = await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation(to));
    if (!result.ok) throw new Error(result.message);
    expect(result.accepted).toEqual(["cyrus@example.org"]);
    expect(result.rejected.sort()).toEqual(["full@example.org", "gone@example.org"]);
    const byAddress = Object.fromEntries(result.rejections.map((x) => [x.address, [x.code, x.temporary]]));
    expect(byAddress).toEqual({ "gone@example.org": [550, false], "full@example.org": [452, true] });
    const [received] = await smtp.waitFor(1);
    expect(received!.rcptTo).toEqual(["cyrus@example.org"]);
  });

  test("a refused MAIL FROM follows its reply code: 553 permanent, 451 temporary", async () => {
    for (const [code, temporary] of [
      [553, false],
      [451, true],
    ] as const) {
      const smtp = await server({ senderReplies: { "isched@example.net": code } });
      const r = expectFailure(await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation()));
      expect(r).toMatchObject({ temporary, kind: "envelope", code, rejections: [] });
    }
  });

  test("a message refused at the end of DATA follows its reply code: 554 permanent, 452 temporary", async () => {
    for (const [code, temporary] of [
      [554, false],
      [452, true],
    ] as const) {
      const smtp = await server({ dataReply: code });
      const r = expectFailure(await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation()));
      expect(r).toMatchObject({ temporary, kind: "message", code });
      expect(smtp.messages).toHaveLength(0);
    }
  });

  test("a server that is down is a temporary connection failure", async () => {
    const smtp = await startSmtpServer();
    const port = smtp.port;
    await smtp.stop();
    const r = expectFailure(await sender(`smtp://127.0.0.1:${port}`).send(invitation()));
    expect(r).toMatchObject({ temporary: true, kind: "connect" });
    expect(r.code).toBeUndefined();
  });

  test("a server that refuses new connections with 421 after N messages is a temporary failure", async () => {
    const smtp = await server({ refuseConnectionsAfter: 1 });
    const url = `smtp://127.0.0.1:${smtp.port}`;
    const first = sender(url);
    expect((await first.send(invitation())).ok).toBe(true);
    first.close();
    const r = expectFailure(await sender(url).send(invitation()));
    expect(r).toMatchObject({ temporary: true, code: 421 });
    expect(smtp.messages).toHaveLength(1);
  });

  test("a server that never greets is a temporary timeout", async () => {
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    try {
      const started = performance.now();
      const r = expectFailure(
        await sender(`smtp://127.0.0.1:${port}`, { connectTimeoutMs: 300 }).send(invitation()),
      );
      expect(r).toMatchObject({ temporary: true, kind: "timeout" });
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test("an empty envelope is a permanent failure without touching the network", async () => {
    const smtp = await server();
    const msg = invitation();
    const r = expectFailure(
      await sender(`smtp://127.0.0.1:${smtp.port}`).send({
        raw: msg.raw,
        envelope: { from: msg.envelope.from, to: [] },
      }),
    );
    expect(r).toMatchObject({ temporary: false, kind: "envelope" });
    expect(smtp.connections()).toBe(0);
  });
});

describe("TLS and credentials", () => {
  test("STARTTLS with the test CA: the message arrives encrypted and authenticated", async () => {
    const smtp = await server({ tls: tlsOptions(), auth: { user: "isched", password: PASSWORD } });
    const r = await sender(`smtp://${userinfo}@127.0.0.1:${smtp.port}`, { ca: ca.caCertPem }).send(
      invitation(),
    );
    expect(r.ok).toBe(true);
    const [received] = await smtp.waitFor(1);
    expect(received!.secure).toBe(true);
    expect(received!.user).toBe("isched");
  });

  test("without credentials STARTTLS is still used when offered", async () => {
    const smtp = await server({ tls: tlsOptions() });
    expect((await sender(`smtp://127.0.0.1:${smtp.port}`, { ca: ca.caCertPem }).send(invitation())).ok).toBe(
      true,
    );
    expect((await smtp.waitFor(1))[0]!.secure).toBe(true);
  });

  test("smtps:// speaks TLS from the first byte", async () => {
    const smtp = await server({ tls: { ...tlsOptions(), implicit: true } });
    const r = await sender(`smtps://127.0.0.1:${smtp.port}`, { ca: ca.caCertPem }).send(invitation());
    expect(r.ok).toBe(true);
    expect((await smtp.waitFor(1))[0]!.secure).toBe(true);
  });

  test("a certificate from an unknown CA is refused: a temporary TLS failure, nothing sent", async () => {
    const smtp = await server({ tls: tlsOptions() });
    const r = expectFailure(await sender(`smtp://127.0.0.1:${smtp.port}`).send(invitation()));
    expect(r).toMatchObject({ temporary: true, kind: "tls" });
    expect(smtp.messages).toHaveLength(0);
  });

  test("with credentials and no STARTTLS offered, nothing is sent and the password stays home", async () => {
    const smtp = await server({ auth: { user: "isched", password: PASSWORD, allowInsecure: true } });
    const r = expectFailure(await sender(`smtp://${userinfo}@127.0.0.1:${smtp.port}`).send(invitation()));
    expect(r.temporary).toBe(true);
    expect(r.kind).toBe("tls");
    expect(smtp.logins).toEqual([]);
    expect(smtp.messages).toHaveLength(0);
  });

  test("a refused login is temporary, and a server echoing the password does not get it into the result", async () => {
    const smtp = await server({
      tls: tlsOptions(),
      auth: { user: "isched", password: "the-right-one", echoCredentialsOnFailure: true },
    });
    const r = expectFailure(
      await sender(`smtp://${userinfo}@127.0.0.1:${smtp.port}`, { ca: ca.caCertPem }).send(invitation()),
    );
    expect(r).toMatchObject({ temporary: true, kind: "auth", code: 535 });
    expect(smtp.logins).toEqual(["isched"]);
    expect(r.response).toContain("got user isched password ***");
    const everything = JSON.stringify(r);
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), Buffer.from(PASSWORD).toString("base64")]) {
      expect(everything).not.toContain(secret);
    }
    expect(r.message).toContain(`smtp://isched:***@127.0.0.1:${smtp.port}`);
  });
});
