/**
 * "Verify this request": a pasted raw signed request, checked as isched's endpoint checks it, with
 * each step shown: the request read, the DKIM-Signature found and its tags, the signed headers
 * present, t= and x= against the clock, the body hash, the key retrieved, and the verdict. The
 * verdict is verifyRequest's own; the steps before it explain it and never decide it.
 */
import { canonicalBody, indexHeaders } from "../dkim/canonicalize.ts";
import { hashChunksBase64, hashOf } from "../dkim/crypto.ts";
import type { KeyResolver } from "../dkim/key-resolver.ts";
import { parseSignature } from "../dkim/signature.ts";
import type { DkimVerdict } from "../dkim/verdict.ts";
import { verifyRequest } from "../dkim/verify.ts";
import { parseRawRequest, type RawRequest } from "../http/raw-request.ts";

export interface VerifyStep {
  title: string;
  outcome: "ok" | "warning" | "failed" | "skipped";
  lines: string[];
}

export interface VerifyReport {
  steps: VerifyStep[];
  verdict: DkimVerdict | null;
}

const when = (seconds: number): string => new Date(seconds * 1000).toISOString();

/**
 * A textarea gives the text back with LF line ends; HTTP sent CRLF, and `simple` body
 * canonicalisation counts them. A text with no CR at all is put back to CRLF.
 */
export function restoreLineEnds(text: string): { bytes: Uint8Array; restored: boolean } {
  const restored = !text.includes("\r") && text.includes("\n");
  const fixed = restored ? text.replace(/\n/g, "\r\n") : text;
  return { bytes: Buffer.from(fixed, "utf8"), restored };
}

export async function verifySteps(
  bytes: Uint8Array,
  o: { keys: KeyResolver; nowMs: number; allowSha1: boolean; restored: boolean },
): Promise<VerifyReport> {
  const steps: VerifyStep[] = [];
  let request: RawRequest;
  try {
    request = parseRawRequest(bytes);
  } catch (e) {
    steps.push({ title: "Read the request", outcome: "failed", lines: [(e as Error).message] });
    return { steps, verdict: null };
  }
  steps.push({
    title: "Read the request",
    outcome: "ok",
    lines: [
      `${request.method} ${request.target} ${request.version}`,
      `${request.fields.length} header fields, ${request.body.length} body bytes`,
      ...(o.restored ? ["line ends restored to CRLF, as HTTP sends them"] : []),
    ],
  });

  const index = indexHeaders(request.fields);
  const values = index.get("dkim-signature") ?? [];
  if (values.length !== 1) {
    steps.push({
      title: "DKIM-Signature",
      outcome: "failed",
      lines: [
        values.length === 0
          ? "no DKIM-Signature header"
          : `${values.length} DKIM-Signature headers; one is allowed`,
      ],
    });
  } else {
    const parsed = parseSignature(values[0]!, { allowSha1: o.allowSha1 });
    if (!parsed.ok) {
      steps.push({
        title: "DKIM-Signature tags",
        outcome: "failed",
        lines: [`${parsed.reason}: ${parsed.message}`],
      });
    } else {
      const s = parsed.signature;
      steps.push({
        title: "DKIM-Signature tags",
        outcome: "ok",
        lines: [
          `d=${s.domain} s=${s.selector} a=${s.algorithm} c=${s.headerCanonicalization}/${s.bodyCanonicalization}`,
          `q=${s.queryMethods.join(":")}`,
          `h=${s.signedHeaders.join(":")}`,
        ],
      });
      const missing = s.signedHeaders.filter((h) => !index.has(h.toLowerCase()));
      steps.push({
        title: "Signed headers",
        outcome: missing.length === 0 ? "ok" : "warning",
        lines:
          missing.length === 0
            ? [`all ${s.signedHeaders.length} headers named in h= are present`]
            : [`named in h= but absent (signed as empty): ${missing.join(", ")}`],
      });
      const now = Math.floor(o.nowMs / 1000);
      const timeLines: string[] = [];
      let timeOutcome: VerifyStep["outcome"] = "ok";
      if (s.timestamp !== undefined) {
        timeLines.push(`signed t=${s.timestamp} (${when(s.timestamp)}), ${now - s.timestamp} s ago`);
        if (s.timestamp > now + 300) timeOutcome = "failed";
      } else timeLines.push("no t= (signing time)");
      if (s.expiration !== undefined) {
        timeLines.push(`expires x=${s.expiration} (${when(s.expiration)})`);
        if (s.expiration < now) {
          timeOutcome = "failed";
          timeLines.push(`expired ${now - s.expiration} s ago`);
        }
      } else timeLines.push("no x= (no expiry)");
      steps.push({ title: "Time", outcome: timeOutcome, lines: timeLines });
      const computed = hashChunksBase64(
        canonicalBody(request.body, s.bodyCanonicalization),
        hashOf(s.algorithm),
      );
      steps.push({
        title: "Body hash",
        outcome: computed === s.bodyHash ? "ok" : "failed",
        lines: [`bh= ${s.bodyHash}`, `computed ${computed}`],
      });
      const lookup = await o.keys.lookup({ domain: s.domain, selector: s.selector, methods: s.queryMethods });
      if (lookup.ok) {
        steps.push({
          title: "Key",
          outcome: lookup.candidates.some((c) => c.parsed.ok) ? "ok" : "failed",
          lines: lookup.candidates.map((c) =>
            c.parsed.ok
              ? `${c.source}: ${c.where}: ${c.parsed.key.type} ${c.parsed.key.bits} bits`
              : `${c.source}: ${c.where}: ${c.parsed.message}`,
          ),
        });
      } else {
        steps.push({ title: "Key", outcome: "failed", lines: [`${lookup.reason}: ${lookup.message}`] });
      }
    }
  }
  const verdict = await verifyRequest(request, { keys: o.keys, nowMs: o.nowMs, allowSha1: o.allowSha1 });
  steps.push({
    title: "Verdict",
    outcome: verdict.ok ? "ok" : "failed",
    lines: verdict.ok
      ? [`valid: signed by ${verdict.domain} (selector ${verdict.selector}), key from ${verdict.keySource}`]
      : [`invalid (${verdict.reason})${verdict.temporary ? " [temporary]" : ""}: ${verdict.message}`],
  });
  return { steps, verdict };
}
