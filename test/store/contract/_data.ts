/** Messages and deliveries for the store contract: the smallest rows the queue would store. */
import type { DeliveryToStore, NewMessage, Store, StoredMessage } from "../../../src/store/store.ts";

export const T0 = 1_700_000_000_000;

let uuids = 0;

/** A bytea round-trip check needs bytes that are not valid UTF-8 text, including 0x00 and 0xff. */
export const BODY = new Uint8Array([0x42, 0x45, 0x47, 0x49, 0x4e, 0x00, 0xff, 0xfe, 0x0d, 0x0a]);

export function message(o: Partial<NewMessage> = {}): NewMessage & { uuid: string; receivedAt: number } {
  return {
    uuid: `contract-${process.pid}-${++uuids}`,
    receivedAt: T0,
    direction: "inbound",
    intake: "ischedule",
    originator: "mailto:organizer@peer.example",
    method: "REQUEST",
    component: "VEVENT",
    contentType: "text/calendar",
    body: BODY,
    headers: [["Originator", "mailto:organizer@peer.example"]],
    ...o,
  };
}

export function queued(recipient: string, nextAttemptAt = T0): DeliveryToStore {
  return {
    recipient,
    domain: recipient.split("@")[1]!,
    route: "local",
    target: null,
    state: "queued",
    requestStatus: null,
    lastError: null,
    nextAttemptAt,
    fallbackAt: null,
  };
}

/** A message with `n` queued deliveries, due at T0 + i. */
export function acceptQueued(store: Store, n: number, o: Partial<NewMessage> = {}): Promise<StoredMessage> {
  const deliveries = Array.from({ length: n }, (_, i) => queued(`r${i}@example.com`, T0 + i));
  return store.accept({ message: message(o), deliveries, nowMs: T0 });
}

export const lease = (owner: string, nowMs = T0 + 1_000_000) => ({
  owner,
  nowMs,
  leaseExpiresAt: nowMs + 60_000,
});
