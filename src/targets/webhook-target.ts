/**
 * The `webhook:URL` target: a JSON POST per attempt, signed with HMAC-SHA256 so the receiver knows
 * it comes from isched; the JSON answer gives each recipient's status (and, for free/busy, the
 * VFREEBUSY reply). The format is documented in docs/webhook.md.
 *
 * Request headers: `X-Isched-Timestamp: <unix seconds>`,
 * `X-Isched-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
 */
import { createHmac } from "node:crypto";
import { classifyPeerStatus, outcomeOf } from "../delivery/policy.ts";
import {
  allRecipients,
  type DeliveryTarget,
  EVENT_AND_TODO_METHODS,
  matchAnswers,
  type TargetAttempt,
} from "../delivery/target.ts";
import { STATUS } from "../ischedule/status.ts";
import { USER_AGENT } from "../version.ts";

export interface WebhookOptions {
  url: string;
  /** The shared secret, or where to read the one in use now (a reload can change it). */
  secret: string | (() => string);
  ca?: string;
  timeoutMs?: number;
  nowMs?: () => number;
}

export interface WebhookRequestBody {
  messageId: string;
  originator: string;
  recipients: readonly string[];
  method: string;
  component: string;
  uid: string | null;
  contentType: string;
  calendar: string;
  dkim: { result: string; domain: string | null };
}

export interface WebhookAnswer {
  recipients: { recipient: string; status: string; calendarData?: string; description?: string }[];
}

const MAX_RESPONSE_CHARS = 1024 * 1024;

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export function webhookTarget(o: WebhookOptions): DeliveryTarget {
  const now = o.nowMs ?? Date.now;
  return {
    label: `webhook:${o.url}`,
    handles: [...EVENT_AND_TODO_METHODS, { name: "VFREEBUSY", methods: ["REQUEST"] }],
    async deliver(message, recipients, signal): Promise<TargetAttempt> {
      const payload: WebhookRequestBody = {
        messageId: message.uuid,
        originator: message.originator,
        recipients,
        method: message.method,
        component: message.component,
        uid: message.uid,
        contentType: message.contentType,
        calendar: Buffer.from(message.body).toString("utf8"),
        dkim: { result: message.dkimResult, domain: message.dkimDomain },
      };
      const body = JSON.stringify(payload);
      const timestamp = Math.floor(now() / 1000);
      const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
      let status: number;
      let text: string;
      try {
        const res = await fetch(o.url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Isched-Timestamp": String(timestamp),
            "X-Isched-Signature": signWebhook(
              typeof o.secret === "string" ? o.secret : o.secret(),
              timestamp,
              body,
            ),
          },
          body,
          redirect: "manual",
          signal: AbortSignal.any([signal, timeout]),
          tls: o.ca ? { ca: o.ca } : undefined,
        });
        status = res.status;
        text = (await res.text()).slice(0, MAX_RESPONSE_CHARS);
      } catch (e) {
        return {
          outcomes: allRecipients(recipients, STATUS.serviceUnavailable, "The webhook did not answer."),
          target: o.url,
          error: `${o.url}: ${timeout.aborted ? "timed out" : (e as Error).message}`,
        };
      }
      const base = { target: o.url, httpStatus: status, response: text };
      if (status < 200 || status > 299) {
        const temporary = classifyPeerStatus(status, "POST") === "temporary";
        return {
          ...base,
          outcomes: allRecipients(
            recipients,
            outcomeOf(temporary ? "try-later" : "refused").requestStatus,
            `The webhook answered HTTP ${status}.`,
          ),
          error: `${o.url} answered HTTP ${status}`,
        };
      }
      const answer = readAnswer(text);
      if (typeof answer === "string") {
        return {
          ...base,
          outcomes: allRecipients(
            recipients,
            STATUS.serviceUnavailable,
            "The webhook's answer was not understood.",
          ),
          error: answer,
        };
      }
      const answers = answer.recipients.map((r) => ({ ...r, requestStatus: r.status }));
      return {
        ...base,
        outcomes: matchAnswers(recipients, answers, "The webhook gave no status for this recipient."),
      };
    },
  };
}

/** The answer, or a sentence saying what is wrong with it. */
export function readAnswer(text: string): WebhookAnswer | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "the webhook's answer is not JSON";
  }
  const list = (value as { recipients?: unknown })?.recipients;
  if (!Array.isArray(list)) return 'the webhook\'s answer has no "recipients" list';
  const recipients: WebhookAnswer["recipients"] = [];
  for (const item of list) {
    const r = item as Record<string, unknown>;
    if (typeof r?.recipient !== "string" || typeof r.status !== "string" || !/^\d\.\d+(;|$)/.test(r.status)) {
      return 'each recipient in the webhook\'s answer needs a recipient and a status such as "2.0;Success"';
    }
    recipients.push({
      recipient: r.recipient,
      status: r.status,
      calendarData: typeof r.calendarData === "string" ? r.calendarData : undefined,
      description: typeof r.description === "string" ? r.description : undefined,
    });
  }
  return { recipients };
}
