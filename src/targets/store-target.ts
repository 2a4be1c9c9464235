/**
 * The `store` target: isched keeps the message in its own inbox (the messages and deliveries tables
 * are the inbox), readable through the API. Delivery is the database row itself, so it always
 * succeeds; it cannot answer free/busy, so it does not claim VFREEBUSY.
 */

import { allRecipients, type DeliveryTarget, EVENT_AND_TODO_METHODS } from "../delivery/target.ts";
import { STATUS } from "../ischedule/status.ts";

export function storeTarget(): DeliveryTarget {
  return {
    label: "store",
    immediate: true,
    handles: [...EVENT_AND_TODO_METHODS, { name: "VJOURNAL", methods: ["PUBLISH", "ADD", "CANCEL"] }],
    async deliver(message, recipients) {
      if (message.component === "VFREEBUSY") {
        return {
          outcomes: allRecipients(
            recipients,
            STATUS.noSchedulingSupport,
            "This user's calendar cannot answer free/busy queries.",
          ),
          target: "store",
        };
      }
      return {
        outcomes: allRecipients(recipients, STATUS.success, "Delivered to the isched inbox."),
        target: "store",
      };
    },
  };
}
