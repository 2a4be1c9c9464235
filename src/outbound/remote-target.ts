/**
 * The remote iSchedule delivery target: isched as an iSchedule Sender (draft §3). One deliver() call
 * takes recipients of one remote domain (the dispatcher groups them so) and:
 *
 * 1. discovers the receivers (discovery.ts: static route, SRV, TXT path). A signed request waits
 *    (no attempt counted) while isched's own key is not yet visible in DNS.
 * 2. tries the SRV targets in RFC 2782 order. A target whose capabilities cannot be fetched, or that
 *    cannot be reached for a POST (refused, timed out, TLS), is skipped for the next one with what
 *    is left to send; a target that answered is never asked again in the same attempt.
 * 3. fits the message to the capabilities (fit.ts, draft §5) and splits the recipients into groups
 *    of at most max-recipients.
 * 4. POSTs each group once (schedule-request.ts, post-schedule.ts): signed unless the peer route
 *    says sign=no, a VFREEBUSY body restricted to the group's ATTENDEEs (draft §6.1), the same
 *    iSchedule-Message-ID on every retry of the same group.
 * 5. reads each answer (read-answer.ts) into one outcome per recipient, with where it went.
 *
 * What each thing that can go wrong means (no receiver, a refused request, a target down...) is the
 * delivery policy's (src/delivery/policy.ts outcomeOf): this file says what happened.
 *
 * A permanent (301, 308) redirect of a POST is remembered by this target for the rest of the process,
 * so later groups and later attempts go straight to the new URL. The capabilities cache is not told:
 * it has no way to be, and its next refresh of the old URL meets the peer's redirect of the GET
 * itself. Capabilities fetched before the move keep applying to the new URL (same peer, moved).
 */

import { outcomeOf } from "../delivery/policy.ts";
import {
  type DeliveryTarget,
  EVENT_AND_TODO_METHODS,
  type RecipientOutcome,
  type TargetAttempt,
  type TargetMessage,
} from "../delivery/target.ts";
import type { SigningKey } from "../dkim/sign.ts";
import { addressDomain, addressKey } from "../ischedule/address.ts";
import type { ComponentCapability } from "../ischedule/capabilities.ts";
import { classifyStatus } from "../ischedule/status.ts";
import { restrictFreeBusyAttendees } from "../itip/index.ts";
import type { PeerRequest, PeerResponse } from "../net/peer-fetch.ts";
import { USER_AGENT } from "../version.ts";
import type { CapabilitiesCache, CapabilitiesResult } from "./capabilities-cache.ts";
import { type Discovery, type DiscoveryService, SRV_SERVICE } from "./discovery.ts";
import { planGroups } from "./fit.ts";
import {
  messageFacts,
  readSendFacts,
  readStoredItip,
  type StoredItip,
  storedMessageFacts,
} from "./message-facts.ts";
import { MovedEndpoints, postSchedule, untilAborted } from "./post-schedule.ts";
import { readAnswer } from "./read-answer.ts";
import type { PeerScheme } from "./redirects.ts";
import { scheduleMessageId, scheduleRequest } from "./schedule-request.ts";
import type { PeerRoute } from "./static-routes.ts";

export interface RemoteIScheduleTargetOptions {
  discovery: DiscoveryService;
  capabilities: CapabilitiesCache;
  /** peerFetch bound to its options: address policy, pinned TLS, time and size caps. */
  fetch: (req: PeerRequest) => Promise<PeerResponse>;
  /** isched's key for the Originator's domain; undefined when it has none. */
  signingKey: (originatorDomain: string) => SigningKey | undefined;
  /** sign=no routes send unsigned (a trusted peer that cannot verify DKIM, e.g. Debian's Cyrus). */
  peerRoutes: readonly PeerRoute[];
  /**
   * Why requests signed for the Originator's domain must wait (its key is not yet visible in DNS,
   * src/keys/key-publication.ts); undefined when they may go.
   */
  keyWait?: (originatorDomain: string) => string | undefined;
  nowMs?: () => number;
  userAgent?: string;
  /** Redirects followed per POST; default 3, as CalendarServer (draft §4.4: Senders MUST handle redirects). */
  maxRedirects?: number;
}

/** What iTIP lets a sender send (RFC 5546 §3); each receiver narrows it with its capabilities. */
const REMOTE_HANDLES: readonly ComponentCapability[] = [
  ...EVENT_AND_TODO_METHODS,
  { name: "VJOURNAL", methods: ["PUBLISH", "ADD", "CANCEL"] },
  { name: "VFREEBUSY", methods: ["REQUEST"] },
];

type Failure = { reason: string; kind: "temporary" | "no-service" | "configuration" };
type Outcome = Omit<RecipientOutcome, "recipient">;
type Found = Extract<Discovery, { kind: "found" }>;

/** What one deliver() call gathers: outcomes by address key, and the attempt-level record. */
interface Attempt {
  readonly outcomes: Map<string, RecipientOutcome>;
  readonly errors: string[];
  target?: string;
  httpStatus?: number;
  response?: string;
  retryAfterMs?: number;
}

/**
 * Stored messages never change, and one message goes out in many attempts (a group per domain, each
 * retry): parse each once. A few dozen recent ones are kept; a 1,000-attendee invitation to 100
 * domains was otherwise parsed 100 times.
 */
const PARSED_KEEP = 64;
const parsed = new Map<string, StoredItip>();
function parsedOnce(body: Uint8Array, uuid: string): StoredItip {
  const hit = parsed.get(uuid);
  if (hit) return hit;
  const result = readStoredItip(body, uuid);
  if (parsed.size >= PARSED_KEEP) parsed.delete(parsed.keys().next().value!);
  parsed.set(uuid, result);
  return result;
}

export function remoteIScheduleTarget(o: RemoteIScheduleTargetOptions): DeliveryTarget {
  const now = o.nowMs ?? Date.now;
  const userAgent = o.userAgent ?? USER_AGENT;
  const moved = new MovedEndpoints();

  /** Everything one domain's recipients go through; outcomes land in `a`. */
  async function toDomain(
    message: TargetMessage,
    domain: string,
    recipients: readonly string[],
    itip: () => StoredItip,
    signal: AbortSignal,
    a: Attempt,
  ): Promise<void> {
    const settle = (rs: readonly string[], outcome: Outcome): void => {
      for (const recipient of rs) a.outcomes.set(addressKey(recipient), { ...outcome, recipient });
    };
    let found: Discovery;
    try {
      found = await untilAborted(o.discovery.discover(domain), signal);
    } catch (err) {
      found = { kind: "error", temporary: true, reason: `discovery for ${domain} failed: ${messageOf(err)}` };
    }
    if (found.kind !== "found") {
      a.target ??= `${SRV_SERVICE}.${domain}`;
      a.errors.push(found.reason);
      // draft §4: no receiver for the domain, so iSchedule cannot reach these users; email can.
      if (found.kind === "none")
        settle(recipients, { ...outcomeOf("no-receiver"), description: found.reason });
      else settle(recipients, { ...outcomeOf("try-later"), description: found.reason });
      return;
    }
    // The facts kept at intake answer the capabilities checks without parsing the body; a message
    // without them is parsed now, and one that cannot be read is isched's own problem, sent nowhere.
    const kept = readSendFacts(message.sendFacts);
    const unreadable = (rs: readonly string[], problem: string): void => {
      a.errors.push(problem);
      settle(rs, { ...outcomeOf("unreadable-message"), description: problem });
    };
    const read = kept === undefined ? itip() : undefined;
    if (read !== undefined && "problem" in read) return unreadable(recipients, read.problem);
    const sending = read?.itip ?? message;
    let key: SigningKey | undefined;
    if (signs(found, domain, o.peerRoutes)) {
      const originatorDomain = addressDomain(message.originator) ?? "";
      key = o.signingKey(originatorDomain);
      if (key === undefined) {
        // draft §7.1: every request is signed; a peer would refuse it unsigned. A configuration gap.
        const why = `isched has no DKIM key for ${originatorDomain || message.originator} to sign with`;
        a.errors.push(why);
        settle(recipients, { ...outcomeOf("own-configuration"), description: why });
        return;
      }
      const wait = o.keyWait?.(originatorDomain);
      if (wait !== undefined) {
        settle(recipients, { ...outcomeOf("own-key-unpublished"), description: wait });
        return;
      }
    }

    const failures: Failure[] = [];
    // draft §10: TLS for every exchange; plain HTTP only for a peer named with --peer D=legacy-http.
    const scheme: PeerScheme = { peer: domain, legacyHttp: found.legacyHttp };
    const plainNote = `none: plain HTTP (--peer ${found.domain}=legacy-http)`;
    /** Sends what it can through one target; answers the recipients left for the next one. */
    const viaTarget = async (targetUrl: string, pending: readonly string[]): Promise<readonly string[]> => {
      let caps: CapabilitiesResult;
      try {
        caps = await untilAborted(o.capabilities.get(targetUrl, scheme), signal);
      } catch (err) {
        caps = { ok: false, temporary: true, reason: `capabilities of ${targetUrl}: ${messageOf(err)}` };
      }
      a.target = targetUrl;
      if (!caps.ok) {
        failures.push({ reason: caps.reason, kind: caps.temporary ? "temporary" : "no-service" });
        return pending;
      }
      const sizeBytes = message.body.byteLength;
      const { maxInstances } = caps.capabilities;
      const { component, method } = sending;
      let facts = kept && storedMessageFacts({ component, method, sizeBytes, sendFacts: kept, maxInstances });
      if (!facts) {
        // A bounded recurrence and a receiver with max-instances: only the parsed message counts them.
        const parsed = itip();
        if ("problem" in parsed) {
          unreadable(pending, parsed.problem);
          return [];
        }
        facts = messageFacts({ itip: parsed.itip, sizeBytes, maxInstances });
      }
      const plan = planGroups({ recipients: pending, capabilities: caps.capabilities, message: facts });
      for (const r of plan.refused) {
        const via = { target: caps.url };
        settle([r.recipient], { ...outcomeOf("cannot-take"), description: r.reason, via });
      }
      for (const [n, group] of plan.groups.entries()) {
        const sent = await sendGroup(moved.resolve(caps.url), group);
        if (sent === "unreachable") return plan.groups.slice(n).flat();
      }
      return [];
    };

    const sendGroup = async (
      endpoint: string,
      group: readonly string[],
    ): Promise<"answered" | "unreachable"> => {
      let body = message.body;
      if (sending.component === "VFREEBUSY") {
        try {
          const text = read?.text ?? new TextDecoder().decode(message.body);
          body = Buffer.from(restrictFreeBusyAttendees(text, group));
        } catch (err) {
          // draft §6.1: a free/busy Recipient list must equal the ATTENDEEs; a stranger cannot be asked.
          settle(group, { ...outcomeOf("not-a-recipient"), description: messageOf(err) });
          return "answered";
        }
      }
      const messageId = scheduleMessageId(message.uuid, group);
      const result = await postSchedule({
        fetch: o.fetch,
        url: endpoint,
        signal,
        maxRedirects: o.maxRedirects,
        build: (url) =>
          scheduleRequest({
            url,
            originator: message.originator,
            recipients: group,
            method: sending.method,
            component: sending.component,
            body,
            messageId,
            userAgent,
            key,
            nowMs: now(),
          }),
        // draft §8.3: every response carries the serial; a new one makes the cache refetch.
        onResponse: (url, res) => o.capabilities.noteSerial(url, res.headers.get("ischedule-capabilities")),
        scheme,
      });
      a.target = result.url;
      if (result.kind === "failed") {
        failures.push({ reason: result.reason, kind: result.temporary ? "temporary" : "configuration" });
        return "unreachable";
      }
      if (result.kind === "redirect-refused") {
        a.httpStatus = result.httpStatus;
        a.errors.push(result.reason);
        const via = { target: result.url, httpStatus: result.httpStatus };
        settle(group, { ...outcomeOf("redirect-refused"), description: result.reason, via });
        return "answered";
      }
      if (result.movedTo !== undefined) moved.remember(endpoint, result.movedTo);
      const answer = readAnswer({
        response: result.response,
        url: result.url,
        recipients: group,
        nowMs: now(),
      });
      const plain = result.url.startsWith("http:");
      for (const outcome of answer.outcomes) {
        const marked = plain ? { ...outcome, via: { ...outcome.via, tls: plainNote } } : outcome;
        a.outcomes.set(addressKey(outcome.recipient), marked);
      }
      a.httpStatus = result.response.status;
      a.response = answer.outcomes[0]?.via?.response;
      if (answer.error !== undefined) a.errors.push(answer.error);
      if (answer.retryAfterMs !== undefined)
        a.retryAfterMs = Math.max(a.retryAfterMs ?? 0, answer.retryAfterMs);
      return "answered";
    };

    let pending: readonly string[] = recipients;
    for (const target of found.targets) {
      if (pending.length === 0 || signal.aborted) break;
      pending = await viaTarget(target.url, pending);
    }
    if (pending.length === 0) return;
    if (signal.aborted) failures.push({ reason: "the attempt ran out of time", kind: "temporary" });
    const description = [...new Set(failures.map((f) => f.reason))].join("; ") || "no receiver was tried";
    a.errors.push(description);
    if (failures.some((f) => f.kind === "temporary"))
      settle(pending, { ...outcomeOf("try-later"), description });
    else if (failures.some((f) => f.kind === "no-service"))
      settle(pending, { ...outcomeOf("serves-no-ischedule"), description });
    else settle(pending, { ...outcomeOf("own-configuration"), description });
  }

  return {
    label: "ischedule",
    handles: REMOTE_HANDLES,
    async deliver(message, recipients, signal): Promise<TargetAttempt> {
      const a: Attempt = { outcomes: new Map(), errors: [] };
      let read: StoredItip | undefined;
      const itip = () => (read ??= parsedOnce(message.body, message.uuid));
      const byDomain = new Map<string, string[]>();
      const seen = new Set<string>();
      for (const recipient of recipients) {
        const key = addressKey(recipient);
        if (seen.has(key)) continue;
        seen.add(key);
        const domain = addressDomain(recipient);
        if (domain === undefined) {
          const description = `${recipient} has no domain to discover a receiver for (draft §4.1)`;
          a.outcomes.set(key, { recipient, ...outcomeOf("not-a-recipient"), description });
          continue;
        }
        byDomain.set(domain, [...(byDomain.get(domain) ?? []), recipient]);
      }
      for (const [domain, list] of byDomain) await toDomain(message, domain, list, itip, signal, a);

      const outcomes = recipients.map((recipient): RecipientOutcome => {
        const outcome = a.outcomes.get(addressKey(recipient));
        return outcome ? { ...outcome, recipient } : { recipient, ...outcomeOf("try-later") };
      });
      // An attempt-level error would be logged for every recipient: only when none was delivered.
      const failed = outcomes.every((r) => classifyStatus(r.requestStatus) !== "delivered");
      const error = failed && a.errors.length > 0 ? [...new Set(a.errors)].join("; ") : undefined;
      return {
        outcomes,
        target: a.target ?? "ischedule",
        ...(a.httpStatus !== undefined ? { httpStatus: a.httpStatus } : {}),
        ...(a.response !== undefined ? { response: a.response } : {}),
        ...(a.retryAfterMs !== undefined ? { retryAfterMs: a.retryAfterMs } : {}),
        ...(error !== undefined ? { error } : {}),
      };
    },
  };
}

/** False for a static route with sign=no, whether discovery or the route list says so. */
function signs(found: Found, domain: string, routes: readonly PeerRoute[]): boolean {
  if (!found.sign) return false;
  const route = routes.find((r) => r.domain === found.domain || r.domain === domain);
  return route?.sign ?? true;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
