/**
 * When the smarthost fails after the iSchedule part was committed: the client is told to retry, and
 * the retry neither queues the invitation again nor mails it twice to recipients already served.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { type RunningSmtpServer, startSmtpServer } from "../support/smtp-server.ts";
import { type Harness, type Switch, startHarness, startSwitch } from "./_harness.ts";
import { bytes, cyrusMail, itipRequest } from "./_messages.ts";

const BOB = "bob@ischedule.example";
const CAROL = "carol@mail-only.example";
const DAN = "dan@mail-only.example";

let h: Harness | undefined;
let sw: Switch | undefined;
const extra: RunningSmtpServer[] = [];
afterEach(async () => {
  await h?.stop();
  await sw?.stop();
  for (const s of extra.splice(0)) await s.stop();
  h = undefined;
  sw = undefined;
});

describe("SMTP intake when the smarthost fails", () => {
  test("a smarthost that is down gives 451 4.4.0; the retry relays without queuing the invitation again", async () => {
    sw = await startSwitch(undefined);
    h = await startHarness({ relayPort: sw.port });
    const raw = bytes(cyrusMail());
    const first = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw });
    expect(!first.ok && first.response).toMatch(
      /^451 4\.4\.0 The smarthost did not take the message now .*1 recipient\(s\) already handled/,
    );
    expect(await h.queued()).toHaveLength(1);

    sw.point(h.sink.port);
    const retry = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw });
    expect(retry.ok && retry.response).toBe("250 2.0.0 Accepted: 1 relayed");
    expect(await h.queued()).toHaveLength(1);
    expect((await h.queued())[0]!.deliveries).toHaveLength(1);
    const relayed = await h.sink.waitFor(1);
    expect(relayed.map((m) => m.rcptTo)).toEqual([[CAROL]]);

    // A third, unrelated transaction with the same bytes starts afresh: the memory was cleared.
    const again = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw });
    expect(again.ok).toBe(true);
    expect(await h.queued()).toHaveLength(2);
  });

  test("a temporary refusal of one relay recipient: 451, and the retry mails only that recipient", async () => {
    const refusing = await startSmtpServer({ recipientReplies: { [CAROL]: 451 } });
    extra.push(refusing);
    sw = await startSwitch(refusing.port);
    h = await startHarness({ relayPort: sw.port });
    const itip = itipRequest({ attendees: [BOB, CAROL, DAN] });
    const raw = bytes(cyrusMail({ itip }));
    const first = await h.send({ from: "alice@example.com", to: [BOB, CAROL, DAN], raw });
    expect(!first.ok && first.code).toBe(451);
    expect(refusing.messages.map((m) => m.rcptTo)).toEqual([[DAN]]);

    sw.point(h.sink.port);
    const retry = await h.send({ from: "alice@example.com", to: [BOB, CAROL, DAN], raw });
    expect(retry.ok).toBe(true);
    expect((await h.sink.waitFor(1)).map((m) => m.rcptTo)).toEqual([[CAROL]]);
    expect((await h.queued()).flatMap((q) => q.deliveries.map((d) => d.recipient))).toEqual([
      `mailto:${BOB}`,
    ]);
  });

  test("a permanent refusal gives 554 5.0.0 naming the refused recipient; the iSchedule part stays queued", async () => {
    h = await startHarness({ sink: { recipientReplies: { [CAROL]: 550 } } });
    const r = await h.send({ from: "alice@example.com", to: [BOB, CAROL], raw: cyrusMail() });
    expect(!r.ok && r.response).toMatch(
      /^554 5\.0\.0 The smarthost refused carol@mail-only\.example .*the other 1 recipient\(s\) got it/,
    );
    expect(await h.queued()).toHaveLength(1);
    expect(h.sink.messages).toHaveLength(0);
  });
});
