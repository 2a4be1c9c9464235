/**
 * A webhook delivery target (docs/webhook.md) as a real HTTP server in the test process, for tests
 * that must see every delivery a local target receives: each POST is checked (HMAC signature) and
 * recorded with its message id, UID and recipients, then answered 2.0 for each recipient. A test can
 * hold answers back (`hold`) to keep attempts in flight, or refuse them with 503 for a while.
 */
import { signWebhook, type WebhookRequestBody } from "../../src/targets/webhook-target.ts";

export interface WebhookDelivery {
  readonly messageId: string;
  readonly uid: string | null;
  readonly recipients: readonly string[];
  readonly atMs: number;
}

export interface RecordingWebhook {
  readonly url: string;
  readonly secret: string;
  /** Every delivery answered 2.0, in order of arrival (a repeat of the same message id included). */
  readonly deliveries: WebhookDelivery[];
  /** POSTs whose signature did not verify (answered 401). */
  badSignatures(): number;
  /** While set, answers wait until release() (attempts stay in flight). */
  hold(): void;
  /** POSTs waiting for release() now. */
  waiting(): number;
  release(): void;
  /** While set, every POST is answered 503 and not recorded. */
  refuse(on: boolean): void;
  /** Resolves once `check(deliveries)` holds; rejects after `timeoutMs`. */
  waitFor(check: (d: readonly WebhookDelivery[]) => boolean, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

export function startRecordingWebhook(secret = "fault-webhook-secret-0123456789"): RecordingWebhook {
  const deliveries: WebhookDelivery[] = [];
  let bad = 0;
  let waiting = 0;
  let refusing = false;
  let held: Promise<void> | undefined;
  let releaseHeld: (() => void) | undefined;
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const text = await request.text();
      const timestamp = Number(request.headers.get("x-isched-timestamp"));
      if (request.headers.get("x-isched-signature") !== signWebhook(secret, timestamp, text)) {
        bad++;
        return new Response("bad signature", { status: 401 });
      }
      if (held) {
        waiting++;
        await held;
        waiting--;
      }
      if (refusing) return new Response("busy", { status: 503 });
      const body = JSON.parse(text) as WebhookRequestBody;
      deliveries.push({
        messageId: body.messageId,
        uid: body.uid,
        recipients: body.recipients,
        atMs: Date.now(),
      });
      return Response.json({
        recipients: body.recipients.map((recipient) => ({ recipient, status: "2.0;Success" })),
      });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/isched`,
    secret,
    deliveries,
    badSignatures: () => bad,
    waiting: () => waiting,
    hold() {
      if (held) return;
      held = new Promise((resolve) => {
        releaseHeld = resolve;
      });
    },
    release() {
      releaseHeld?.();
      held = undefined;
    },
    refuse(on) {
      refusing = on;
    },
    async waitFor(check, timeoutMs) {
      const end = Date.now() + timeoutMs;
      while (!check(deliveries)) {
        if (Date.now() > end) throw new Error(`webhook: condition not met after ${timeoutMs} ms`);
        await Bun.sleep(50);
      }
    },
    async stop() {
      releaseHeld?.();
      await server.stop(true);
    },
  };
}
