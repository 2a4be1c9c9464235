/**
 * The human-readable alternatives of an iMIP message (RFC 6047 §2.4: scheduling messages SHOULD carry
 * one): a plain-text and an HTML rendering of a plain description of the event. Every value comes
 * from a remote peer, so single-line fields are made single-line and all of it is HTML-escaped; the
 * HTML has no scripts, links or remote resources.
 */
import { oneLine } from "./_mime.ts";

export interface ImipAttendeeLine {
  name?: string;
  address: string;
  /** PARTSTAT (RFC 5545 §3.2.12), any case: "NEEDS-ACTION". */
  partstat?: string;
}

export interface ImipDescription {
  /** The first line: "Invitation: Design meeting". */
  title: string;
  /** "Thu 2 Sep 2004, 13:00-14:00 UTC". */
  when?: string;
  /** "Bernard Desruisseaux <bernard@example.com>". */
  organizer?: string;
  attendees?: readonly ImipAttendeeLine[];
  location?: string;
  /** Multi-line text, shown as it is. */
  description?: string;
}

export interface ImipBodies {
  text: string;
  html: string;
}

interface Row {
  label: string;
  values: string[];
}

export function imipBodies(d: ImipDescription): ImipBodies {
  const rows: Row[] = [];
  const add = (label: string, value: string | undefined) => {
    const v = oneLine(value ?? "");
    if (v !== "") rows.push({ label, values: [v] });
  };
  add("When", d.when);
  add("Where", d.location);
  add("Organizer", d.organizer);
  const attendees = (d.attendees ?? []).map(attendeeLine);
  if (attendees.length > 0) rows.push({ label: "Attendees", values: attendees });
  const title = oneLine(d.title) || "(no title)";
  const description = (d.description ?? "").replace(/\r\n?/g, "\n").trim();
  return { text: plainText(title, rows, description), html: html(title, rows, description) };
}

function attendeeLine(a: ImipAttendeeLine): string {
  const name = oneLine(a.name ?? "");
  const who = name === "" ? oneLine(a.address) : `${name} <${oneLine(a.address)}>`;
  const partstat = oneLine(a.partstat ?? "")
    .toLowerCase()
    .replace(/-/g, " ");
  return partstat === "" ? who : `${who} (${partstat})`;
}

function plainText(title: string, rows: readonly Row[], description: string): string {
  const width = Math.max(0, ...rows.map((r) => r.label.length)) + 2;
  const lines = [title];
  if (rows.length > 0) lines.push("");
  for (const row of rows) {
    row.values.forEach((v, i) => {
      lines.push(`${(i === 0 ? `${row.label}:` : "").padEnd(width)}${v}`);
    });
  }
  if (description !== "") lines.push("", description);
  return `${lines.join("\n")}\n`;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

function html(title: string, rows: readonly Row[], description: string): string {
  const th = "padding:2px 12px 2px 0;vertical-align:top;text-align:left";
  const td = "padding:2px 0;vertical-align:top";
  const table = rows
    .map(
      (r) =>
        `<tr><th style="${th}">${escapeHtml(r.label)}</th>` +
        `<td style="${td}">${r.values.map(escapeHtml).join("<br>")}</td></tr>`,
    )
    .join("\n");
  const parts = [
    "<!DOCTYPE html>",
    '<html><head><meta charset="UTF-8">',
    `<title>${escapeHtml(title)}</title></head>`,
    '<body style="font-family:sans-serif">',
    `<h2>${escapeHtml(title)}</h2>`,
  ];
  if (table !== "") parts.push(`<table>\n${table}\n</table>`);
  if (description !== "") {
    parts.push(`<p>${escapeHtml(description).replace(/\n/g, "<br>\n")}</p>`);
  }
  parts.push("</body></html>");
  return `${parts.join("\n")}\n`;
}
