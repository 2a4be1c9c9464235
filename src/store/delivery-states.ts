/**
 * The states and routes of a delivery, with no dependencies: the console page's script imports them
 * too (the filter language's status words).
 */

export type DeliveryState =
  | "queued"
  | "in-flight"
  | "delivered"
  | "failed"
  | "sent-imip"
  | "cancelled"
  | "broken";
/** States no worker moves a delivery out of (an operator may: retryNow on 'failed'). */
export const FINAL_STATES = ["delivered", "failed", "sent-imip", "cancelled"] as const;
export type FinalDeliveryState = (typeof FINAL_STATES)[number];

/** Whether a delivery is in a final state: what `isched send` and the API call final. */
export function isFinal(state: DeliveryState): state is FinalDeliveryState {
  return (FINAL_STATES as readonly string[]).includes(state);
}
export type Route = "local" | "ischedule" | "imip" | "relay";

export const DELIVERY_STATES: readonly DeliveryState[] = [
  "queued",
  "in-flight",
  "delivered",
  "failed",
  "sent-imip",
  "cancelled",
  "broken",
];
