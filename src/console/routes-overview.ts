/**
 * The Overview: what the operator must know about now (problems, a signing key not yet in DNS
 * among them), listeners and delivery targets with their latest outcome, the queue's depth,
 * attempts by outcome over the last hour and day, and the latest failures; with several nodes on one
 * database, each node with its last heartbeat and the deliveries it holds in flight.
 */
import type { KeyPublication } from "../keys/key-publication.ts";
import type { Problem } from "../log/health.ts";
import type { DeliveryQueue } from "../queue/queue.ts";
import type { NodeRow } from "../store/postgres/nodes.ts";
import type { Store } from "../store/store.ts";
import { json, type Route, route } from "./http.ts";

export interface ListenerInfo {
  name: string;
  url: string;
}

/**
 * A node on the database several share (src/server/cluster.ts), as the Overview lists it: its row
 * in the nodes table, with the deliveries it holds in flight now.
 */
export type NodeOnOverview = NodeRow & { inFlight: number };

export interface OverviewOptions {
  store: Store;
  queue: DeliveryQueue;
  /** Deliveries per state (cached). */
  counts: () => Promise<Record<string, number>>;
  nowMs: () => number;
  listeners: () => readonly ListenerInfo[];
  /** Hosted domain -> the label of its local delivery target. */
  localTargets: readonly (readonly [domain: string, label: string])[];
  imipLabel?: string;
  activeAttempts?: () => number;
  /** The nodes on the database (--database); absent on SQLite (null in the answer). */
  nodes?: () => Promise<readonly NodeOnOverview[]>;
  /** Shown above everything else until they end. */
  problems?: () => readonly Problem[];
  /** Our signing keys and whether peers can find them: a key not yet in DNS holds outbound iSchedule. */
  keyPublication?: Pick<KeyPublication, "states" | "signUnpublished">;
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
      summary:
        "problems, listeners, targets, queue depth, attempts by outcome (hour, day), latest failures, the nodes on a shared database",
      async handle() {
        const now = o.nowMs();
        const targets = [];
        for (const [domain, label] of o.localTargets)
          targets.push({ domain, label, last: await o.store.lastAttempt({ route: "local", domain }) });
        if (o.imipLabel)
          targets.push({
            domain: "*",
            label: o.imipLabel,
            last: await o.store.lastAttempt({ route: "imip" }),
          });
        return json(200, {
          nowMs: now,
          problems: o.problems?.() ?? [],
          listeners: listenersNow(o),
          targets,
          imip: o.imipLabel ?? null,
          activeAttempts: o.activeAttempts?.() ?? null,
          nodes: o.nodes ? await o.nodes() : null,
          queue: await o.counts(),
          nextDue: (await o.queue.nextDue()) ?? null,
          hour: await o.store.attemptsByOutcome({ nowMs: now, sizeMs: 5 * 60_000, count: 12 }),
          day: await o.store.attemptsByOutcome({ nowMs: now, sizeMs: 3_600_000, count: 24 }),
          failures: await o.store.recentFailures(10),
          keys: {
            signUnpublished: o.keyPublication?.signUnpublished ?? false,
            domains: o.keyPublication?.states() ?? [],
          },
        });
      },
    }),
  ];
}
