/**
 * A free TCP port on 127.0.0.1, for servers whose port must be known before they start (DNS records,
 * a Cyrus smtp_host). Ports come from below the kernel's ephemeral range (32768 and up on Linux), so
 * the many client connections of a test run cannot take the port between this check and its use.
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

export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (await tryPort(port)) return port;
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}
