/**
 * The metrics isched exposes at /metrics (docs/metrics.md lists them with their labels): requests by
 * outcome and error element, DKIM verdicts, deliveries by state, the queue's depth and oldest age,
 * attempt latency, per-peer outcomes, certificate expiry, the refusal log's size, and what retention
 * pruned. Every label takes its values from a closed list (the types below) or, for a peer's domain,
 * through a CappedLabel, so the number of series is bounded whatever peers send.
 *
 * The parts of isched that count things call the typed methods here (`requests.inc(...)`); values
 * that live in the database or elsewhere (the queue, the refusal log, the certificates) are read
 * when Prometheus scrapes, through the readers given to createIschedMetrics.
 */

import type { DkimFailureReason } from "../dkim/verdict.ts";
import type { IScheduleErrorElement } from "../ischedule/errors.ts";
import type { DeliveryState, FinalDeliveryState, Route } from "../store/delivery-states.ts";
import type { AttemptOutcome } from "../store/store.ts";
import { CappedLabel, type Collected, Registry } from "./registry.ts";

/** Where a request came in. */
export type RequestIntake = "ischedule" | "submission" | "smtp";
/**
 * What became of it: accepted (stored, answered per recipient), replayed (answered from the first
 * copy), refused (an error element, or a policy's 403), unavailable (503: try later), failed (500).
 */
export type RequestOutcome = "accepted" | "replayed" | "refused" | "unavailable" | "failed";
/** The draft §6.1.2 error element of a refusal; `none` when there was no error, `other` for the rest. */
export type RequestError = IScheduleErrorElement | "none" | "other";

export type DkimResult = "pass" | "fail" | "none" | "trusted";
/** A final state, or broken (a delivery that crashed its worker, waiting for an operator). */
export type DoneState = FinalDeliveryState | "broken";
export type PrunedKind = "refusals" | "messages" | "bodies" | "replay-keys" | "itip-keys" | "compaction";

/** Seconds: a local target answers in milliseconds, a peer on the other side of the world in seconds. */
export const ATTEMPT_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] as const;

/** Peers with their own series; the rest are `other`. */
export const DEFAULT_MAX_PEERS = 50;

export interface MetricReaders {
  /** Deliveries in each state now (store/console-stats.ts deliveryStateCounts). */
  deliveryStates?: () => Readonly<Record<DeliveryState, number>>;
  /** Deliveries queued or in flight, and when the oldest queued one was made (ms), if any. */
  queue?: () => { depth: number; oldestCreatedAtMs: number | undefined };
  /** The refusal log's rows and metadata bytes (store/refusals.ts refusalTotals). */
  refusalLog?: () => { rows: number; bytes: number };
  /** The certificates isched serves, by listener (`--listen`, `--smtp-listen`), and their notAfter (ms). */
  certificates?: () => readonly { listener: string; notAfterMs: number }[];
  /** The database file's size and the free pages in it (bytes). */
  database?: () => { bytes: number; freeBytes: number };
  nowMs?: () => number;
}

export type IschedMetrics = ReturnType<typeof createIschedMetrics>;

export function createIschedMetrics(o: { version: string; readers?: MetricReaders; maxPeers?: number }) {
  const registry = new Registry();
  const r = o.readers ?? {};
  const now = r.nowMs ?? Date.now;
  const peers = new CappedLabel(o.maxPeers ?? DEFAULT_MAX_PEERS);
  const collectIf = <L extends string>(read: (() => Collected<L>) | undefined, fallback: Collected<L>) =>
    read ?? (() => fallback);

  registry.gauge({
    name: "isched_build_info",
    help: "Always 1; the version label says which isched runs.",
    labels: ["version"],
    collect: () => [[{ version: o.version }, 1]],
  });
  const requests = registry.counter<"intake" | "outcome" | "error">({
    name: "isched_requests_total",
    help: "Scheduling requests received, by intake, outcome and iSchedule error element (none when accepted).",
    labels: ["intake", "outcome", "error"],
  });
  const dkim = registry.counter<"result" | "reason">({
    name: "isched_dkim_verdicts_total",
    help: "DKIM verdicts on inbound requests: pass, fail (with the reason), none (unsigned) or trusted (unsigned from a trusted address).",
    labels: ["result", "reason"],
  });
  const deliveriesDone = registry.counter<"route" | "state">({
    name: "isched_deliveries_total",
    help: "Deliveries that reached a final state since start, by route.",
    labels: ["route", "state"],
  });
  const deliveryStates = r.deliveryStates;
  registry.gauge<"state">({
    name: "isched_deliveries",
    help: "Deliveries in the database now, by state.",
    labels: ["state"],
    collect: collectIf(
      deliveryStates && (() => Object.entries(deliveryStates()).map(([state, n]) => [{ state }, n] as const)),
      [],
    ),
  });
  const queue = r.queue;
  registry.gauge({
    name: "isched_queue_depth",
    help: "Deliveries queued or in flight.",
    collect: collectIf(queue && (() => queue().depth), []),
  });
  registry.gauge({
    name: "isched_queue_oldest_age_seconds",
    help: "Age of the oldest queued delivery (0 when the queue is empty).",
    collect: collectIf(
      queue &&
        (() => {
          const oldest = queue().oldestCreatedAtMs;
          return oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000);
        }),
      [],
    ),
  });
  const attemptSeconds = registry.histogram<"route" | "outcome">({
    name: "isched_attempt_duration_seconds",
    help: "How long delivery attempts took, by route and outcome.",
    labels: ["route", "outcome"],
    buckets: ATTEMPT_SECONDS_BUCKETS,
  });
  const peerAttempts = registry.counter<"peer" | "outcome">({
    name: "isched_peer_attempts_total",
    help: `Attempts to deliver to each peer domain by outcome (the first ${o.maxPeers ?? DEFAULT_MAX_PEERS} domains seen have their own series, later ones are "other").`,
    labels: ["peer", "outcome"],
  });
  const certificates = r.certificates;
  registry.gauge<"listener">({
    name: "isched_certificate_expiry_timestamp_seconds",
    help: "When the TLS certificate each listener serves expires (Unix time).",
    labels: ["listener"],
    collect: collectIf(
      certificates &&
        (() =>
          certificates().map((c) => [{ listener: c.listener }, Math.floor(c.notAfterMs / 1000)] as const)),
      [],
    ),
  });
  const refusalLog = r.refusalLog;
  registry.gauge({
    name: "isched_refusal_log_rows",
    help: "Refused requests kept in the refusal log.",
    collect: collectIf(refusalLog && (() => refusalLog().rows), []),
  });
  registry.gauge({
    name: "isched_refusal_log_bytes",
    help: "Bytes of metadata the refusal log keeps (its limit is 16 MB).",
    collect: collectIf(refusalLog && (() => refusalLog().bytes), []),
  });
  const pruned = registry.counter<"kind">({
    name: "isched_pruned_total",
    help: "Rows removed or emptied by retention since start (bodies: bodies emptied; compaction: pages given back).",
    labels: ["kind"],
  });
  const database = r.database;
  registry.gauge({
    name: "isched_database_bytes",
    help: "Size of the database file.",
    collect: collectIf(database && (() => database().bytes), []),
  });
  registry.gauge({
    name: "isched_database_free_bytes",
    help: "Free pages inside the database file (reused for new rows, or given back by compaction).",
    collect: collectIf(database && (() => database().freeBytes), []),
  });

  return {
    registry,
    render: () => registry.render(),
    requests: {
      inc: (l: { intake: RequestIntake; outcome: RequestOutcome; error: RequestError }) => requests.inc(l),
    },
    dkim: {
      /** `reason` for a failed verdict; `none` otherwise. */
      inc: (l: { result: DkimResult; reason?: DkimFailureReason }) =>
        dkim.inc({ result: l.result, reason: l.reason ?? "none" }),
    },
    deliveries: {
      /** A delivery reached a final state. */
      done: (l: { route: Route; state: DoneState }) => deliveriesDone.inc(l),
    },
    attempts: {
      /**
       * One attempt: its latency by route and outcome, and, for a remote peer (`peer` given), its
       * outcome for that peer.
       */
      observe: (l: { route: Route; outcome: AttemptOutcome; seconds: number; peer?: string }) => {
        attemptSeconds.observe({ route: l.route, outcome: l.outcome }, l.seconds);
        if (l.peer !== undefined)
          peerAttempts.inc({ peer: peers.value(l.peer.toLowerCase()), outcome: l.outcome });
      },
    },
    pruned: {
      /** What one retention run removed (store/pruner.ts's report, step by step). */
      add: (l: { kind: PrunedKind; rows: number }) => pruned.inc({ kind: l.kind }, l.rows),
    },
  };
}
