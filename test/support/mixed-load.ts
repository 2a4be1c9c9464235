/**
 * The mixed load of the kill -9 tests (test/integration/fault-kill9*.test.ts), against an isched A
 * serving a.test: a peer's senders POST signed invitations for A's users (retrying a request that
 * got no answer with the same bytes, as senders do), and an organiser's calendar server submits
 * invitations for carol@b.test through A's API. What A answered as accepted is kept, by UID and
 * recipient, for the checks at the end; `tally` reads a recording webhook the same way.
 */
import type { SigningKey } from "../../src/dkim/sign.ts";
import { invitation, statuses } from "./isched.ts";
import { rawExchange } from "./raw-http.ts";
import type { RecordingWebhook } from "./recording-webhook.ts";
import { signedPostBytes } from "./signed-post.ts";

export const LOCAL_USERS = ["mailto:ann@a.test", "mailto:bob@a.test"];
export const REMOTE_USER = "mailto:carol@b.test";

/** "uid recipient", the key of everything the load and the checks count. */
export const loadKey = (uid: string, recipient: string) => `${uid} ${recipient.toLowerCase()}`;

export class MixedLoad {
  /** What A answered as accepted: "uid recipient". */
  readonly accepted = new Set<string>();
  /** Submissions that got no answer (A died meanwhile): they may or may not have been stored. */
  readonly unanswered: string[] = [];
  readonly unexpected: string[] = [];
  inboundResends = 0;
  #stop = false;
  #running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly o: {
      /** A's iSchedule endpoint and console ports (the same across A's restarts). */
      endpointPort: number;
      consolePort: number;
      /** A's API token (read once A first came up). */
      token: () => string;
      peerKey: SigningKey;
    },
  ) {}

  start(workers: { inbound: number; outbound: number }): void {
    this.#running = Promise.all([
      ...Array.from({ length: workers.inbound }, (_, w) => this.#inbound(w)),
      ...Array.from({ length: workers.outbound }, (_, w) => this.#outbound(w)),
    ]);
  }

  /** Ends the load once each worker's request in progress is answered (or, with A down, given up). */
  async stop(): Promise<void> {
    this.#stop = true;
    await this.#running;
  }

  /** The UIDs of the requests A answered as accepted so far. */
  acceptedUids(): string[] {
    return [...new Set([...this.accepted].map((k) => k.split(" ")[0]!))];
  }

  /** A peer's sender: a new invitation, then the same bytes again until A answers. */
  async #inbound(w: number): Promise<void> {
    for (let n = 0; !this.#stop; n++) {
      const uid = `in-${w}-${n}`;
      const body = invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: LOCAL_USERS });
      const bytes = signedPostBytes({
        key: this.o.peerKey,
        originator: "mailto:bernard@peer.test",
        recipients: LOCAL_USERS,
        body,
      });
      for (let tries = 0; ; tries++) {
        if (tries > 0) this.inboundResends++;
        const answer = await rawExchange({
          port: this.o.endpointPort,
          request: bytes,
          timeoutMs: 10_000,
        }).catch(() => undefined);
        if (answer === undefined || answer.status === 503) {
          // Stopped: a request never answered was never accepted, so nothing is owed for it.
          if (this.#stop) return;
          await Bun.sleep(100);
          continue;
        }
        if (answer.status !== 200)
          this.unexpected.push(`${uid}: HTTP ${answer.status} ${answer.text.slice(0, 200)}`);
        const got = statuses(answer.text);
        for (const r of LOCAL_USERS) {
          const status = got[r] ?? "";
          if (/^(2\.0|1\.1|1\.2);/.test(status)) this.accepted.add(loadKey(uid, r));
          else this.unexpected.push(`${uid} ${r}: ${status || "no status"}`);
        }
        break;
      }
    }
  }

  /** An organiser's calendar server submitting invitations for b.test through A's API. */
  async #outbound(w: number): Promise<void> {
    for (let n = 0; !this.#stop; n++) {
      const uid = `out-${w}-${n}`;
      const answer = await fetch(`http://127.0.0.1:${this.o.consolePort}/api/v1/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${this.o.token()}`, "content-type": "text/calendar" },
        body: invitation({ uid, organizer: "mailto:alice@a.test", attendees: [REMOTE_USER] }),
        signal: AbortSignal.timeout(10_000),
      }).catch(() => undefined);
      if (answer === undefined) {
        this.unanswered.push(uid);
        await Bun.sleep(100);
        continue;
      }
      if (answer.status === 202) this.accepted.add(loadKey(uid, REMOTE_USER));
      else this.unexpected.push(`${uid}: HTTP ${answer.status} ${(await answer.text()).slice(0, 200)}`);
    }
  }
}

/**
 * What a webhook received: the message ids by "uid recipient", and how many posts came again for
 * a UID and recipient it had already received.
 */
export function tally(hook: RecordingWebhook): { at: Map<string, Set<string>>; repeats: number } {
  const at = new Map<string, Set<string>>();
  let posts = 0;
  for (const d of hook.deliveries)
    for (const r of d.recipients) {
      posts++;
      const k = loadKey(d.uid ?? "", r);
      at.set(k, new Set([...(at.get(k) ?? []), d.messageId]));
    }
  return { at, repeats: posts - at.size };
}

/** Whether A's (or B's) queue is empty: nothing queued, nothing in flight. */
export async function drained(api: (path: string) => Promise<Response>): Promise<boolean> {
  const res = await api("/overview");
  if (res.status !== 200) return false;
  const overview = (await res.json()) as { queue: Record<string, number> };
  return (overview.queue.queued ?? 0) === 0 && (overview.queue["in-flight"] ?? 0) === 0;
}
