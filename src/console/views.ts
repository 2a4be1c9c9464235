/** JSON shapes of the API: what the console and the CLI read. Bodies as text, times as ms. */
import type { MessageDetail } from "../queue/queue.ts";

export function messageJson(d: MessageDetail) {
  const { body, ...message } = d.message;
  return {
    ...message,
    body: Buffer.from(body).toString("utf8"),
    deliveries: d.deliveries.map(({ attemptList, ...delivery }) => ({ ...delivery, attempts: attemptList })),
  };
}
