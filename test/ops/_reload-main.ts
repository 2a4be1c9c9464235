/**
 * Run by test/ops/reloader.test.ts as a process of its own: an HTTPS listener whose certificate
 * comes from the files named on the command line, reloaded on SIGHUP through src/ops/reloader.ts
 * (as `isched serve` will be wired), logging JSON lines on standard error and notifying
 * $NOTIFY_SOCKET. Prints "listening PORT" once it listens.
 */
import { readFileSync } from "node:fs";
import { startHotTlsListener } from "../../src/acme/hot-tls-listener.ts";
import { createLogger } from "../../src/log/logger.ts";
import { fingerprintSources } from "../../src/ops/reload-plan.ts";
import { createReloader } from "../../src/ops/reloader.ts";
import { createNotifier } from "../../src/ops/sd-notify.ts";

const [certFile, keyFile] = process.argv.slice(2) as [string, string];
const sources = { tls: { certFile, keyFile } };
const listener = startHotTlsListener({
  host: "127.0.0.1",
  port: 0,
  tls: { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") },
  fetch: () => new Response("ok\n"),
});
const notifier = createNotifier();
createReloader({
  sources,
  loaded: fingerprintSources(sources),
  appliers: { tls: (c) => listener.setCertificate({ cert: c.cert, key: c.key }) },
  log: createLogger({ format: "json" }),
  notifier,
}).listen();
notifier.ready();
process.stdout.write(`listening ${listener.port}\n`);
process.on("SIGTERM", () => void listener.stop().then(() => process.exit(0)));
