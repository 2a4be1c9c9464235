/**
 * Reading a peer's capabilities document (draft §5, §9.2) leniently, because every implementation
 * deviates somewhere (docs/interop.md; the -00/-01 schema of draft -01 §8.2):
 * - Cyrus emits empty <max-recipients/> and <administrator/>: empty means no limit / none.
 * - CalendarServer writes the serial number as a <version> directly under <capabilities> and no
 *   <serial-number>; its administrator is a URL.
 * - Bedework writes <calendar-data> instead of <calendar-data-type>, and version "1" for "1.0".
 * - DAViCal (and EGroupware) still answer the -00/-01 schema: capability-set, supported-version-set,
 *   supported-scheduling-message-set/comp, supported-calendar-data(-type), supported-attachment-values,
 *   supported-recipient-uri-scheme-set.
 * Unknown elements are ignored; a missing or unreadable element gives the default or "no limit", and a
 * warning saying so. Only a document that is not XML or not a capabilities document is refused.
 */

import {
  type Capabilities,
  type ComponentCapability,
  DEFAULT_CALENDAR_DATA_TYPE,
  toICalendarUtc,
} from "./capabilities.ts";
import type { CalendarDataType } from "./media-type.ts";
import { CALDAV_NS, ISCHEDULE_NS } from "./namespaces.ts";
import {
  childElement,
  childElements,
  parseXml,
  type XmlElement,
  type XmlReadOptions,
  XmlSyntaxError,
} from "./xml-reader.ts";

export interface ParsedCapabilities {
  readonly capabilities: Capabilities;
  /** "legacy" for the -00/-01 capability-set schema. */
  readonly schema: "current" | "legacy";
  /** What was missing or unreadable and what was assumed instead, for the logs. */
  readonly warnings: readonly string[];
}

// Elements without a namespace are accepted too: some -00 era documents had none.
const NAMESPACES: readonly string[] = [ISCHEDULE_NS, "", CALDAV_NS];

/** Parses a query-result document. Throws XmlSyntaxError when it is not XML or not capabilities. */
export function parseCapabilities(xml: string | Uint8Array, options?: XmlReadOptions): ParsedCapabilities {
  const root = parseXml(xml, options);
  const warnings: string[] = [];
  let caps: XmlElement | undefined;
  if (isNamed(root, "query-result")) {
    caps = child(root, "capabilities") ?? child(root, "capability-set");
  } else if (isNamed(root, "capabilities") || isNamed(root, "capability-set")) {
    caps = root;
  }
  if (caps === undefined) {
    const found = isNamed(root, "query-result")
      ? "a query-result without capabilities"
      : `<${root.name}> in namespace "${root.ns}"`;
    throw new XmlSyntaxError(
      `Not a capabilities document: expected query-result/capabilities, found ${found}`,
    );
  }
  const legacy = caps.name === "capability-set";

  const capabilities: { -readonly [K in keyof Capabilities]: Capabilities[K] } = {
    serialNumber: readSerial(caps, warnings),
    versions: readVersions(caps, legacy, warnings),
    components: readComponents(caps, legacy, warnings),
    calendarDataTypes: readDataTypes(caps, legacy, warnings),
    attachments: readAttachments(caps, legacy),
  };
  const rscales = child(caps, "rscales");
  if (rscales) capabilities.rscales = words(rscales, "rscale");
  const limits = [
    ["max-content-length", "maxContentLength"],
    ["max-instances", "maxInstances"],
    ["max-recipients", "maxRecipients"],
  ] as const;
  for (const [element, key] of limits) {
    const n = readPositive(caps, element, warnings);
    if (n !== undefined) capabilities[key] = n;
  }
  for (const [element, key] of [
    ["min-date-time", "minDateTime"],
    ["max-date-time", "maxDateTime"],
  ] as const) {
    const text = child(caps, element)?.text.trim();
    if (!text) continue;
    const utc = toICalendarUtc(text);
    if (utc === undefined)
      warnings.push(`<${element}> "${clip(text)}" is not a UTC DATE-TIME; assuming no limit`);
    else capabilities[key] = utc;
  }
  const admin = child(caps, "administrator")?.text.trim();
  if (admin) capabilities.administrator = admin;
  const schemes = legacy ? child(caps, "supported-recipient-uri-scheme-set") : undefined;
  if (schemes) capabilities.recipientUriSchemes = words(schemes, "scheme").map((s) => s.toLowerCase());
  return { capabilities, schema: legacy ? "legacy" : "current", warnings };
}

function readSerial(caps: XmlElement, warnings: string[]): number {
  const serial = child(caps, "serial-number");
  if (serial) {
    const n = positive(serial.text);
    if (n !== undefined) return n;
    warnings.push(`<serial-number> "${clip(serial.text.trim())}" is not a positive integer; assuming 0`);
    return 0;
  }
  // CalendarServer: the serial number as a <version> child of <capabilities>.
  const stray = child(caps, "version");
  const n = stray ? positive(stray.text) : undefined;
  if (n !== undefined) return n;
  if (caps.name === "capabilities") warnings.push("no <serial-number>; assuming 0");
  return 0;
}

function readVersions(caps: XmlElement, legacy: boolean, warnings: string[]): string[] {
  const list = child(caps, legacy ? "supported-version-set" : "versions") ?? child(caps, "versions");
  const versions = list ? words(list, "version").map(normalizeVersion) : [];
  if (versions.length > 0) return versions;
  warnings.push("no <versions>; assuming 1.0");
  return ["1.0"];
}

function readComponents(caps: XmlElement, legacy: boolean, warnings: string[]): ComponentCapability[] {
  const list =
    child(caps, legacy ? "supported-scheduling-message-set" : "scheduling-messages") ??
    child(caps, "scheduling-messages");
  if (!list) {
    warnings.push("no <scheduling-messages>; assuming any component and method");
    return [];
  }
  const out: ComponentCapability[] = [];
  for (const comp of [
    ...childElements(list, NAMESPACES, "component"),
    ...childElements(list, NAMESPACES, "comp"),
  ]) {
    const name = comp.attrs.name?.trim();
    if (!name) {
      warnings.push(`<${comp.name}> at line ${comp.line} has no name; ignored`);
      continue;
    }
    const methods = childElements(comp, NAMESPACES, "method")
      .map((m) => m.attrs.name?.trim().toUpperCase() ?? "")
      .filter((m) => m !== "");
    out.push({ name: name.toUpperCase(), methods });
  }
  if (out.length === 0)
    warnings.push("<scheduling-messages> names no component; assuming any component and method");
  return out;
}

function readDataTypes(caps: XmlElement, legacy: boolean, warnings: string[]): CalendarDataType[] {
  const names = ["calendar-data-types", "supported-calendar-data-type", "supported-calendar-data"];
  const list = (legacy ? names.slice(1) : names).map((n) => child(caps, n)).find((e) => e !== undefined);
  const entries = list
    ? [
        ...childElements(list, NAMESPACES, "calendar-data-type"),
        ...childElements(list, NAMESPACES, "calendar-data"),
      ]
    : [];
  // draft §9.2.1.4.1: the attributes default to text/calendar and 2.0.
  const types = entries.map((e) => ({
    contentType: e.attrs["content-type"]?.trim().toLowerCase() || DEFAULT_CALENDAR_DATA_TYPE.contentType,
    version: e.attrs.version?.trim() || DEFAULT_CALENDAR_DATA_TYPE.version,
  }));
  if (types.length > 0) return types;
  warnings.push("no <calendar-data-types>; assuming text/calendar 2.0");
  return [DEFAULT_CALENDAR_DATA_TYPE];
}

function readAttachments(caps: XmlElement, legacy: boolean): Capabilities["attachments"] {
  const list =
    child(caps, legacy ? "supported-attachment-values" : "attachments") ?? child(caps, "attachments");
  // Not advertised: no restriction. Advertised empty: no attachments at all.
  if (!list) return { inline: true, external: true };
  const has = (...names: string[]) => names.some((n) => child(list, n) !== undefined);
  return { inline: has("inline", "inline-attachment"), external: has("external", "external-attachment") };
}

function readPositive(caps: XmlElement, element: string, warnings: string[]): number | undefined {
  const el = child(caps, element);
  const text = el?.text.trim();
  if (!text) return undefined;
  const n = positive(text);
  if (n === undefined)
    warnings.push(`<${element}> "${clip(text)}" is not a positive integer; assuming no limit`);
  return n;
}

function positive(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,15}$/.test(t)) return undefined;
  const n = Number(t);
  return n >= 1 ? n : undefined;
}

/** Bedework advertises "1"; the draft's versions are DIGITS.DIGITS. */
function normalizeVersion(v: string): string {
  return /^\d+$/.test(v) ? `${v}.0` : v;
}

function words(list: XmlElement, name: string): string[] {
  return childElements(list, NAMESPACES, name)
    .map((e) => e.text.trim())
    .filter((t) => t !== "");
}

function child(el: XmlElement, name: string): XmlElement | undefined {
  return childElement(el, NAMESPACES, name);
}

function isNamed(el: XmlElement, name: string): boolean {
  return el.name === name && NAMESPACES.includes(el.ns);
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
