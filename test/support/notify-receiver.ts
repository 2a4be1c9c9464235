/**
 * A listener on a Unix datagram socket, as systemd's notification socket is: socat (Debian's
 * `socat`, scripts/install-test-deps.sh) receiving on a path or an abstract name and writing what it
 * gets to its standard output. Independent of isched's own code, it shows what a supervisor would
 * read.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface NotifyReceiver {
  /** The value to give as NOTIFY_SOCKET: a path, or `@name` for an abstract socket. */
  readonly socket: string;
  /** Everything received so far, datagrams one after another. */
  received(): string;
  /** Resolves when what was received contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<string>;
  stop(): void;
}

export async function startNotifyReceiver(
  o: { dir: string } | { abstract: string },
): Promise<NotifyReceiver> {
  const socket = "dir" in o ? join(o.dir, "notify") : `@${o.abstract}`;
  const address = "dir" in o ? `UNIX-RECV:${socket}` : `ABSTRACT-RECV:${o.abstract}`;
  const child = spawn("socat", ["-u", address, "STDOUT"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString("utf8");
  });
  child.stderr.on("data", (c: Buffer) => {
    err += c.toString("utf8");
  });
  const bound = () =>
    "dir" in o ? existsSync(socket) : readFileSync("/proc/net/unix", "utf8").includes(` @${o.abstract}\n`);
  for (let i = 0; !bound(); i++) {
    if (i > 200 || child.exitCode !== null) throw new Error(`socat did not bind ${socket}: ${err}`);
    await Bun.sleep(10);
  }
  return {
    socket,
    received: () => out,
    async waitFor(text, timeoutMs = 5000) {
      const until = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (Date.now() > until)
          throw new Error(`the notification socket did not get "${text}"; it got "${out}"`);
        await Bun.sleep(10);
      }
      return out;
    },
    stop: () => {
      child.kill("SIGTERM");
    },
  };
}
