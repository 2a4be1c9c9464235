/**
 * Finding the iMIP part of a mail message (RFC 6047 §2.4) and decoding it to iCalendar text. Pure.
 *
 * 1. A "text/calendar" part with a "method" parameter is an iMIP body part, wherever it sits in the
 *    MIME tree (§2.4: receivers MUST process text/calendar parts enclosed in any multipart/*). The one
 *    inside multipart/alternative comes first: that is where Cyrus and most clients put the message
 *    proper, next to its human-readable forms. Nextcloud sends only an attachment, `event.ics` with
 *    `text/calendar; method=REQUEST`, which this rule finds as well.
 * 2. Without one (§2.4 Note 2: text/calendar without "method" is not iMIP), an `application/ics`
 *    part, a method-less text/calendar part or any part named `*.ics` counts only if its iCalendar
 *    text has a METHOD property, and then `declared` is false: the sender never said it was iMIP, so
 *    the caller should relay rather than refuse it when it turns out not to be valid iTIP.
 *
 * Several iMIP parts with different content (§2.4 Note 1 allows one per method in multipart/mixed)
 * cannot become one iSchedule message: the result is "not-imip" and the mail goes on as mail. A
 * declared part that cannot be decoded (bad base64, unknown transfer encoding or charset, octets
 * that are not valid in its charset) is "malformed".
 */
import { decodeBody, leafEntities, type MimeEntity, readMime } from "./_mime-walk.ts";

export type ImipExtraction =
  | {
      readonly kind: "imip";
      /** The iCalendar text, decoded from its transfer encoding and charset. */
      readonly itipText: string;
      /** Upper-case: the "method" parameter, or the METHOD property when the part declared none. */
      readonly method: string;
      /** IMAP section number of the part (RFC 3501 §6.4.5): "1.3". */
      readonly partPath: string;
      /** True when the part is text/calendar with a "method" parameter (RFC 6047 §2.4). */
      readonly declared: boolean;
    }
  | { readonly kind: "not-imip"; readonly reason: string }
  | {
      readonly kind: "malformed";
      readonly reason: string;
      readonly partPath: string;
      /** The part's "method" parameter, upper-case. */
      readonly method: string;
    };

export function extractImip(raw: Uint8Array): ImipExtraction {
  const leaves = leafEntities(readMime(raw));
  const declared = leaves.filter((e) => e.type === "text/calendar" && (e.params.method ?? "") !== "");
  if (declared.length > 0) {
    const ordered = [
      ...declared.filter((e) => e.parentType === "multipart/alternative"),
      ...declared.filter((e) => e.parentType !== "multipart/alternative"),
    ];
    const texts: { entity: MimeEntity; text: string }[] = [];
    for (const entity of ordered) {
      const text = decodeText(entity);
      if (typeof text !== "string") {
        return {
          kind: "malformed",
          reason: `The iMIP part ${entity.path} is malformed: ${text.error}`,
          partPath: entity.path,
          method: entity.params.method!.toUpperCase(),
        };
      }
      texts.push({ entity, text });
    }
    if (!allSame(texts.map((t) => t.text))) {
      return {
        kind: "not-imip",
        reason: `${texts.length} iMIP parts with different content (RFC 6047 §2.4 Note 1)`,
      };
    }
    const chosen = texts[0]!;
    return {
      kind: "imip",
      itipText: chosen.text,
      method: chosen.entity.params.method!.toUpperCase(),
      partPath: chosen.entity.path,
      declared: true,
    };
  }

  const attached = leaves.filter(isCalendarAttachment);
  const found: { entity: MimeEntity; text: string; method: string }[] = [];
  for (const entity of attached) {
    const text = decodeText(entity);
    if (typeof text !== "string") continue;
    const method = methodProperty(text);
    if (method !== undefined) found.push({ entity, text, method });
  }
  if (found.length === 0) {
    return {
      kind: "not-imip",
      reason: attached.length > 0 ? "the calendar attachment has no METHOD" : "no calendar part",
    };
  }
  if (!allSame(found.map((f) => f.text))) {
    return { kind: "not-imip", reason: `${found.length} calendar attachments with different content` };
  }
  const chosen = found[0]!;
  return {
    kind: "imip",
    itipText: chosen.text,
    method: chosen.method,
    partPath: chosen.entity.path,
    declared: false,
  };
}

function isCalendarAttachment(e: MimeEntity): boolean {
  if (e.type === "application/ics" || e.type === "text/calendar") return true;
  return e.filename !== undefined && /\.ics$/i.test(decodedName(e.filename));
}

/**
 * RFC 6047 §2.4: iCalendar is UTF-8 unless a charset says otherwise (RFC 5545 §3.1.4), and a charset
 * other than UTF-8 is a mistake some senders make, so any charset the WHATWG Encoding Standard
 * knows is decoded. Octets that are not valid in the charset make the part malformed rather than
 * silently replaced: an ATTENDEE address must not change on the way.
 */
function decodeText(e: MimeEntity): string | { error: string } {
  const decoded = decodeBody(e);
  if ("error" in decoded) return decoded;
  const charset = e.params.charset || "utf-8";
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    return { error: `its charset "${charset.slice(0, 40)}" is unknown` };
  }
  try {
    return decoder.decode(decoded.bytes);
  } catch {
    return { error: `its content is not valid ${decoder.encoding}` };
  }
}

/** The METHOD property of the VCALENDAR, upper-case, read from the unfolded lines (RFC 5545 §3.1). */
function methodProperty(text: string): string | undefined {
  const unfolded = text.replace(/\r?\n[ \t]/g, "");
  const m = /^METHOD(?:;[^:\r\n]*)?:([^\r\n]*)$/im.exec(unfolded);
  const value = m?.[1]?.trim();
  return value ? value.toUpperCase() : undefined;
}

/** An RFC 2047 encoded-word filename (as RFC 2231 names come back from the parameter parser). */
function decodedName(name: string): string {
  const word = /^=\?[^?]+\?([BbQq])\?([^?]*)\?=$/.exec(name.trim());
  if (!word) return name;
  if (word[1]!.toUpperCase() === "B") return Buffer.from(word[2]!, "base64").toString("latin1");
  return word[2]!
    .replace(/_/g, " ")
    .replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

function allSame(texts: readonly string[]): boolean {
  const norm = (t: string) => t.replace(/\r\n/g, "\n");
  return texts.every((t) => norm(t) === norm(texts[0]!));
}
