/**
 * Fitting one scheduling message to what a receiver advertises (draft §5: Senders SHOULD check
 * version compatibility and the advertised restrictions before sending): either
 * the message cannot go at all, and every recipient is refused with the reason, or the recipients are
 * split into groups of at most max-recipients (draft §9.2.1.10), one POST each. Pure.
 *
 * For VFREEBUSY each group needs its own body listing only its ATTENDEEs (draft §6.1); that
 * rewrite is the caller's, and so is removing duplicate recipients.
 */
import {
  acceptsMessage,
  type Capabilities,
  type MessageFacts,
  supportsVersion,
} from "../ischedule/capabilities.ts";
import type { IScheduleErrorElement } from "../ischedule/errors.ts";
import { SUPPORTED_VERSIONS } from "../ischedule/headers.ts";

export interface RefusedRecipient {
  readonly recipient: string;
  /** Why the receiver would refuse, e.g. "the peer does not accept VFREEBUSY messages (...)". */
  readonly reason: string;
  /** The error element the receiver would answer with (draft §6.1.2). */
  readonly element: IScheduleErrorElement;
}

export interface GroupPlan {
  /** Recipients in their given order, in groups of at most max-recipients; empty when all are refused. */
  readonly groups: readonly (readonly string[])[];
  readonly refused: readonly RefusedRecipient[];
}

export interface PlanGroupsOptions {
  recipients: readonly string[];
  capabilities: Capabilities;
  message: MessageFacts;
  /** The iSchedule-Version to send; default "1.0" (draft §8.2). */
  version?: string;
}

export function planGroups(o: PlanGroupsOptions): GroupPlan {
  const refuseAll = (element: IScheduleErrorElement, reason: string): GroupPlan => ({
    groups: [],
    refused: o.recipients.map((recipient) => ({ recipient, reason, element })),
  });
  const version = o.version ?? SUPPORTED_VERSIONS[0]!;
  // draft §5: without a version both can use, Senders SHOULD NOT issue requests with messages.
  if (!supportsVersion(o.capabilities, version)) {
    return refuseAll(
      "version-not-supported",
      `the peer supports iSchedule ${o.capabilities.versions.join(", ")}, not ${version}`,
    );
  }
  const acceptance = acceptsMessage(o.capabilities, o.message);
  if (!acceptance.ok) return refuseAll(acceptance.element, acceptance.reason);

  return { groups: chunk(o.recipients, o.capabilities.maxRecipients), refused: [] };
}

/** `items` in order, in runs of at most `size` (all in one run when there is no limit). */
function chunk(items: readonly string[], size: number | undefined): string[][] {
  if (items.length === 0) return [];
  if (size === undefined || size < 1 || items.length <= size) return [[...items]];
  const out: string[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
