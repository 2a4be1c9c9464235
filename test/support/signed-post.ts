/**
 * A signed iSchedule POST as raw bytes, built once and sent as often as a test likes (a replay is
 * the same bytes again), and the error element of an answer.
 */
import { type SigningKey, signRequest } from "../../src/dkim/sign.ts";
import { type RawField, requestBytes } from "./raw-http.ts";

export interface SignedPost {
  key: SigningKey;
  originator: string;
  /** Default mailto:ann@org.test. */
  recipients?: string[];
  body: string;
  messageId?: string;
  /** The signer's clock (t=). Default now. */
  nowMs?: number;
  /** x= - t=; 0 leaves x= out. */
  expireSeconds?: number;
  /** h= (default: the signer's choice, which includes iSchedule-Message-ID). */
  signedHeaders?: string[];
}

export function signedPostBytes(s: SignedPost): Buffer {
  const fields: RawField[] = [
    ["iSchedule-Version", "1.0"],
    ["iSchedule-Message-ID", s.messageId ?? crypto.randomUUID()],
    ["Originator", s.originator],
    ["Recipient", (s.recipients ?? ["mailto:ann@org.test"]).join(", ")],
    ["Content-Type", "text/calendar; component=VEVENT; method=REQUEST"],
  ];
  const signature = signRequest({
    key: s.key,
    fields,
    body: Buffer.from(s.body),
    nowMs: s.nowMs ?? Date.now(),
    expireSeconds: s.expireSeconds,
    signedHeaders: s.signedHeaders,
  });
  return requestBytes({
    path: "/.well-known/ischedule",
    fields: [["Host", "isched.org.test"], ["DKIM-Signature", signature], ...fields],
    body: s.body,
  });
}

/** The first child of an IS:error answer (`verification-failed`...), or undefined. */
export function errorElement(xml: string): string | undefined {
  return /<error[^>]*>\s*<([a-z-]+)/.exec(xml)?.[1];
}
