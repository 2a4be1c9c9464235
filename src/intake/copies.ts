/**
 * The keys that make a message a copy of an earlier one: the same Originator and recipient, and the
 * same iTIP revision (METHOD, UID and each component's RECURRENCE-ID, SEQUENCE and DTSTAMP:
 * src/itip/revision.ts, RFC 5546 §2.1.5). One key per recipient, claimed in the message's
 * transaction (src/store/itip-keys.ts): a recipient whose key an earlier message holds gets no
 * delivery. Why peers send copies and what they are answered: src/inbound/resends.ts.
 */

import { createHash } from "node:crypto";
import { addressKey, type ItipMessage, revisionOf } from "../itip/index.ts";
import type { ItipKeyClaims } from "../store/store.ts";

/**
 * The claims for these recipients' copies of `itip` from `originator`, or undefined when the message
 * has no revision to compare (revisionOf()) or no recipient to claim.
 */
export function itipKeysOf(o: {
  originator: string;
  itip: ItipMessage;
  recipients: readonly string[];
  expiresAt: number;
}): ItipKeyClaims | undefined {
  const revision = revisionOf(o.itip);
  if (revision === undefined || o.recipients.length === 0) return undefined;
  const from = addressKey(o.originator);
  const keys = o.recipients.map((recipient) => ({
    recipient,
    // Hashed: a UID may be long, and the key is only ever compared.
    key: createHash("sha256")
      .update(["itip", from, addressKey(recipient), revision].join("\n"))
      .digest("base64"),
  }));
  return { keys, expiresAt: o.expiresAt };
}
