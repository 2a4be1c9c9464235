/**
 * What a queue action really led to. `isched queue imip` only asks the server to send deliveries by
 * e-mail now: whether the relay took them is known once the dispatcher has tried. So the command
 * notes each delivery's attempts before the action, then reads the deliveries again until each has a
 * new attempt (or a final state), and reports that attempt: sent, or refused and queued again, or
 * failed; and says so when nothing happened within the wait.
 */
import type { ApiClient } from "../../console/client.ts";
import type { DeliveryView, MessageView } from "../../console/message-view.ts";

/** A delivery an action named, with its message (the API reads deliveries through their message). */
export interface FollowedDelivery {
  readonly id: number;
  readonly messageId: number | null;
}

export type Followed =
  | { readonly kind: "changed"; readonly delivery: DeliveryView }
  | { readonly kind: "unchanged"; readonly delivery: DeliveryView | undefined; readonly id: number };

const POLL_MS = 200;

async function deliveriesOf(
  api: ApiClient,
  messageIds: readonly number[],
): Promise<Map<number, DeliveryView>> {
  const byId = new Map<number, DeliveryView>();
  for (const messageId of messageIds) {
    const m = await api.call<MessageView>("GET", `/messages/${messageId}`);
    for (const d of m.deliveries) byId.set(d.id, d);
  }
  return byId;
}

/** Each delivery's attempt count now, to recognise the attempt the action leads to. */
export async function attemptCounts(
  api: ApiClient,
  targets: readonly FollowedDelivery[],
): Promise<Map<number, number>> {
  const views = await deliveriesOf(api, messagesOf(targets));
  return new Map(targets.map((t) => [t.id, views.get(t.id)?.attemptList.length ?? 0]));
}

function messagesOf(targets: readonly FollowedDelivery[]): number[] {
  return [...new Set(targets.flatMap((t) => (t.messageId === null ? [] : [t.messageId])))];
}

/** Reads the deliveries until each has an attempt newer than `before` and is not in flight, or `waitMs`. */
export async function follow(
  api: ApiClient,
  targets: readonly FollowedDelivery[],
  before: ReadonlyMap<number, number>,
  waitMs: number,
): Promise<Followed[]> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const views = await deliveriesOf(api, messagesOf(targets));
    const settled = (id: number): boolean => {
      const d = views.get(id);
      if (!d || d.state === "in-flight") return false;
      // A new attempt, or an end without one (an operator cancelled it meanwhile).
      return d.attemptList.length > (before.get(id) ?? 0) || d.state === "cancelled";
    };
    if (targets.every((t) => settled(t.id)) || Date.now() >= deadline) {
      return targets.map((t) => {
        const delivery = views.get(t.id);
        return delivery && settled(t.id)
          ? { kind: "changed", delivery }
          : { kind: "unchanged", delivery, id: t.id };
      });
    }
    await Bun.sleep(POLL_MS);
  }
}

const utc = (ms: number | null): string =>
  ms === null ? "-" : `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC`;

/** One line per delivery: what its latest attempt did. */
export function imipOutcomeLine(f: Followed, waitMs: number): string {
  if (f.kind === "unchanged") {
    const d = f.delivery;
    const where = d ? ` (${d.recipient}): still ${d.state}` : ": not found";
    return `delivery ${f.id}${where}, no attempt within ${Math.round(waitMs / 1000)} s; see 'isched queue show ${d?.messageId ?? ""}'`.trimEnd();
  }
  const d = f.delivery;
  const last = d.attemptList.at(-1);
  const why = d.lastError ?? last?.error ?? last?.requestStatus ?? "";
  const relay = last?.target ? ` through ${last.target}` : "";
  const head = `delivery ${d.id} (${d.recipient})`;
  switch (d.state) {
    case "sent-imip":
      return `${head}: sent by iMIP${relay}${last?.response ? ` (${firstLine(last.response)})` : ""}`;
    case "queued":
      return `${head}: NOT sent: the relay${relay} refused it (${firstLine(why)}); queued again by ${d.route}, next attempt ${utc(d.nextAttemptAt)}`;
    case "failed":
      return `${head}: NOT sent: the relay${relay} refused it (${firstLine(why)}); failed, no more attempts`;
    default:
      return `${head}: ${d.state}${why ? ` (${firstLine(why)})` : ""}`;
  }
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/)[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}
