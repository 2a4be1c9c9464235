/**
 * Keeps the endpoint's certificate current: takes the saved certificate at start (no network needed
 * to start serving), obtains one when there is none or it does not cover the names, renews when a
 * third of its lifetime is left, retries failures with backoff, and reports every change.
 *
 * The algorithm: one timer, never longer than `checkIntervalMs` (1 hour). Each wake-up decides:
 * - an attempt is due when there is no usable certificate, when the names changed, or when the
 *   renewal time has come (src/acme/schedule.ts), unless a failure pushed the next attempt later;
 * - a certificate within 7 days of its end logs a warning at most once an hour, whatever else happens;
 * - an attempt runs alone (never two orders at once); on success the certificate is saved in the data
 *   folder first, then handed to `onCertificate` (which swaps it into the listener), on failure the
 *   error and the time of the next attempt go to the status and the log.
 * The clock and randomness are injected, and `check()` runs a wake-up at once (tests, a SIGHUP).
 */
import { type AcmeClient, AcmeError, type AcmeStep, type ChallengeSolver } from "./client.ts";
import { nearExpiry, renewalDueAt, retryAt } from "./schedule.ts";
import type { AcmeStore, StoredCertificate } from "./store.ts";

export type CertificateState = "none" | "obtaining" | "valid" | "failing";

export interface CertificateStatus {
  /** none: no certificate yet; failing: the last attempt failed (a saved certificate may still serve). */
  state: CertificateState;
  names: readonly string[];
  /** The certificate being served, if any. */
  certificate?: { names: readonly string[]; notBeforeMs: number; notAfterMs: number };
  lastSuccessMs?: number;
  lastError?: { message: string; step: AcmeStep | "store"; atMs: number };
  /** Failed attempts in a row. */
  failures: number;
  /** When the next attempt (renewal or retry) is due. */
  nextAttemptMs?: number;
}

export type AcmeLogLevel = "debug" | "info" | "warn" | "error";
/** The server's Logger fits this shape; this module imports nothing from the server. */
export interface AcmeLog {
  log(level: AcmeLogLevel, message: string, fields?: Record<string, string | number | undefined>): void;
}

export interface CertificateManagerOptions {
  store: AcmeStore;
  client: AcmeClient;
  /** The names the certificate must cover (the endpoint's host names). */
  names: readonly string[];
  solver: ChallengeSolver;
  /** Called with each newly obtained certificate, after it was saved. */
  onCertificate: (c: StoredCertificate) => void;
  onStatus?: (s: CertificateStatus) => void;
  log: AcmeLog;
  nowMs?: () => number;
  random?: () => number;
  /** The longest sleep between two wake-ups; also the interval of expiry warnings. Default 1 hour. */
  checkIntervalMs?: number;
}

export interface CertificateManager {
  /** The certificate to serve now: the saved one at start when usable, then each new one. */
  readonly current: StoredCertificate | undefined;
  status(): CertificateStatus;
  /** Starts the timer (and a first attempt when one is due). Without it, only check() acts. */
  start(): void;
  /** A wake-up now; resolves when an attempt it started has ended. */
  check(): Promise<void>;
  /** Stops the timer. An attempt under way finishes and saves its certificate, but is not installed. */
  stop(): void;
}

const HOUR = 3_600_000;

export function createCertificateManager(o: CertificateManagerOptions): CertificateManager {
  const now = o.nowMs ?? Date.now;
  const random = o.random ?? Math.random;
  const intervalMs = o.checkIntervalMs ?? HOUR;
  const names = o.names.map((n) => n.toLowerCase());
  let current: StoredCertificate | undefined;
  let state: CertificateState = "none";
  let failures = 0;
  let retryAtMs: number | undefined;
  let lastSuccessMs: number | undefined;
  let lastError: CertificateStatus["lastError"];
  let lastWarningMs: number | undefined;
  let attempt: Promise<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let started = false;
  let stopped = false;

  try {
    const saved = o.store.loadCertificate();
    if (saved && covers(saved, names) && saved.notAfterMs > now()) {
      current = saved;
      state = "valid";
    } else if (saved) {
      o.log.log(
        "info",
        "the saved certificate does not cover the names or has expired; obtaining a new one",
        {
          saved: saved.names.join(","),
          names: names.join(","),
        },
      );
    }
  } catch (e) {
    lastError = { message: (e as Error).message, step: "store", atMs: now() };
    o.log.log("error", "cannot use the saved certificate; obtaining a new one", { error: lastError.message });
  }

  const nextAttemptMs = (): number => {
    if (retryAtMs !== undefined) return retryAtMs;
    if (current === undefined) return now();
    return renewalDueAt(current);
  };

  const status = (): CertificateStatus => ({
    state,
    names,
    certificate: current && {
      names: current.names,
      notBeforeMs: current.notBeforeMs,
      notAfterMs: current.notAfterMs,
    },
    lastSuccessMs,
    lastError,
    failures,
    nextAttemptMs: state === "obtaining" ? undefined : nextAttemptMs(),
  });
  const report = (): void => o.onStatus?.(status());

  const run = async (): Promise<void> => {
    state = "obtaining";
    report();
    try {
      const issued = await o.client.obtain({ names, solver: o.solver });
      const saved = o.store.saveCertificate(issued);
      if (!covers(saved, names)) {
        throw new AcmeError(
          `The ACME server issued a certificate for ${saved.names.join(", ")}, not for ${names.join(", ")}`,
          "download",
          false,
        );
      }
      failures = 0;
      retryAtMs = undefined;
      lastSuccessMs = now();
      lastError = undefined;
      state = "valid";
      if (!stopped) {
        current = saved;
        o.onCertificate(saved);
      }
      o.log.log("info", "obtained a certificate", {
        names: saved.names.join(","),
        notAfter: new Date(saved.notAfterMs).toISOString(),
        renewAt: new Date(renewalDueAt(saved)).toISOString(),
      });
    } catch (e) {
      failures += 1;
      const message = e instanceof Error ? e.message : String(e);
      const step = e instanceof AcmeError ? e.step : "store";
      lastError = { message, step, atMs: now() };
      retryAtMs = retryAt({ failures, nowMs: now(), random });
      state = "failing";
      o.log.log(current ? "warn" : "error", "could not obtain a certificate", {
        error: message,
        failures,
        nextAttempt: new Date(retryAtMs).toISOString(),
        serving: current
          ? `certificate until ${new Date(current.notAfterMs).toISOString()}`
          : "no certificate",
      });
    }
    report();
  };

  const warnIfNearExpiry = (): void => {
    if (current === undefined || !nearExpiry(current.notAfterMs, now())) return;
    if (lastWarningMs !== undefined && now() - lastWarningMs < HOUR) return;
    lastWarningMs = now();
    const expired = current.notAfterMs <= now();
    o.log.log("warn", expired ? "the certificate has expired" : "the certificate expires within 7 days", {
      names: current.names.join(","),
      notAfter: new Date(current.notAfterMs).toISOString(),
      lastError: lastError?.message,
    });
  };

  const arm = (): void => {
    if (!started || stopped) return;
    if (timer !== undefined) clearTimeout(timer);
    const delay = Math.min(intervalMs, Math.max(0, nextAttemptMs() - now()));
    timer = setTimeout(() => void check(), delay);
  };

  const check = async (): Promise<void> => {
    if (attempt) return attempt;
    warnIfNearExpiry();
    if (now() >= nextAttemptMs()) {
      attempt = run().finally(() => {
        attempt = undefined;
      });
      await attempt;
      warnIfNearExpiry();
    }
    arm();
  };

  return {
    get current() {
      return current;
    },
    status,
    start() {
      if (started || stopped) return;
      started = true;
      report();
      void check();
    },
    check,
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

function covers(c: StoredCertificate, names: readonly string[]): boolean {
  return names.every((n) => c.names.includes(n));
}
