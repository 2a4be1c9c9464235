/**
 * Test fixture: Debian's real `pebble` (Let's Encrypt's ACME test CA, package `pebble`) on 127.0.0.1,
 * validating challenges for real: it connects to the ports under test for HTTP-01 and TLS-ALPN-01 and
 * resolves the names through a loopback DNS server (test/support/dnsmasq.ts).
 *
 * What pebble 2.4 does, found by trying it (see also its README):
 * - It ships no certificate for its own HTTPS: this fixture makes a throwaway CA and a certificate for
 *   127.0.0.1 (test/support/pki.ts). An ACME client must trust `acmeCaPem` to talk to it.
 * - `httpPort` / `tlsPort` in its JSON config are the ports its validator connects to for HTTP-01 and
 *   TLS-ALPN-01 (instead of 80 and 443); `-dnsserver HOST:PORT` is where it looks up the identifiers.
 * - `PEBBLE_VA_NOSLEEP=1` removes the random 0-15 s delay before each validation;
 *   `PEBBLE_VA_ALWAYS_VALID` is removed from its environment, so every challenge is really checked.
 * - It rejects 5% of good nonces on purpose (`PEBBLE_WFE_NONCEREJECT`), so a client must retry
 *   `badNonce`; it reuses a valid authorization for a new order 50% of the time
 *   (`PEBBLE_AUTHZREUSE`), so a renewal may need no challenge at all. Both can be set here.
 * - `certificateValidityPeriod` (seconds) sets the lifetime of what it issues (default 5 years);
 *   notBefore is the time of issuance.
 * - The issuing root and intermediate are new at every start; the root is at
 *   `https://127.0.0.1:MGMT/roots/0` on its management port.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { terminate } from "./child.ts";
import { createTestCa } from "./pki.ts";
import { freePort } from "./ports.ts";

export const PEBBLE = "/usr/bin/pebble";

export interface PebbleOptions {
  /** The port pebble's validator connects to for HTTP-01 (the listener under test). */
  httpPort: number;
  /** The port pebble's validator connects to for TLS-ALPN-01. Default: an unused free port. */
  tlsPort?: number;
  /** The DNS server pebble resolves identifiers with (a loopback dnsmasq). */
  dns: { host: string; port: number };
  /** Lifetime of issued certificates in seconds (pebble's default: 5 years). */
  certValiditySeconds?: number;
  /** Percentage of good nonces rejected as badNonce (pebble's default: 5). */
  nonceRejectPercent?: number;
  /** Percentage of new orders that reuse a valid authorization (pebble's default: 50). */
  authzReusePercent?: number;
  /** Domains (and their subdomains) pebble refuses to order for (rejectedIdentifier). */
  blockedDomains?: string[];
}

export interface RunningPebble {
  /** The ACME directory URL. */
  readonly directoryUrl: string;
  /** The CA of pebble's own HTTPS certificate: an ACME client must trust it. */
  readonly acmeCaPem: string;
  readonly acmeCaFile: string;
  /** The root that issued certificates chain to, from the management port. */
  issuingRootPem(): Promise<string>;
  /** Everything pebble printed so far. */
  output(): string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const running = new Set<ChildProcess>();
// A test that fails before stop() must not leave a pebble behind.
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function startPebble(o: PebbleOptions): Promise<RunningPebble> {
  const pki = createTestCa(undefined, "pebble's own HTTPS (test)");
  const own = pki.issue(["127.0.0.1", "localhost"]);
  const acmePort = await freePort();
  let mgmtPort = await freePort();
  while (mgmtPort === acmePort) mgmtPort = await freePort();
  const configFile = join(pki.dir, "pebble-config.json");
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: own.certFile,
      privateKey: own.keyFile,
      httpPort: o.httpPort,
      tlsPort: o.tlsPort ?? (await freePort()),
      ocspResponderURL: "",
      externalAccountBindingRequired: false,
      ...(o.certValiditySeconds === undefined ? {} : { certificateValidityPeriod: o.certValiditySeconds }),
      ...(o.blockedDomains === undefined ? {} : { domainBlocklist: o.blockedDomains }),
    },
  };
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("PEBBLE_")) env[k] = v;
  }
  env.PEBBLE_VA_NOSLEEP = "1";
  if (o.nonceRejectPercent !== undefined) env.PEBBLE_WFE_NONCEREJECT = String(o.nonceRejectPercent);
  if (o.authzReusePercent !== undefined) env.PEBBLE_AUTHZREUSE = String(o.authzReusePercent);
  const args = ["-config", configFile, "-dnsserver", `${o.dns.host}:${o.dns.port}`, "-strict=false"];
  const child = spawn(PEBBLE, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  const collect = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let exit: string | undefined;
  const exited = new Promise<void>((resolve) => {
    const done = (why: string): void => {
      exit ??= why;
      running.delete(child);
      pki.remove();
      resolve();
    };
    child.on("error", (e) => done(`could not run ${PEBBLE}: ${e.message} (install pebble)`));
    child.on("exit", (code, signal) => done(signal !== null ? `killed by ${signal}` : `exit code ${code}`));
  });

  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const tls = { ca: pki.caCertPem };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (exit !== undefined) throw new Error(`pebble failed to start (${exit}):\n${output}`);
    const ready = await fetch(directoryUrl, { tls }).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`pebble did not answer at ${directoryUrl} in ${START_TIMEOUT_MS}ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    directoryUrl,
    acmeCaPem: pki.caCertPem,
    acmeCaFile: pki.caCertFile,
    async issuingRootPem() {
      const r = await fetch(`https://127.0.0.1:${mgmtPort}/roots/0`, { tls });
      if (!r.ok) throw new Error(`pebble's management port answered ${r.status} for /roots/0`);
      return r.text();
    },
    output: () => output,
    async stop() {
      if (exit !== undefined) return;
      await terminate(child, exited);
    },
  };
}
