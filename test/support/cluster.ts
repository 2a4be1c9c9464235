/**
 * The world of the cluster tests: a real PostgreSQL (postgres.ts), dnsmasq serving a.test (the
 * cluster's domain, its DKIM key published) and b.test (an SRV record to a remote isched), a
 * recording webhook as the cluster's local target and another as the remote isched's, and the
 * remote isched itself (the compiled binary on SQLite, over HTTPS with a test CA). Nodes of the
 * cluster are started by the test with `nodeArgs`: the same domain, key and target on one database.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { splitTxtValue } from "../../src/dkim/dns-record.ts";
import { generateDkimKey } from "../../src/dkim/keygen.ts";
import { loadSigningKey } from "../../src/dkim/sign.ts";
import { ED_PRIVATE, ED_PUBLIC } from "./dkim-fixtures.ts";
import { type RunningDnsmasq, startDnsmasq } from "./dnsmasq.ts";
import { invitation } from "./isched.ts";
import { createTestCa, type TestCa } from "./pki.ts";
import { freePort } from "./ports.ts";
import { type RunningPostgres, startPostgres } from "./postgres.ts";
import { type RecordingWebhook, startRecordingWebhook } from "./recording-webhook.ts";
import { serveRemotePeer } from "./remote-peer.ts";
import type { ServedBinary } from "./serve-binary.ts";
import { signedPostBytes } from "./signed-post.ts";

export interface ClusterWorld {
  readonly dir: string;
  readonly pg: RunningPostgres;
  readonly ca: TestCa;
  readonly dns: RunningDnsmasq;
  /** The cluster's local target. */
  readonly hook: RecordingWebhook;
  /** The remote isched's local target. */
  readonly hookB: RecordingWebhook;
  /** The remote isched, b.test. */
  readonly peer: ServedBinary;
  /** `isched serve` arguments of node `name` (data folder DIR/data-NAME), leases of `leaseSeconds`. */
  nodeArgs(name: string, o: { leaseSeconds: number; logLevel?: string }): string[];
  /** A signed iSchedule POST from peer.test inviting `attendees` (of a.test). */
  signedInvite(uid: string, attendees: readonly string[]): Buffer;
  stop(): Promise<void>;
}

const peerKey = loadSigningKey(ED_PRIVATE, "peer.test", "s1");

export async function startClusterWorld(): Promise<ClusterWorld> {
  const dir = mkdtempSync(join(tmpdir(), "isched-cluster-"));
  const ca = createTestCa();
  const hook = startRecordingWebhook();
  const hookB = startRecordingWebhook();
  const pg = await startPostgres();
  const keyA = generateDkimKey("rsa");
  writeFileSync(join(dir, "a.key"), keyA.privateKeyPem, { mode: 0o600 });
  writeFileSync(join(dir, "peer.pub.pem"), ED_PUBLIC);
  writeFileSync(join(dir, "hook"), `${hook.secret}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "hook-b"), `${hookB.secret}\n`, { mode: 0o600 });
  const peerPort = await freePort();
  const dns = await startDnsmasq({
    zones: ["a.test", "b.test"],
    srv: [{ name: "_ischedules._tcp.b.test", target: "isched.b.test", port: peerPort }],
    hosts: [{ name: "isched.b.test", address: "127.0.0.1" }],
    txt: [{ name: "k1._domainkey.a.test", strings: splitTxtValue(keyA.record) }],
  });
  const peer = await serveRemotePeer({
    ca,
    dns,
    webhookUrl: hookB.url,
    webhookSecretFile: join(dir, "hook-b"),
    port: peerPort,
  });
  return {
    dir,
    pg,
    ca,
    dns,
    hook,
    hookB,
    peer,
    nodeArgs: (name, o) => [
      "--domain",
      "a.test",
      "--listen",
      "127.0.0.1:0",
      "--console",
      "127.0.0.1:0",
      "--data",
      join(dir, `data-${name}`),
      "--database",
      pg.url,
      "--node-id",
      name,
      "--lease-time",
      `${o.leaseSeconds}s`,
      "--dkim-key",
      join(dir, "a.key"),
      "--dkim-selector",
      "k1",
      "--dns-server",
      `${dns.server.host}:${dns.server.port}`,
      "--ca-file",
      ca.caCertFile,
      "--allow-private-peers",
      "--peer-key",
      `peer.test:s1=${join(dir, "peer.pub.pem")}`,
      "--deliver",
      `webhook:${hook.url}`,
      "--webhook-secret-file",
      join(dir, "hook"),
      "--retry",
      "200ms,500ms,1s,1s,1s,1s,1s,1s,1s,1s",
      "--delivery-deadline",
      "1s",
      "--shutdown-timeout",
      "2s",
      "--log-level",
      o.logLevel ?? "warn",
    ],
    signedInvite: (uid, attendees) =>
      signedPostBytes({
        key: peerKey,
        originator: "mailto:bernard@peer.test",
        recipients: [...attendees],
        body: invitation({ uid, organizer: "mailto:bernard@peer.test", attendees: [...attendees] }),
      }),
    async stop() {
      await peer.stop();
      await hook.stop();
      await hookB.stop();
      await dns.stop();
      await pg.stop();
      ca.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
