/**
 * Clients that keep sending HTTPS requests until stopped, and count every request that did not get
 * the expected answer: for tests that change a listener under load (a certificate swap) and must show
 * that no request failed meanwhile. Half the loops keep their connections alive, half open a new
 * connection for every request.
 *
 * The new-connection loops pause between requests: each closed connection holds an ephemeral port
 * in TIME_WAIT for a minute, and on Linux a port in TIME_WAIT cannot be listened on, so thousands of
 * them would make later tests that listen on a kernel-chosen UDP port's number over TCP fail.
 */
export interface RequestLoopOptions {
  url: string;
  /** The CAs the client trusts. */
  ca: string | string[];
  serverName?: string;
  /** A POST with a body of this many bytes; a GET when absent. */
  bodyBytes?: number;
  /** The answer's text each request must get. */
  expect: string;
  /** Loops of each kind (kept-alive and new connection). Default 2. */
  loops?: number;
  /** The pause between two requests of a new-connection loop. Default 20 ms. */
  newConnectionPauseMs?: number;
}

export interface RequestLoopResult {
  ok: number;
  failures: string[];
}

export function startRequestLoop(o: RequestLoopOptions): { stop(): Promise<RequestLoopResult> } {
  let running = true;
  const result: RequestLoopResult = { ok: 0, failures: [] };
  const loop = async (fresh: boolean): Promise<void> => {
    while (running) {
      try {
        const r = await fetch(o.url, {
          method: o.bodyBytes === undefined ? "GET" : "POST",
          body: o.bodyBytes === undefined ? undefined : "x".repeat(o.bodyBytes),
          headers: fresh ? { Connection: "close" } : {},
          tls: { ca: o.ca, serverName: o.serverName },
        });
        const text = await r.text();
        if (r.status === 200 && text === o.expect) result.ok++;
        else result.failures.push(`${r.status} ${text.slice(0, 100)}`);
      } catch (e) {
        result.failures.push((e as Error).message);
      }
      if (fresh) await Bun.sleep(o.newConnectionPauseMs ?? 20);
    }
  };
  const n = o.loops ?? 2;
  const loops = [
    ...Array.from({ length: n }, () => loop(false)),
    ...Array.from({ length: n }, () => loop(true)),
  ];
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}
