/** Messages, deliveries, attempts and a clock for the queue tests. */
import type { DeliveryQueueOptions, NewDelivery } from "../../src/queue/queue.ts";
import type { NewAttempt } from "../../src/store/sqlite/attempts.ts";
import type { NewMessage } from "../../src/store/sqlite/messages.ts";

export const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public ms = T0) {}
  readonly nowMs = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export function queueOptions(clock: TestClock, extra: DeliveryQueueOptions = {}): DeliveryQueueOptions {
  return { nowMs: clock.nowMs, random: () => 0.5, ...extra };
}

export function invitation(extra: Partial<NewMessage> = {}): NewMessage {
  return {
    direction: "outbound",
    intake: "api",
    originator: "mailto:alice@example.com",
    method: "REQUEST",
    component: "VEVENT",
    uid: "event-1@example.com",
    summary: "Planning",
    organizer: "mailto:alice@example.com",
    contentType: "text/calendar; charset=utf-8; method=REQUEST",
    body: "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
    ...extra,
  };
}

export function recipients(n: number, extra: Partial<NewDelivery> = {}): NewDelivery[] {
  return Array.from({ length: n }, (_, i) => ({
    recipient: `mailto:user${i}@peer.example`,
    domain: "peer.example",
    route: "ischedule" as const,
    target: "https://peer.example/.well-known/ischedule",
    ...extra,
  }));
}

export function attempt(extra: Partial<NewAttempt> = {}): NewAttempt {
  return {
    startedAt: T0,
    durationMs: 120,
    route: "ischedule",
    target: "https://peer.example/.well-known/ischedule",
    httpStatus: 200,
    requestStatus: "2.0;Success",
    outcome: "delivered",
    ...extra,
  };
}
