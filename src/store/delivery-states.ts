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
export type FinalDeliveryState = "delivered" | "failed" | "sent-imip" | "cancelled";
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
