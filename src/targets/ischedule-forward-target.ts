/**
 * The `ischedule:URL` target: forward to the organisation's own iSchedule server (Cyrus IMAP's
 * /ischedule, say) over a trusted link, unsigned, with optional HTTP basic auth. This is how a
 * calendar server that cannot verify DKIM, or is not reachable from outside, sits behind isched.
 * The operator gave the URL, so no address policy applies; TLS is verified (with --ca-file).
 */

import { classifyPeerStatus, outcomeOf, redirectKind, retryAfter } from "../delivery/policy.ts";
import {
  allRecipients,
  type DeliveryTarget,
  EVENT_AND_TODO_METHODS,
  matchAnswers,
  type TargetAttempt,
} from "../delivery/target.ts";
import type { ComponentCapability } from "../ischedule/capabilities.ts";
import { parseScheduleResponse } from "../ischedule/response-reader.ts";
import { STATUS } from "../ischedule/status.ts";
import { USER_AGENT } from "../version.ts";

export interface IScheduleForwardOptions {
  url: string;
  username?: string;
  password?: string;
  /** Extra CA certificates (PEM). */
  ca?: string;
  /** What the server handles; by default events, to-dos and free/busy. */
  handles?: readonly ComponentCapability[];
  timeoutMs?: number;
  nowMs?: () => number;
}

const MAX_REDIRECTS = 3;
const MAX_RESPONSE_CHARS = 1024 * 1024;

export function iScheduleForwardTarget(o: IScheduleForwardOptions): DeliveryTarget {
  const authorization =
    o.username !== undefined
      ? `Basic ${Buffer.from(`${o.username}:${o.password ?? ""}`).toString("base64")}`
      : undefined;
  return {
    label: `ischedule:${o.url}`,
    handles: o.handles ?? [...EVENT_AND_TODO_METHODS, { name: "VFREEBUSY", methods: ["REQUEST"] }],
    async deliver(message, recipients, signal): Promise<TargetAttempt> {
      const headers: Record<string, string> = {
        "iSchedule-Version": "1.0",
        "iSchedule-Message-ID": message.uuid,
        Originator: message.originator,
        Recipient: recipients.join(","),
        "Content-Type": message.contentType,
        "Cache-Control": "no-cache, no-transform",
        "User-Agent": USER_AGENT,
      };
      if (authorization) headers.Authorization = authorization;
      let url = o.url;
      const timeout = AbortSignal.timeout(o.timeoutMs ?? 30_000);
      try {
        for (let hop = 0; ; hop++) {
          const res = await fetch(url, {
            method: "POST",
            headers,
            body: message.body as Uint8Array<ArrayBuffer>,
            redirect: "manual",
            signal: AbortSignal.any([signal, timeout]),
            tls: o.ca ? { ca: o.ca } : undefined,
          });
          const location = res.headers.get("location");
          if (redirectKind(res.status, "POST") !== undefined && location && hop < MAX_REDIRECTS) {
            // Keep POST and the body on every redirect (Cyrus answers 301 on /.well-known/ischedule).
            url = new URL(location, url).toString();
            continue;
          }
          const text = (await res.text()).slice(0, MAX_RESPONSE_CHARS);
          return interpret({
            status: res.status,
            text,
            recipients,
            url,
            retryAfterMs: retryAfter(res.headers.get("retry-after"), (o.nowMs ?? Date.now)()),
          });
        }
      } catch (e) {
        const reason = timeout.aborted ? "timed out" : (e as Error).message;
        return {
          outcomes: allRecipients(
            recipients,
            STATUS.serviceUnavailable,
            "The calendar server did not answer.",
          ),
          target: url,
          error: `${url}: ${reason}`,
        };
      }
    },
  };
}

/** Maps the server's answer to one outcome per recipient asked. */
function interpret(a: {
  status: number;
  text: string;
  recipients: readonly string[];
  url: string;
  retryAfterMs?: number;
}): TargetAttempt {
  const { status, text, recipients, url } = a;
  const base = { target: url, httpStatus: status, response: text };
  let parsed: ReturnType<typeof parseScheduleResponse> | undefined;
  try {
    parsed = parseScheduleResponse(text);
  } catch {
    parsed = undefined;
  }
  if (status === 200 && parsed?.kind === "responses") {
    return {
      ...base,
      outcomes: matchAnswers(
        recipients,
        parsed.responses,
        "The calendar server did not answer for this recipient.",
      ),
    };
  }
  const why =
    parsed?.kind === "error"
      ? `${parsed.element ?? "error"}${parsed.description ? `: ${parsed.description}` : ""}`
      : `HTTP ${status}`;
  // What the status means (try later, or refused for good) is the delivery policy's.
  const temporary = classifyPeerStatus(status, "POST") === "temporary";
  return {
    ...base,
    outcomes: allRecipients(
      recipients,
      outcomeOf(temporary ? "try-later" : "refused").requestStatus,
      `The calendar server refused the request (${why}).`,
    ),
    error: `${url} answered ${why}`,
    retryAfterMs: a.retryAfterMs,
  };
}
