/**
 * A local calendar server stand-in behind the `webhook:` target, whose answer a test switches
 * (refuse with 3.7, then accept), so a delivery can fail and then be retried to success.
 */
export interface TestWebhook {
  readonly url: string;
  /** The request-status given to every recipient from now on. */
  status: string;
  readonly hits: number;
  stop(): void;
}

export function startWebhook(initial = "2.0;Success"): TestWebhook {
  let hits = 0;
  const hook = {
    status: initial,
    get hits() {
      return hits;
    },
  } as { status: string; readonly hits: number };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      hits++;
      const body = (await req.json()) as { recipients: string[] };
      return Response.json({
        recipients: body.recipients.map((recipient) => ({
          recipient,
          status: hook.status,
          description: "test hook",
        })),
      });
    },
  });
  return Object.assign(hook, {
    url: `http://127.0.0.1:${server.port}/hook`,
    stop: () => {
      server.stop(true);
    },
  });
}

/** Polls until `check` holds (or fails the test after `timeoutMs`). */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error("timed out waiting for a condition");
    await Bun.sleep(50);
  }
}
