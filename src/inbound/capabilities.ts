/**
 * The capabilities isched's endpoint advertises (draft §5, §9.2): the union of what its local
 * delivery targets can handle (so VFREEBUSY appears only when some target can answer it), its own
 * limits, and a serial number that changes whenever any of that changes.
 */
import { createHash } from "node:crypto";
import {
  type Capabilities,
  type ComponentCapability,
  DEFAULT_CALENDAR_DATA_TYPE,
} from "../ischedule/capabilities.ts";
import { capabilitiesXml } from "../ischedule/xml-writer.ts";
import type { Limits } from "./limits.ts";

export interface CapabilityInputs {
  /** What each configured local target handles. */
  targets: readonly (readonly ComponentCapability[])[];
  limits: Limits;
  administrator: string;
  inlineAttachments: boolean;
}

/** Union of components and methods; a component whose methods list is empty allows any method. */
export function unionComponents(lists: readonly (readonly ComponentCapability[])[]): ComponentCapability[] {
  const byName = new Map<string, Set<string> | "any">();
  for (const list of lists) {
    for (const c of list) {
      const prior = byName.get(c.name);
      if (c.methods.length === 0 || prior === "any") byName.set(c.name, "any");
      else byName.set(c.name, new Set([...(prior ?? []), ...c.methods]));
    }
  }
  const order = ["VEVENT", "VTODO", "VJOURNAL", "VFREEBUSY", "VPOLL"];
  return [...byName.entries()]
    .sort(([a], [b]) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99))
    .map(([name, methods]) => ({ name, methods: methods === "any" ? [] : [...methods].sort() }));
}

/** Everything but the serial number, which depends on history (see CapabilitySerial). */
export function buildCapabilities(i: CapabilityInputs, serialNumber: number): Capabilities {
  return {
    serialNumber,
    versions: ["1.0"],
    components: unionComponents(i.targets),
    calendarDataTypes: [DEFAULT_CALENDAR_DATA_TYPE],
    attachments: { inline: i.inlineAttachments, external: true },
    maxContentLength: i.limits.maxContentLength,
    minDateTime: i.limits.minDateTime,
    maxDateTime: i.limits.maxDateTime,
    maxInstances: i.limits.maxInstances,
    maxRecipients: i.limits.maxRecipients,
    administrator: i.administrator,
  };
}

/** A fingerprint of what the capabilities say, to notice a change across restarts. */
export function capabilitiesFingerprint(c: Capabilities): string {
  return createHash("sha256")
    .update(capabilitiesXml({ ...c, serialNumber: 1 }))
    .digest("base64url")
    .slice(0, 22);
}

/** The document and the headers served with it, computed once per configuration. */
export interface PublishedCapabilities {
  readonly capabilities: Capabilities;
  readonly xml: string;
  readonly etag: string;
  readonly serial: number;
}

export function publish(c: Capabilities): PublishedCapabilities {
  const xml = capabilitiesXml(c);
  const etag = `"${createHash("sha256").update(xml).digest("base64url").slice(0, 16)}"`;
  return { capabilities: c, xml, etag, serial: c.serialNumber };
}

/**
 * The capabilities to advertise for these inputs, numbered by `serialOf` from their fingerprint
 * (a serial kept in the database moves on when the fingerprint changes: the store's capabilitiesSerial).
 */
export async function advertisedCapabilities(
  i: CapabilityInputs,
  serialOf: (fingerprint: string) => number | Promise<number>,
): Promise<PublishedCapabilities> {
  const unnumbered = buildCapabilities(i, 1);
  return publish({ ...unnumbered, serialNumber: await serialOf(capabilitiesFingerprint(unnumbered)) });
}
