/**
 * The Overview: what the operator must know about now (problems, a signing key not yet in DNS
 * among them), listeners and delivery targets with their latest outcome, the queue's depth,
 * attempts by outcome over the last hour and day, and the latest failures.
 */
import type { Database } from "bun:sqlite";
import type { KeyPublication } from "../keys/key-publication.ts";
import type { Problem } from "../log/health.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { AttemptOutcome } from "../store/attempts.ts";
import { attemptsByOutcome, recentFailures } from "../store/console-stats.ts";
import { json, type Route, route } from "./http.ts";

export interface ListenerInfo {
  name: string;
  url: string;
}

export interface OverviewOptions {
  db: Database;
  queue: DeliveryQueue;
  /** Deliveries per state (cached). */
  counts: () => Record<string, number>;
  nowMs: () => number;
  listeners: () => readonly ListenerInfo[];
  /** Hosted domain -> the label of its local delivery target. */
  localTargets: readonly (readonly [domain: string, label: string])[];
  imipLabel?: string;
  activeAttempts?: () => number;
  /** Shown above everything else until they end. */
  problems?: () => readonly Problem[];
  /** Our signing keys and whether peers can find them: a key not yet in DNS holds outbound iSchedule. */
  keyPublication?: Pick<KeyPublication, "states" | "signUnpublished">;
}

interface LastAttempt {
  outcome: AttemptOutcome;
  startedAt: number;
  error: string | null;
}

/** How far back "the latest attempt of a target" looks, so a silent target costs a bounded scan. */
const RECENT_ATTEMPTS = 5000;

function lastAttempt(db: Database, where: string, param: string): LastAttempt | null {
  const newest = db.query<{ id: number | null }, []>("SELECT max(id) AS id FROM attempts").get()?.id ?? 0;
  // CROSS JOIN keeps attempts the outer loop: a walk back over the newest rowids, never a scan of
  // every delivery of a busy domain.
  return (
    db
      .query<LastAttempt, [number, string]>(`SELECT a.outcome, a.started_at AS startedAt, a.error
        FROM attempts a CROSS JOIN deliveries d ON d.id = a.delivery_id
        WHERE a.id > ? AND ${where} ORDER BY a.id DESC LIMIT 1`)
      .get(newest - RECENT_ATTEMPTS, param) ?? null
  );
}

/** The listeners, or none while isched is still starting them (the list reads them once they exist). */
function listenersNow(o: OverviewOptions): readonly ListenerInfo[] {
  try {
    return o.listeners();
  } catch {
    return [];
  }
}

export function overviewRoutes(o: OverviewOptions): Route[] {
  return [
    route({
      method: "GET",
      path: "/overview",
      access: "read",
      summary: "problems, listeners, targets, queue depth, attempts by outcome (hour, day), latest failures",
      handle() {
        const now = o.nowMs();
        const targets = o.localTargets.map(([domain, label]) => ({
          domain,
          label,
          last: lastAttempt(o.db, "d.route = 'local' AND d.domain = ?", domain),
        }));
        if (o.imipLabel) {
          targets.push({ domain: "*", label: o.imipLabel, last: lastAttempt(o.db, "a.route = ?", "imip") });
        }
        return json(200, {
          nowMs: now,
          problems: o.problems?.() ?? [],
          listeners: listenersNow(o),
          targets,
          imip: o.imipLabel ?? null,
          activeAttempts: o.activeAttempts?.() ?? null,
          queue: o.counts(),
          nextDue: o.queue.nextDue() ?? null,
          hour: attemptsByOutcome(o.db, { nowMs: now, sizeMs: 5 * 60_000, count: 12 }),
          day: attemptsByOutcome(o.db, { nowMs: now, sizeMs: 3_600_000, count: 24 }),
          failures: recentFailures(o.db, 10),
          keys: {
            signUnpublished: o.keyPublication?.signUnpublished ?? false,
            domains: o.keyPublication?.states() ?? [],
          },
        });
      },
    }),
  ];
}
