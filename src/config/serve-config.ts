/**
 * The configuration `isched serve` runs with: typed values, each checked at start-up from its flag
 * (from-flags.ts), never silently replaced by a default.
 */
import { hostname } from "node:os";
import type { PrivateKeyEntry } from "../dkim/private-exchange-source.ts";
import { isDomainName } from "../dns/names.ts";
import type { Limits } from "../inbound/limits.ts";
import type { AlignmentMode, TrustRule } from "../inbound/trust-policy.ts";
import type { Cidr } from "../net/cidr.ts";
import type { HostPort } from "../net/host-port.ts";
import type { PeerRoute } from "../outbound/static-routes.ts";
import type { OpsSettings } from "./ops-flags.ts";

export type LocalTargetSpec =
  | { readonly kind: "store" }
  | {
      readonly kind: "ischedule";
      readonly url: string;
      readonly username?: string;
      readonly password?: string;
    }
  | { readonly kind: "webhook"; readonly url: string }
  | { readonly kind: "imip" };

export interface DeliverRule {
  /** undefined: every hosted domain without a rule of its own. */
  readonly domain?: string;
  readonly target: LocalTargetSpec;
}

/** What a target label looks like in logs, the database and the console: never a password. */
export function describeTarget(t: LocalTargetSpec): string {
  switch (t.kind) {
    case "store":
      return "store";
    case "imip":
      return "imip";
    default:
      return `${t.kind}:${t.url}`;
  }
}

/** The local target of a hosted domain: its own rule, else the catch-all, else the store. */
export function targetFor(rules: readonly DeliverRule[], domain: string): LocalTargetSpec {
  return (
    (rules.find((r) => r.domain === domain) ?? rules.find((r) => r.domain === undefined))?.target ?? {
      kind: "store",
    }
  );
}

/** The hosted domain used when none is given: this host's domain, or localhost. */
export function defaultDomain(): string {
  const host = hostname().toLowerCase();
  const dot = host.indexOf(".");
  return dot !== -1 && isDomainName(host.slice(dot + 1)) ? host.slice(dot + 1) : "localhost";
}

export const DEFAULT_VERIFY_DEADLINE_MS = 10_000;
/**
 * How long a shutdown (SIGTERM, SIGINT) may take, everything included: under the 45 s
 * TimeoutStopSec of docs/deploy.md's unit (and systemd's default of 90 s), so that isched closes its
 * database itself rather than being killed.
 */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 20_000;

export interface AcmeSettings {
  readonly email: string;
  readonly directoryUrl: string;
  /** The certificate's names (--hostname, else the domains), lower-case. */
  readonly names: readonly string[];
  readonly challenge: "http-01" | "tls-alpn-01";
  /** The port-80 listener (http-01 only). */
  readonly httpListen?: HostPort;
  /** --acme-ca-file: trusted for the ACME server's HTTPS. */
  readonly caPem?: string;
}

export interface ServeConfig {
  readonly domains: readonly string[];
  readonly listen: HostPort;
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly certFile: string;
    /** undefined when the certificate is ACME's (DATA/acme/certificate.pem holds both). */
    readonly keyFile?: string;
  };
  /** Certificates from an ACME CA (--acme-email), when no --tls-cert/--tls-key is given. */
  readonly acme?: AcmeSettings;
  /** --acme-email was given with --tls-cert/--tls-key, which win. */
  readonly acmeOverridden?: true;
  /** Files a reload (SIGHUP) reads again, as their flags name them (src/ops/reload-plan.ts). */
  readonly reloadFiles?: {
    readonly caFile?: string;
    readonly webhookSecretFile?: string;
    readonly apiTokenFile?: string;
    /** `--peer-key` values as given (`DOMAIN:SELECTOR=FILE`). */
    readonly peerKeys: readonly string[];
  };
  readonly dataDir: string;
  /**
   * --database: the PostgreSQL URL everything shared is kept in (password included: never log it
   * unredacted); undefined, SQLite in dataDir.
   */
  readonly database?: string;
  /** --node-id (default: the host name): leases carry `NODE:PID`, and the nodes table a row for it. */
  readonly nodeId?: string;
  /** --lease-time: how long a delivery attempt's lease lasts without renewal (default 5 minutes). */
  readonly leaseMs?: number;
  readonly dkimKeyFile?: string;
  readonly dkimSelector?: string;
  readonly deliver: readonly DeliverRule[];
  readonly webhookSecret?: string;
  readonly paths: readonly string[];
  readonly trust: readonly TrustRule[];
  /** strict: d= is the Originator's domain or a parent; relaxed (default): or in its organisation. */
  readonly alignment?: AlignmentMode;
  readonly limits: Limits;
  readonly administrator: string;
  /** How long the endpoint waits for a local target before answering 1.1 (held: src/inbound/answers.ts). */
  readonly deliveryDeadlineMs: number;
  /** How long the endpoint waits for a request body to arrive in full (default 30 s). */
  readonly bodyTimeoutMs?: number;
  readonly retryScheduleMs: readonly number[];
  readonly dnsServer?: HostPort;
  readonly ca?: string;
  readonly allowPrivatePeers: boolean;
  readonly allowSha1: boolean;
  readonly peerKeys: readonly PrivateKeyEntry[];
  readonly console: HostPort;
  readonly apiToken?: string;
  readonly smtpUrl?: string;
  readonly imipFrom?: string;
  readonly sync: "normal" | "full";
  /** Static routes to peers (`--peer`). */
  readonly peers?: readonly PeerRoute[];
  /** Remote deliveries not done by then go by iMIP (when --smtp is set); undefined: only when retries run out. */
  readonly fallbackAfterMs?: number;
  /** Sign with a key before it is seen in DNS (--sign-unpublished); default: wait (key-publication.ts). */
  readonly signUnpublished?: boolean;
  /** Strip leftmost labels of a recipient domain without SRV (draft §4.1). */
  readonly walkParents?: boolean;
  /** Delivery attempts at once, in all and per target (a peer domain or a local target). */
  readonly maxDeliveries?: number;
  readonly maxPerTarget?: number;
  /**
   * Reverse proxies whose Forwarded / X-Forwarded-For headers give the client's address, for the
   * endpoint and the console (src/net/client-address.ts).
   */
  readonly trustedProxies?: readonly Cidr[];
  /** One deadline for an inbound request's DKIM verification, key retrieval included (default 10 s). */
  readonly verifyDeadlineMs?: number;
  /** A signature without x= is refused this long after its t= (default 1 hour). */
  readonly maxSignatureAgeMs?: number;
  /** Inbound requests waiting for a signer's key from the network, in all and per signing domain. */
  readonly maxKeyFetches?: number;
  readonly maxKeyFetchesPerDomain?: number;
  /** The SMTP intake: where it listens, who may use it, where other mail goes. */
  readonly smtpIntake?: {
    readonly listen: HostPort;
    readonly allow: readonly Cidr[];
    readonly authFile?: string;
    readonly relay?: string;
    readonly maxSizeBytes: number;
  };
  /** Retention, the log's form and the metrics listener (ops-flags.ts); absent: their defaults. */
  readonly ops?: OpsSettings;
}
