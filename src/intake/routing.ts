/**
 * Where each recipient of an accepted message goes: a table of the hosted domains with their local
 * targets (--deliver), and one rule for every other domain. One function for every intake, so a
 * message cannot be routed differently because of the way it came.
 *
 * | recipient's domain | Originator's domain | route                                            |
 * |--------------------|---------------------|--------------------------------------------------|
 * | hosted             | any                 | local: the domain's target (store, ischedule:URL, webhook:URL, imip) |
 * | not hosted         | hosted              | ischedule (discovery at delivery time), iMIP after --fallback-after |
 * | not hosted         | not hosted          | refused now, 3.7: isched never relays for a stranger |
 *
 * Who may speak for a hosted Originator is each intake's check before routing: a trusted local
 * server's address (src/inbound/authenticate.ts), the API token, the SMTP intake's allowed clients
 * and accounts; a DKIM signature from a peer can never speak for a hosted domain.
 */
import { addressDomain } from "../ischedule/address.ts";
import { STATUS } from "../ischedule/status.ts";
import type { NewDelivery } from "../queue/queue.ts";

export interface RoutingTable {
  /** Each hosted domain with the label of its local target (`store`, `ischedule:URL`, ...). */
  readonly local: ReadonlyMap<string, string>;
  /** How long iSchedule has before a remote delivery goes by iMIP; undefined: when retries run out. */
  readonly fallbackAfterMs?: number;
}

export function isHosted(table: RoutingTable, domain: string): boolean {
  return table.local.has(domain);
}

/** The delivery of one recipient, routed; refused relays come back already failed (3.7). */
export function route(
  table: RoutingTable,
  o: { recipient: string; originator: string; nowMs: number },
): NewDelivery {
  const recipient = o.recipient;
  const domain = addressDomain(recipient) ?? "";
  const target = table.local.get(domain);
  if (target !== undefined) return { recipient, domain, route: "local", target };
  if (isHosted(table, addressDomain(o.originator) ?? "")) {
    const fallbackAt = table.fallbackAfterMs === undefined ? undefined : o.nowMs + table.fallbackAfterMs;
    return { recipient, domain, route: "ischedule", fallbackAt };
  }
  return {
    recipient,
    domain,
    route: "local",
    state: "failed",
    requestStatus: STATUS.invalidUser,
    lastError: `${domain || recipient} is not a domain served here; isched does not relay`,
  };
}
