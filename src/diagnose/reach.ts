/**
 * Can isched hand messages on? Every local delivery target (--deliver) and SMTP relay (--smtp,
 * --smtp-relay) is asked the way delivery will use it: the iSchedule target (Cyrus's /ischedule)
 * answers a capabilities request with isched's credentials, a webhook answers HTTP at all, a relay
 * takes EHLO, STARTTLS and AUTH (nothing is sent). Each answer's Date header is kept for the clock
 * check.
 */
import tls from "node:tls";
import type { LocalTargetSpec } from "../config/serve-config.ts";
import { checkSmtpRelay, parseSmtpUrl, redactSmtpUrl } from "../imip/index.ts";
import { type Check, finding, timed } from "./check.ts";
import type { DateSample } from "./clock.ts";

export interface ReachInput {
  ca?: string;
  /** Where each HTTP answer's Date header goes. */
  samples: DateSample[];
  timeoutMs?: number;
}

export async function localTargetCheck(spec: LocalTargetSpec, i: ReachInput): Promise<Check> {
  switch (spec.kind) {
    case "store":
      return finding("local-target", "pass", "local target store", "isched's own inbox: nothing to reach");
    case "imip":
      return finding("local-target", "pass", "local target imip", "by e-mail through --smtp (checked below)");
    case "ischedule":
      return httpCheck(
        i,
        spec.kind,
        `${spec.url}${spec.url.includes("?") ? "&" : "?"}action=capabilities`,
        spec,
      );
    case "webhook":
      return httpCheck(i, spec.kind, spec.url, spec);
  }
}

async function httpCheck(
  i: ReachInput,
  kind: "ischedule" | "webhook",
  url: string,
  spec: { url: string; username?: string; password?: string },
): Promise<Check> {
  const subject = `local target ${kind}:${spec.url}`;
  const headers: Record<string, string> = {};
  if (spec.username !== undefined)
    headers.Authorization = `Basic ${Buffer.from(`${spec.username}:${spec.password ?? ""}`).toString("base64")}`;
  const sentMs = Date.now();
  const got = await timed(async () => {
    try {
      return await fetch(url, {
        headers,
        signal: AbortSignal.timeout(i.timeoutMs ?? 10_000),
        ...(i.ca !== undefined && { tls: { ca: [...tls.getCACertificates("default"), i.ca] } }),
      });
    } catch (e) {
      return e as Error;
    }
  });
  const res = got.value;
  if (res instanceof Error)
    return finding("local-target", "fail", subject, `cannot reach it: ${res.message}`, {
      fix: `is the ${kind === "ischedule" ? "calendar server" : "webhook receiver"} running at ${spec.url}?`,
      ms: got.ms,
    });
  i.samples.push({
    server: new URL(url).host,
    date: res.headers.get("date"),
    sentMs,
    receivedMs: Date.now(),
  });
  await res.body?.cancel();
  if (kind === "webhook")
    return finding("local-target", "pass", subject, `answers (HTTP ${res.status} to a GET)`, { ms: got.ms });
  if (res.status === 401 || res.status === 403)
    return finding("local-target", "fail", subject, `refuses isched (HTTP ${res.status})`, {
      fix: "give the user and password in the URL (ischedule:https://user:password@host/...), or trust isched's address on the calendar server",
      ms: got.ms,
    });
  if (!res.ok)
    return finding("local-target", "warn", subject, `answers HTTP ${res.status} to a capabilities request`, {
      fix: "check the URL: it should be the calendar server's iSchedule path (Cyrus: /ischedule)",
      ms: got.ms,
    });
  return finding("local-target", "pass", subject, `answers a capabilities request (HTTP ${res.status})`, {
    ms: got.ms,
  });
}

/** An SMTP relay as isched uses it: TLS as its URL says, AUTH with its user. */
export async function smtpRelayCheck(
  flag: "--smtp" | "--smtp-relay",
  raw: string,
  i: ReachInput,
): Promise<Check> {
  const url = parseSmtpUrl(raw, flag);
  const subject = `SMTP relay ${redactSmtpUrl(url)} (${flag})`;
  const got = await timed(() => checkSmtpRelay({ url, ca: i.ca, connectTimeoutMs: i.timeoutMs ?? 10_000 }));
  const r = got.value;
  const steps = [
    url.tls === "implicit" ? "TLS" : url.tls === "starttls" ? "STARTTLS" : "STARTTLS if offered",
    url.auth ? `AUTH as ${url.auth.user}` : "no AUTH",
  ].join(", ");
  if (r.ok) return finding("smtp", "pass", subject, `greeting, EHLO, ${steps}: accepted`, { ms: got.ms });
  const fix: Record<string, string> = {
    auth: `check the user and password in ${flag}`,
    tls: "give the relay's CA with --ca-file, or use the name its certificate has",
    connect: `is the relay running at ${url.host}:${url.port}, and reachable from here?`,
    timeout: `is the relay running at ${url.host}:${url.port}, and reachable from here?`,
  };
  return finding("smtp", "fail", subject, r.message, {
    fix: fix[r.kind] ?? `check ${flag}`,
    ms: got.ms,
  });
}
