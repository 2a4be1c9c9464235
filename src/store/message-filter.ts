/**
 * The message log's filter as the console parses it (src/console/filter.ts) and every backend
 * compiles it, and which delivery states each operator action applies to: values shared by the
 * store's implementations and their callers, no SQL.
 */
import type { DeliveryState } from "./delivery-states.ts";

export type ValueKey =
  | "peer"
  | "status"
  | "method"
  | "uid"
  | "organizer"
  | "originator"
  | "recipient"
  | "dkim"
  | "direction";

/** `status:refused` names requests refused at intake: logged with their reason, never a delivery. */
export type FilterTerm =
  | { readonly key: ValueKey; readonly negated: boolean; readonly values: readonly string[] }
  | { readonly key: "before" | "after"; readonly negated: boolean; readonly atMs: number };

export type MessageFilter = readonly FilterTerm[];

export type BulkAction = "retryNow" | "cancel" | "requestImip";

/** The states each operator action applies to (the queue's own statements check them again). */
export const ACTION_STATES: Readonly<Record<BulkAction, readonly DeliveryState[]>> = {
  retryNow: ["queued", "failed", "broken"],
  cancel: ["queued", "in-flight", "broken"],
  requestImip: ["queued", "failed", "broken"],
};

/** Does the filter name refused requests (`status:refused`, not negated)? */
export function namesRefused(filter: MessageFilter): boolean {
  return filter.some(
    (t) => "values" in t && t.key === "status" && !t.negated && t.values.includes("refused"),
  );
}
