/**
 * Is our clock right? DKIM signatures carry their signing time and expiry (t=, x=: RFC 6376 §3.5,
 * draft §6), so a clock minutes off makes peers refuse our signatures as not yet valid or expired,
 * and makes us refuse theirs. Without a time server of our own, the Date headers (RFC 9110 §6.6.1,
 * one-second resolution) of the other servers the diagnosis talked to stand in: each answer's date
 * is compared with the middle of our request's round trip.
 */
import { type Check, finding } from "./check.ts";

export interface DateSample {
  /** `host[:port]`, for the report. */
  readonly server: string;
  /** The Date header as received; null when the server sent none. */
  readonly date: string | null;
  readonly sentMs: number;
  readonly receivedMs: number;
}

/** Server time minus our time, in ms; undefined without a readable Date header. */
export function skewMs(s: DateSample): number | undefined {
  if (s.date === null) return undefined;
  const at = Date.parse(s.date);
  if (Number.isNaN(at)) return undefined;
  // The header is truncated to the second: compare with the middle of the second it names.
  return at + 500 - (s.sentMs + s.receivedMs) / 2;
}

export function clockCheck(
  samples: readonly DateSample[],
  o: { warnMs?: number; failMs?: number; withoutSamples?: string } = {},
): Check {
  const warnMs = o.warnMs ?? 30_000;
  const failMs = o.failMs ?? 300_000;
  const measured = samples.flatMap((s) => {
    const skew = skewMs(s);
    // The round trip bounds how well one answer can tell.
    return skew === undefined
      ? []
      : [{ server: s.server, skew, slackMs: (s.receivedMs - s.sentMs) / 2 + 500 }];
  });
  if (measured.length === 0)
    return finding("clock", "warn", "clock", "no other server sent a Date header to compare with", {
      fix:
        o.withoutSamples ??
        "make sure the clock is synchronised (timedatectl status: 'System clock synchronized: yes')",
    });
  const worst = measured.reduce((a, b) =>
    Math.abs(b.skew) - b.slackMs > Math.abs(a.skew) - a.slackMs ? b : a,
  );
  const off = Math.max(0, Math.abs(worst.skew) - worst.slackMs);
  const servers = [...new Set(measured.map((m) => m.server))].join(", ");
  const direction = worst.skew > 0 ? "behind" : "ahead of";
  const detail =
    off === 0
      ? `agrees with ${servers} (within a second)`
      : `${(off / 1000).toFixed(0)} s ${direction} ${worst.server} (compared with ${servers})`;
  const status = off > failMs ? "fail" : off > warnMs ? "warn" : "pass";
  return finding("clock", status, "clock", detail, {
    fix: "synchronise the clock (NTP: systemd-timesyncd or chrony): DKIM signatures carry their time",
  });
}
