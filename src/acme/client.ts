/**
 * Obtaining one certificate from an ACME CA (RFC 8555) with the `acme-client` npm package, which
 * speaks the protocol (JWS signing, nonces and their badNonce retries, polling): this file walks an
 * order through its steps (account §7.3, order §7.4, authorizations and challenges §7.5, finalize
 * and download §7.4.2) and turns each step's failure into one sentence an administrator can act on.
 *
 * The package keeps one shared HTTP client (axios); this file sets it up once:
 * - no automatic retries: a failed attempt fails at once and the certificate manager retries it
 *   later with backoff (src/acme/schedule.ts), instead of the package's up to 75 s of silent retries
 *   (which, once used up, also replace the network error by a TypeError about `response.config`);
 * - a 30 s timeout per request, so a CA that accepts but never answers cannot hang a renewal;
 * - a private CA's certificate (`caPem`, from --acme-ca-file) is trusted for requests to the
 *   directory's own origin only, never for other hosts.
 */
import { generateKeyPairSync } from "node:crypto";
import { Agent } from "node:https";
import * as acme from "acme-client";
import type { IssuedCertificate } from "./store.ts";

export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

export type ChallengeType = "http-01" | "tls-alpn-01";

export interface Challenge {
  /** The DNS name being validated. */
  name: string;
  token: string;
  keyAuthorization: string;
}

/** Puts a challenge's answer where the CA will look (a listener), and takes it away afterwards. */
export interface ChallengeSolver {
  readonly type: ChallengeType;
  present(c: Challenge): Promise<void> | void;
  cleanUp(c: Challenge): void;
}

export type AcmeStep = "directory" | "account" | "order" | "validation" | "finalize" | "download";

/** A failed step of an order, with a message that says what failed and what the CA said. */
export class AcmeError extends Error {
  constructor(
    message: string,
    readonly step: AcmeStep,
    /** True when the CA could not be reached at all (connection, TLS, timeout). */
    readonly unreachable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "AcmeError";
  }
}

export interface AcmeClientOptions {
  directoryUrl: string;
  accountKeyPem: string;
  /** The account's contact (RFC 8555 §7.3): the CA's expiry and policy mail goes there. */
  email?: string;
  /** Trust this CA (PEM) for the ACME server's HTTPS instead of the system's roots. */
  caPem?: string;
  /** Polling of pending challenges and orders: first delay, doubling up to pollMaxMs. */
  pollMinMs?: number;
  pollMaxMs?: number;
}

export interface ObtainOptions {
  /** DNS names for the certificate's subjectAltName; the first is also its common name. */
  names: readonly string[];
  solver: ChallengeSolver;
}

export interface AcmeClient {
  obtain(o: ObtainOptions): Promise<IssuedCertificate>;
}

const REQUEST_TIMEOUT_MS = 30_000;
const POLL_ATTEMPTS = 10;

export function createAcmeClient(o: AcmeClientOptions): AcmeClient {
  setUpHttp();
  const origin = new URL(o.directoryUrl).origin;
  if (o.caPem !== undefined) trustedAgents.set(origin, new Agent({ ca: o.caPem, keepAlive: true }));
  else trustedAgents.delete(origin);
  const client = new acme.Client({
    directoryUrl: o.directoryUrl,
    accountKey: o.accountKeyPem,
    backoffAttempts: POLL_ATTEMPTS,
    backoffMin: o.pollMinMs ?? 1000,
    backoffMax: o.pollMaxMs ?? 10_000,
  });
  let registered = false;
  const where = o.directoryUrl;

  return {
    async obtain({ names, solver }) {
      if (names.length === 0) throw new RangeError("obtain() needs at least one name");
      const list = names.join(", ");
      if (!registered) {
        await step("account", "create or find the ACME account", () =>
          client.createAccount({
            termsOfServiceAgreed: true,
            ...(o.email ? { contact: [`mailto:${o.email}`] } : {}),
          }),
        );
        registered = true;
      }
      const order = await step("order", `order a certificate for ${list}`, () =>
        client.createOrder({ identifiers: names.map((value) => ({ type: "dns", value })) }),
      );
      const authorizations = await step("order", `read the authorizations for ${list}`, () =>
        client.getAuthorizations(order),
      );
      // One at a time: the CA validates each name, and a failure leaves the others untouched.
      for (const authz of authorizations) {
        if (authz.status === "valid") continue; // reused from an earlier order (RFC 8555 §7.1.4)
        await validate(client, authz, solver);
      }
      const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const [, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: [...names] }, keyPem);
      const finalized = await step("finalize", `finalize the order for ${list}`, () =>
        client.finalizeOrder(order, csr),
      );
      const chainPem = await step("download", `download the certificate for ${list}`, () =>
        client.getCertificate(finalized),
      );
      return { chainPem, keyPem };
    },
  };

  async function step<T>(s: AcmeStep, what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw describe(e, s, what, where);
    }
  }
}

async function validate(
  client: acme.Client,
  authz: acme.Authorization,
  solver: ChallengeSolver,
): Promise<void> {
  const name = authz.identifier.value;
  const challenge = authz.challenges.find((c) => c.type === solver.type);
  if (challenge === undefined) {
    const offered = authz.challenges.map((c) => c.type).join(", ") || "none";
    throw new AcmeError(
      `The ACME server offers no ${solver.type} challenge for ${name} (it offers: ${offered})`,
      "validation",
      false,
    );
  }
  const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
  const c: Challenge = { name, token: challenge.token, keyAuthorization };
  try {
    await solver.present(c);
  } catch (e) {
    throw new AcmeError(
      `Cannot present the ${solver.type} challenge for ${name}: ${(e as Error).message}`,
      "validation",
      false,
      { cause: e },
    );
  }
  try {
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
  } catch (e) {
    const failed = describe(e, "validation", `validate ${name} by ${solver.type}`, "");
    // Leave no pending authorization behind (RFC 8555 §7.5.2); its failure changes nothing here.
    await client.deactivateAuthorization(authz).catch(() => undefined);
    throw failed;
  } finally {
    solver.cleanUp(c);
  }
}

/** A request that got no answer (refused, reset, TLS failure, timeout). */
class NoAnswer extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function describe(e: unknown, step: AcmeStep, what: string, where: string): AcmeError {
  if (e instanceof AcmeError) return e;
  const detail = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ").trim();
  if (e instanceof NoAnswer) {
    const code = e.code && !detail.includes(e.code) ? `${e.code}: ` : "";
    const server = where ? ` ${where}` : "";
    return new AcmeError(`Cannot reach the ACME server${server} to ${what}: ${code}${detail}`, step, true, {
      cause: e,
    });
  }
  return new AcmeError(`Cannot ${what}: ${detail || "the ACME server gave no reason"}`, step, false, {
    cause: e,
  });
}

const trustedAgents = new Map<string, Agent>();
let httpReady = false;

function setUpHttp(): void {
  if (httpReady) return;
  httpReady = true;
  const http = acme.axios;
  http.defaults.timeout = REQUEST_TIMEOUT_MS;
  // The package's own interceptors only retry (and, once retries run out, lose the error): the
  // manager retries instead, and the package reads every status itself (it sets validateStatus null).
  http.interceptors.request.clear();
  http.interceptors.response.clear();
  http.interceptors.request.use((config) => {
    const agent = config.url === undefined ? undefined : trustedAgents.get(new URL(config.url).origin);
    if (agent !== undefined) config.httpsAgent = agent;
    return config;
  });
  http.interceptors.response.use(undefined, (e: { response?: unknown; code?: string; message?: string }) => {
    if (e.response !== undefined) throw e;
    throw new NoAnswer(e.message ?? String(e), e.code);
  });
}
