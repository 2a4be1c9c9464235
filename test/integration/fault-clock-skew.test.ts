/**
 * Clock skew of 4 and 6 minutes either way between isched and a peer, against `t=` and `x=`
 * (docs/security.md, "Clocks"). The rule: 5 minutes of skew are allowed on both; `t=` may be up to
 * 300 s in the receiver's future (draft §7.4 SHOULD), and `x=` up to 300 s in its past (RFC 6376
 * §3.5 makes refusing after x= a MAY; OpenDKIM, Cyrus's DKIM library, allows 300 s on both).
 *
 * 1. isched (the compiled binary, on the real clock) receiving from a skewed peer (this process
 *    signing with its clock moved): with x = t + 3600 (isched, CalendarServer) only a peer 6 minutes
 *    ahead is refused, with the number of seconds in the answer; with x = t + 300 (EGroupware's
 *    choice) a peer 6 minutes behind is still accepted, and 11 minutes behind is not.
 * 2. isched's own signatures checked by receivers whose clocks are skewed: four isched binaries run
 *    on clocks moved by Debian's libfaketime (+4, +6, -4, -6 minutes). The one 6 minutes behind sees
 *    t= 360 s in its future and refuses (403 verification-failed); the sender ends the delivery with
 *    that reason, as it does for every refusal of the whole request (src/delivery/policy.ts), and the
 *    operator can send it by e-mail. The other three take it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import type { AttemptRow } from "../../src/store/sqlite/attempts.ts";
import { ED_PRIVATE, ED_PUBLIC } from "../support/dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "../support/dnsmasq.ts";
import { invitation, statuses } from "../support/isched.ts";
import { createTestCa, type TestCa } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { rawExchange } from "../support/raw-http.ts";
import { labArgs, type ServedBinary, serveBinary, submitInvitation } from "../support/serve-binary.ts";
import { errorElement, signedPostBytes } from "../support/signed-post.ts";

const MINUTE_MS = 60_000;
const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");
/** Receivers on skewed clocks, by name: their offset from the real clock in minutes. */
const SKEWED = { ahead4: 4, ahead6: 6, behind4: -4, behind6: -6 } as const;
type Skewed = keyof typeof SKEWED;
const NAMES = Object.keys(SKEWED) as Skewed[];

let dir: string;
let ca: TestCa;
let dns: RunningDnsmasq;
/** Receives from this process's skewed signatures, on the real clock. */
let receiver: ServedBinary;
/** Sends to the skewed receivers, on the real clock. */
let sender: ServedBinary;
const skewed = new Map<Skewed, ServedBinary>();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "isched-skew-"));
  ca = createTestCa();
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  const key = generateDkimKey("rsa");
  writeFileSync(join(dir, "org.key"), key.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, "org.pub.pem"), key.publicKeyPem);
  const ports = Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, await freePort()] as const)));
  dns = await startDnsmasq({
    zones: ["org.test", ...NAMES.map((n) => `${n}.test`)],
    srv: NAMES.map((n) => ({
      name: `_ischedules._tcp.${n}.test`,
      target: `isched.${n}.test`,
      port: ports[n]!,
    })),
    hosts: NAMES.map((n) => ({ name: `isched.${n}.test`, address: "127.0.0.1" })),
  });
  const started = await Promise.all([
    serveBinary([
      "--domain",
      "org.test",
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      "--sign-unpublished",
    ]),
    serveBinary([
      ...labArgs({
        domain: "org.test",
        keyFile: join(dir, "org.key"),
        selector: "s1",
        dns: dns.server,
        caFile: ca.caCertFile,
      }),
      "--sign-unpublished",
      "--delivery-deadline",
      "5s",
    ]),
    ...NAMES.map((n) => {
      const cert = ca.issue([`isched.${n}.test`]);
      return serveBinary(
        [
          "--domain",
          `${n}.test`,
          "--tls-cert",
          cert.certFile,
          "--tls-key",
          cert.keyFile,
          // isched's key, given out of band: what is checked here is the clock, not the lookup.
          "--peer-key",
          `org.test:s1=${join(dir, "org.pub.pem")}`,
          "--sign-unpublished",
        ],
        { clockOffsetSeconds: SKEWED[n] * 60, listen: `127.0.0.1:${ports[n]}` },
      );
    }),
  ]);
  [receiver, sender] = started;
  for (const [i, n] of NAMES.entries()) skewed.set(n, started[i + 2]!);
}, 60_000);

afterAll(async () => {
  await Promise.all([receiver?.stop(), sender?.stop(), ...[...skewed.values()].map((s) => s.stop())]);
  await dns?.stop();
  ca?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** A request signed by a peer whose clock is `skewMinutes` off, with x = t + expireSeconds. */
async function fromSkewedPeer(skewMinutes: number, expireSeconds: number) {
  const uid = `skew-${skewMinutes}-${expireSeconds}-${crypto.randomUUID()}`;
  const body = invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: ["mailto:ann@org.test"] });
  const bytes = signedPostBytes({
    key: peerKey,
    originator: "mailto:bernard@peer.test",
    body,
    nowMs: Date.now() + skewMinutes * MINUTE_MS,
    expireSeconds,
  });
  const port = Number(new URL(receiver.url).port);
  const answer = await rawExchange({ port, request: bytes });
  return { status: answer.status, ann: statuses(answer.text)["mailto:ann@org.test"], text: answer.text };
}

describe("isched receiving from a peer whose clock is off", () => {
  test("x = t + 3600: 4 minutes either way and 6 minutes behind are accepted, 6 minutes ahead is refused", async () => {
    for (const skew of [4, -4, -6]) {
      const a = await fromSkewedPeer(skew, 3600);
      expect({ skew, status: a.status, ann: a.ann?.slice(0, 3) }).toEqual({ skew, status: 200, ann: "2.0" });
    }
    const ahead = await fromSkewedPeer(6, 3600);
    expect(ahead.status).toBe(403);
    expect(errorElement(ahead.text)).toBe("verification-failed");
    expect(ahead.text).toMatch(/t=\d+ is (359|360|361) seconds in the future \(at most 300 allowed\)/);
  });

  test("x = t + 300: x= up to 5 minutes past is clock skew too, further is expired", async () => {
    for (const skew of [4, -4, -6]) {
      const a = await fromSkewedPeer(skew, 300);
      expect({ skew, status: a.status, ann: a.ann?.slice(0, 3) }).toEqual({ skew, status: 200, ann: "2.0" });
    }
    // 11 minutes behind: x= is 360 s in the past.
    const late = await fromSkewedPeer(-11, 300);
    expect(late.status).toBe(403);
    expect(errorElement(late.text)).toBe("verification-failed");
    expect(late.text).toMatch(/The signature expired at x=\d+, (359|360|361) seconds ago/);
  });
});

describe("isched's signatures checked by a receiver whose clock is off", () => {
  interface DeliveryJson {
    state: string;
    attemptList: AttemptRow[];
  }

  test("+4, +6 and -4 minutes take it; -6 refuses it for t= in its future, and the delivery ends with that reason", async () => {
    const sent = await Promise.all(
      NAMES.map(
        async (n) =>
          [
            n,
            await submitInvitation(sender, { domain: "org.test", attendee: `mailto:bob@${n}.test` }),
          ] as const,
      ),
    );
    const end = Date.now() + 30_000;
    const final = new Map<Skewed, DeliveryJson>();
    while (final.size < NAMES.length) {
      if (Date.now() > end) throw new Error(`not finished: ${NAMES.filter((n) => !final.has(n)).join(", ")}`);
      for (const [n, s] of sent) {
        const shown = await sender.api<{ deliveries: DeliveryJson[] }>(`/messages/${s.id}`);
        const d = shown.body.deliveries[0]!;
        if (d.state === "delivered" || d.state === "sent-imip" || d.state === "failed") final.set(n, d);
      }
      await Bun.sleep(100);
    }
    for (const n of ["ahead4", "ahead6", "behind4"] as const) {
      const d = final.get(n)!;
      expect({ n, state: d.state, status: d.attemptList[0]!.requestStatus }).toEqual({
        n,
        state: "delivered",
        status: "2.0;Success",
      });
    }
    const refused = final.get("behind6")!;
    expect(refused.state).toBe("failed");
    const first = refused.attemptList[0]!;
    expect(first.httpStatus).toBe(403);
    expect(first.requestStatus).toBe("5.2;Invalid calendar service");
    expect(first.error).toContain("could not verify isched's DKIM signature");
    expect(first.error).toMatch(/t=\d+ is (359|360|361) seconds in the future \(at most 300 allowed\)/);
    console.log(`behind6: ${first.error}`);
  }, 60_000);
});
