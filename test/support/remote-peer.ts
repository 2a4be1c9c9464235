/**
 * The remote isched of the end-to-end tests that send to another organisation: b.test, the compiled
 * binary on SQLite over HTTPS (a certificate of the test's CA for isched.b.test), looking up a.test's
 * key through the test's dnsmasq and handing what it accepts to a recording webhook. The test
 * publishes `_ischedules._tcp.b.test` → isched.b.test:`port` in that dnsmasq.
 */
import type { RunningDnsmasq } from "./dnsmasq.ts";
import type { TestCa } from "./pki.ts";
import { type ServedBinary, serveBinary } from "./serve-binary.ts";

export function serveRemotePeer(o: {
  ca: TestCa;
  dns: RunningDnsmasq;
  webhookUrl: string;
  webhookSecretFile: string;
  port: number;
}): Promise<ServedBinary> {
  const cert = o.ca.issue(["isched.b.test"]);
  return serveBinary(
    [
      "--domain",
      "b.test",
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
      "--dns-server",
      `${o.dns.server.host}:${o.dns.server.port}`,
      "--allow-private-peers",
      "--sign-unpublished",
      "--deliver",
      `webhook:${o.webhookUrl}`,
      "--webhook-secret-file",
      o.webhookSecretFile,
      "--log-level",
      "warn",
    ],
    { listen: `127.0.0.1:${o.port}` },
  );
}
