/**
 * /healthz and /readyz, as functions over probes the server injects. Both answer without
 * authentication (a load balancer or systemd's watchdog has no token), so they say whether and what
 * is wrong in generic words, never a path, an address or a secret.
 *
 * - /healthz: the process answers. It checks nothing else on purpose: a liveness probe that fails
 *   gets the process restarted, and restarting does not mend a full disk or a peer that is down.
 * - /readyz: isched can do its job. Each check passes, warns or fails:
 *   - fail (503): the database takes no write (a cheap one, at most once a second however often
 *     /readyz is asked: the answer is kept that long), the dispatcher's heartbeat is older than
 *     `dispatcherStaleMs` (its loop wakes every 5 s at the latest), a listener is not listening;
 *   - warn (200): an own DKIM key not yet visible in DNS (inbound works, outbound iSchedule waits;
 *     pass with --sign-unpublished), and the problems the server reports (WAL checkpoints failing,
 *     retention failing), which slow isched down or let files grow but lose nothing.
 *
 * The body follows the health check response format for HTTP APIs
 * (draft-inadarei-api-health-check-06, `application/health+json`): a top-level `status` of pass,
 * warn or fail, and `checks` keyed `component:measurement`, each a list of results with `status`,
 * `output` (what is wrong, when something is) and `time`. HTTP status 200 for pass and warn, 503
 * for fail (its §3: "fail" is 5xx; a warning is still ready).
 */

export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckResult {
  readonly status: CheckStatus;
  /** What is wrong, in a sentence (absent when it passes). */
  readonly output?: string;
  /** When the check ran (ISO 8601). */
  readonly time: string;
  /** The component a result is about, when a check has several (a listener, a domain). */
  readonly componentId?: string;
}

export interface HealthReport {
  readonly status: CheckStatus;
  readonly version: string;
  readonly checks: Readonly<Record<string, readonly CheckResult[]>>;
}

export interface ReadinessProbes {
  /** A cheap write to the database (store/health-probe.ts); throws when it cannot be made. */
  databaseWritable: () => void | Promise<void>;
  /** When the dispatcher's loop last went round (ms); undefined before it started. */
  dispatcherHeartbeatMs: () => number | undefined;
  /** Each listener (`--listen`, `--console`, `--smtp-listen`, `--metrics-listen`) and whether it listens. */
  listeners: () => readonly { readonly name: string; readonly up: boolean }[];
  /** Each hosted domain's signing key and whether peers can find it (key-publication.ts states()). */
  ownKeys: () => readonly { readonly domain: string; readonly visible: boolean }[];
  /** --sign-unpublished: a key not in DNS is the operator's choice, not a warning. */
  signUnpublished: boolean;
  /** What the server reports as going wrong now (health.ts: checkpoints, retention). */
  problems: () => readonly { readonly id: string; readonly text: string }[];
}

export interface ReadinessOptions {
  probes: ReadinessProbes;
  version: string;
  nowMs?: () => number;
  /** A heartbeat older than this fails the dispatcher check. Default one minute. */
  dispatcherStaleMs?: number;
  /** A /readyz answer is reused for this long (each one costs a write). Default one second. */
  cacheMs?: number;
  /** A probe that takes longer fails. Default 2 s. */
  probeTimeoutMs?: number;
}

export interface Readiness {
  live(): HealthReport;
  ready(): Promise<HealthReport>;
}

/** Problems whose id starts with one of these are readiness warnings; the rest (risky settings) are not. */
const PROBLEM_CHECKS: Readonly<Record<string, string>> = {
  checkpoints: "database:checkpoints",
  retention: "database:retention",
  // ACME (src/server/acme.ts): orders failing, or the certificate within 7 days of its end.
  acme: "certificate:acme",
};
/** Listed as pass when they have no problem; the others appear only when they have one. */
const ALWAYS_LISTED = ["database:checkpoints", "database:retention"];

export function createReadiness(o: ReadinessOptions): Readiness {
  const now = o.nowMs ?? Date.now;
  const staleMs = o.dispatcherStaleMs ?? 60_000;
  const cacheMs = o.cacheMs ?? 1000;
  const timeoutMs = o.probeTimeoutMs ?? 2000;
  let cached: { atMs: number; report: Promise<HealthReport> } | undefined;

  const evaluate = async (): Promise<HealthReport> => {
    const time = new Date(now()).toISOString();
    const p = o.probes;
    const checks: Record<string, CheckResult[]> = {};
    const add = (key: string, r: Omit<CheckResult, "time">) => {
      checks[key] = [...(checks[key] ?? []), { ...r, time }];
    };

    const write = await withTimeout(Promise.resolve().then(p.databaseWritable), timeoutMs);
    add(
      "database:writable",
      write === "ok"
        ? { status: "pass" }
        : {
            status: "fail",
            output: write === "timeout" ? `no answer within ${timeoutMs} ms` : "the database takes no write",
          },
    );

    const beat = p.dispatcherHeartbeatMs();
    const age = beat === undefined ? undefined : now() - beat;
    add(
      "dispatcher:heartbeat",
      age !== undefined && age <= staleMs
        ? { status: "pass" }
        : {
            status: "fail",
            output:
              age === undefined
                ? "the dispatcher has not started"
                : `no heartbeat for ${Math.round(age / 1000)} s`,
          },
    );

    for (const l of p.listeners())
      add(
        "listeners:up",
        l.up
          ? { status: "pass", componentId: l.name }
          : { status: "fail", componentId: l.name, output: "not listening" },
      );

    for (const k of p.ownKeys())
      add(
        "dkim:published",
        k.visible || p.signUnpublished
          ? { status: "pass", componentId: k.domain }
          : {
              status: "warn",
              componentId: k.domain,
              output: "isched's DKIM key is not visible in DNS yet: outbound iSchedule waits",
            },
      );

    for (const problem of p.problems()) {
      const key = PROBLEM_CHECKS[problem.id.split(":")[0]!];
      if (key) add(key, { status: "warn", output: problem.text });
    }
    for (const key of ALWAYS_LISTED) if (!checks[key]) add(key, { status: "pass" });

    return { status: worst(Object.values(checks).flat()), version: o.version, checks };
  };

  return {
    live: () => ({
      status: "pass",
      version: o.version,
      checks: { "process:alive": [{ status: "pass", time: new Date(now()).toISOString() }] },
    }),
    ready() {
      const t = now();
      if (!cached || t - cached.atMs >= cacheMs || t < cached.atMs) cached = { atMs: t, report: evaluate() };
      return cached.report;
    },
  };
}

function worst(results: readonly CheckResult[]): CheckStatus {
  if (results.some((r) => r.status === "fail")) return "fail";
  if (results.some((r) => r.status === "warn")) return "warn";
  return "pass";
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<"ok" | "error" | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      work.then(
        () => "ok" as const,
        () => "error" as const,
      ),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export const HEALTH_CONTENT_TYPE = "application/health+json";

/** The HTTP answer for a report: 200 for pass and warn, 503 for fail; never cached by a proxy. */
export function healthResponse(report: HealthReport): Response {
  return new Response(`${JSON.stringify(report)}\n`, {
    status: report.status === "fail" ? 503 : 200,
    headers: { "content-type": HEALTH_CONTENT_TYPE, "cache-control": "no-store" },
  });
}
