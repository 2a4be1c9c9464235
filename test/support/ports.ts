/**
 * A free TCP port on 127.0.0.1, for servers whose port must be known before they start (DNS records,
 * a Cyrus smtp_host). Ports come from below the kernel's ephemeral range (32768 and up on Linux), so
 * the many client connections of a test run cannot take the port between this check and its use.
 * A port is handed out once per test process: two calls before the first server binds (a test's
 * endpoint port, then pebble's or dnsmasq's) would otherwise get the same free port about once in
 * 12,000 pairs, which across the suite's thousands of calls failed a CI run (a server that cannot
 * bind exits at start).
 */
import { createServer } from "node:net";

const LOW = 20_000;
const HIGH = 32_000;

function tryPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

const handedOut = new Set<number>();

export async function freePort(): Promise<number> {
  // After most of the range has been handed out, start again rather than fail.
  if (handedOut.size > (HIGH - LOW) / 2) handedOut.clear();
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await tryPort(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}
