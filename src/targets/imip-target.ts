/**
 * The iMIP target (RFC 6047): the scheduling message as an email through the operator's SMTP relay.
 * Used for local users (`--deliver imip`) and as the fallback for remote recipients without a usable
 * iSchedule receiver. From is isched's own address with the person's name (so the organiser's domain
 * is not spoofed, which DMARC would refuse); Reply-To is the person.
 */

import {
  allRecipients,
  type DeliveryTarget,
  EVENT_AND_TODO_METHODS,
  type TargetAttempt,
} from "../delivery/target.ts";
import { buildImipMessage, imipBodies, imipSubject, type SmtpSender } from "../imip/index.ts";
import { STATUS } from "../ischedule/status.ts";
import { describeItip, parseItip, replyingAttendee } from "../itip/index.ts";
import type { ItipMessage } from "../itip/types.ts";

export interface ImipTargetOptions {
  sender: SmtpSender;
  /** isched's own address, --imip-from. */
  from: string;
  /** Shown as the target in logs: the relay without credentials. */
  relayLabel: string;
  nowMs?: () => number;
}

const mailbox = (address: string): string => address.replace(/^mailto:/i, "");

export function imipTarget(o: ImipTargetOptions): DeliveryTarget {
  const messageIdDomain = o.from.slice(o.from.indexOf("@") + 1);
  return {
    label: `imip:${o.relayLabel}`,
    handles: [...EVENT_AND_TODO_METHODS, { name: "VJOURNAL", methods: ["PUBLISH", "ADD", "CANCEL"] }],
    async deliver(message, recipients): Promise<TargetAttempt> {
      const emailable = recipients.filter((r) => /^mailto:[^@\s]+@[^@\s]+$/i.test(r));
      const notEmail = recipients.filter((r) => !emailable.includes(r));
      const text = Buffer.from(message.body).toString("utf8");
      let itip: ItipMessage;
      try {
        itip = parseItip(text);
      } catch (e) {
        return {
          outcomes: allRecipients(recipients, STATUS.invalidService, (e as Error).message),
          target: o.relayLabel,
          error: (e as Error).message,
        };
      }
      if (emailable.length === 0) {
        return {
          outcomes: allRecipients(
            recipients,
            STATUS.invalidUser,
            "Not an email address: cannot be sent by iMIP.",
          ),
          target: o.relayLabel,
        };
      }
      const summary = describeItip(itip);
      const replier = replyingAttendee(itip);
      const person = replier ?? itip.organizer;
      const bodies = imipBodies({
        title: summary.title,
        when: summary.when,
        organizer: summary.organizer,
        attendees: summary.attendees,
      });
      const mail = buildImipMessage({
        itipText: text.replace(/\r?\n/g, "\r\n"),
        method: itip.method,
        component: itip.component,
        from: { address: o.from, name: person?.name ? `${person.name} via isched` : undefined },
        replyTo: person ? mailbox(person.address) : mailbox(message.originator),
        to: emailable.map(mailbox),
        subject: imipSubject({
          method: itip.method,
          summary: itip.summary,
          component: itip.component,
          sequence: itip.sequence,
          replyingName: replier?.name,
          partstat: replier?.partstat,
        }),
        textBody: bodies.text,
        htmlBody: bodies.html,
        messageIdDomain,
        uid: message.uuid,
        date: new Date(o.nowMs?.() ?? Date.now()),
      });
      const result = await o.sender.send(mail);
      const outcomes = recipients.map((recipient) => {
        if (notEmail.includes(recipient))
          return { recipient, requestStatus: STATUS.invalidUser, description: "Not an email address." };
        if (result.ok) {
          const rejected = result.rejections.find(
            (r) => r.address.toLowerCase() === mailbox(recipient).toLowerCase(),
          );
          if (!rejected)
            return {
              recipient,
              requestStatus: STATUS.sent,
              description: `Sent by email (${mail.messageId}).`,
            };
          return {
            recipient,
            requestStatus: rejected.temporary ? STATUS.serviceUnavailable : STATUS.invalidUser,
            description: `The mail relay refused ${mailbox(recipient)}: ${rejected.response ?? rejected.code ?? ""}`,
          };
        }
        const rejected = result.rejections.find(
          (r) => r.address.toLowerCase() === mailbox(recipient).toLowerCase(),
        );
        const temporary = rejected ? rejected.temporary : result.temporary;
        return {
          recipient,
          requestStatus: temporary ? STATUS.serviceUnavailable : STATUS.invalidUser,
          description: `Email not sent: ${result.message}`,
        };
      });
      return {
        outcomes,
        target: o.relayLabel,
        response: result.ok ? result.response : result.response,
        error: result.ok ? undefined : result.message,
      };
    },
  };
}
