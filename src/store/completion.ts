/**
 * What an attempt's outcome writes on its delivery, as both backends apply it (Store.completeMany):
 * the columns of a Completion other than "waiting", with null for what stays as it was.
 */
import type { Route } from "./delivery-states.ts";
import type { Completion } from "./store.ts";

export interface CompletionColumns {
  state: Exclude<Completion["state"], "waiting">;
  nextAttemptAt: number | null;
  requestStatus: string | null;
  error: string | null;
  /** A new route (iMIP fallback) and target (the peer URL discovery found); null keeps them. */
  route: Route | null;
  target: string | null;
}

export function completionColumns(next: Exclude<Completion, { state: "waiting" }>): CompletionColumns {
  return {
    state: next.state,
    nextAttemptAt: next.state === "queued" ? next.nextAttemptAt : null,
    requestStatus: next.requestStatus ?? null,
    error: next.error ?? null,
    route: next.route ?? null,
    target: next.target ?? null,
  };
}
