/**
 * A minimal CalDAV client (fetch, HTTP Basic) for tests against the Cyrus fixture
 * (test/support/cyrus.ts): put, get, list and delete calendar objects, read the scheduling inbox,
 * ask for free/busy.
 *
 * Cyrus's collections for user NAME: /dav/calendars/user/NAME/ holds `Default/` (the calendar
 * that scheduling deliveries go to), `Inbox/` (scheduling inbox) and `Outbox/`. It names an object
 * delivered by scheduling `<UID>.ics` (the UID as it is, `@` included), so `getEvent` finds by
 * name first and by UID second.
 */

/** Anything with Cyrus's base URL: a RunningCyrus or `{ httpUrl }`. */
export interface CalDavServer {
  readonly httpUrl: string;
}

export interface CalendarObject {
  /** Absolute path, e.g. /dav/calendars/user/cyrus/Inbox/abc.ics */
  href: string;
  etag: string | undefined;
  ics: string;
}

export interface PutResult {
  /** 201 created, 204 replaced. */
  status: number;
  etag: string | undefined;
  scheduleTag: string | undefined;
}

export class CalDavError extends Error {
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`CalDAV ${method} ${url}: HTTP ${status}${body === "" ? "" : `\n${body}`}`);
  }
}

export function collectionPath(user: string, calendar: string): string {
  return `/dav/calendars/user/${encodeURIComponent(user)}/${encodeURIComponent(calendar)}/`;
}

export function eventPath(user: string, calendar: string, uid: string): string {
  return `${collectionPath(user, calendar)}${encodeURIComponent(uid)}.ics`;
}

/** PUT /dav/calendars/user/USER/CALENDAR/UID.ics; Cyrus schedules (iMIP, local delivery) during it. */
export async function putEvent(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
  uid: string,
  ics: string,
): Promise<PutResult> {
  const res = await request(server, user, password, "PUT", eventPath(user, calendar, uid), {
    body: ics,
    headers: { "Content-Type": "text/calendar; charset=utf-8" },
  });
  await expectOk(res, "PUT");
  return {
    status: res.status,
    etag: res.headers.get("etag") ?? undefined,
    scheduleTag: res.headers.get("schedule-tag") ?? undefined,
  };
}

/** The object with this UID in the calendar, or undefined. */
export async function getEvent(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
  uid: string,
): Promise<string | undefined> {
  const res = await request(server, user, password, "GET", eventPath(user, calendar, uid));
  if (res.status !== 404) return expectOk(res, "GET");
  await res.arrayBuffer();
  return (await findByUid(server, user, password, calendar, uid))?.ics;
}

/** Deletes the object with this UID; false when there is none. */
export async function deleteEvent(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
  uid: string,
): Promise<boolean> {
  const res = await request(server, user, password, "DELETE", eventPath(user, calendar, uid));
  if (res.status !== 404) {
    await expectOk(res, "DELETE");
    return true;
  }
  await res.arrayBuffer();
  const found = await findByUid(server, user, password, calendar, uid);
  if (found === undefined) return false;
  await deleteObject(server, user, password, found.href);
  return true;
}

export async function deleteObject(
  server: CalDavServer,
  user: string,
  password: string,
  href: string,
): Promise<void> {
  await expectOk(await request(server, user, password, "DELETE", href), "DELETE");
}

/** The iCalendar texts of every object in the calendar. */
export async function listEvents(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
): Promise<string[]> {
  return (await listObjects(server, user, password, calendar)).map((o) => o.ics);
}

/** The iCalendar texts in the user's scheduling inbox (what scheduling delivered, one per message). */
export async function inbox(server: CalDavServer, user: string, password: string): Promise<string[]> {
  return listEvents(server, user, password, "Inbox");
}

/** Every object of a collection with its href and ETag (PROPFIND Depth 1, then GET each). */
export async function listObjects(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
): Promise<CalendarObject[]> {
  const path = collectionPath(user, calendar);
  const res = await request(server, user, password, "PROPFIND", path, {
    body: `<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/><D:resourcetype/></D:prop></D:propfind>`,
    headers: { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
  });
  const xml = await expectOk(res, "PROPFIND");
  const objects: CalendarObject[] = [];
  for (const r of multistatus(xml)) {
    if (r.isCollection || r.href === path) continue;
    const get = await request(server, user, password, "GET", r.href);
    if (get.status === 404) {
      await get.arrayBuffer(); // removed between PROPFIND and GET
      continue;
    }
    objects.push({ href: r.href, etag: get.headers.get("etag") ?? r.etag, ics: await expectOk(get, "GET") });
  }
  return objects;
}

/**
 * CalDAV free-busy-query REPORT (RFC 4791 section 7.10) on one calendar of `owner` (default: the
 * user who logs in). Cyrus grants `anyone` read-free-busy, so any user may ask about any other
 * (after a 301 to /dav/calendars/user/USER/OWNER.CALENDAR/); the calendar home answers 404.
 */
export async function freeBusy(
  server: CalDavServer,
  user: string,
  password: string,
  calendar = "Default",
  start: Date,
  end: Date,
  owner: string = user,
): Promise<string> {
  const res = await request(server, user, password, "REPORT", collectionPath(owner, calendar), {
    body: `<?xml version="1.0" encoding="utf-8"?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="${icalUtc(start)}" end="${icalUtc(end)}"/>
</C:free-busy-query>`,
    headers: { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
    // Another user's calendar answers 301 to the caller's view of it, /dav/calendars/user/ME/OWNER.CAL/.
    redirect: "follow",
  });
  return expectOk(res, "REPORT");
}

/**
 * Cyrus's Freebusy URL (httpmodules `freebusy`): GET /freebusy/user/USER?start=&end= without
 * credentials, a VFREEBUSY over all the user's calendars. Unlike an iSchedule VFREEBUSY REQUEST
 * (which Cyrus 3.6 answers without any busy time), it shows the busy periods.
 */
export async function publicFreeBusy(
  server: CalDavServer,
  user: string,
  start: Date,
  end: Date,
): Promise<string> {
  const url = new URL(`/freebusy/user/${encodeURIComponent(user)}`, server.httpUrl);
  url.searchParams.set("start", start.toISOString().replace(/\.\d{3}Z$/, "Z"));
  url.searchParams.set("end", end.toISOString().replace(/\.\d{3}Z$/, "Z"));
  const res = await fetch(url, { redirect: "manual" });
  return expectOk(res, "GET");
}

/**
 * Polls until the object with this UID exists and satisfies `until` (for deliveries that happen
 * after the call that caused them returned); throws with the last text seen on timeout.
 */
export async function waitForEvent(
  server: CalDavServer,
  user: string,
  password: string,
  calendar: string,
  uid: string,
  until: (ics: string) => boolean = () => true,
  timeoutMs = 5000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ics = await getEvent(server, user, password, calendar, uid);
    if (ics !== undefined && until(ics)) return ics;
    if (Date.now() > deadline) {
      throw new Error(
        `waitForEvent: ${uid} in ${user}/${calendar} not as expected after ${timeoutMs} ms; last:\n${ics}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** 20270105T100000Z */
export function icalUtc(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

async function findByUid(
  server: CalDavServer,
  user: string,
  password: string,
  calendar: string,
  uid: string,
): Promise<CalendarObject | undefined> {
  const objects = await listObjects(server, user, password, calendar);
  return objects.find((o) => unfold(o.ics).split(/\r?\n/).includes(`UID:${uid}`));
}

function unfold(ics: string): string {
  return ics.replace(/\r?\n[ \t]/g, "");
}

function request(
  server: CalDavServer,
  user: string,
  password: string,
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string>; redirect?: RequestRedirect } = {},
): Promise<Response> {
  const auth = `Basic ${Buffer.from(`${user}:${password}`, "utf8").toString("base64")}`;
  return fetch(new URL(path, server.httpUrl), {
    method,
    body: init.body,
    headers: { Authorization: auth, ...init.headers },
    redirect: init.redirect ?? "manual",
  });
}

async function expectOk(res: Response, method: string): Promise<string> {
  const body = await res.text();
  if (res.status < 200 || res.status >= 300) throw new CalDavError(method, res.url, res.status, body);
  return body;
}

interface DavResponse {
  href: string;
  etag: string | undefined;
  isCollection: boolean;
}

/** Just enough of a DAV:multistatus: Cyrus writes prefixed elements (D:, C:), others may not. */
function multistatus(xml: string): DavResponse[] {
  const out: DavResponse[] = [];
  for (const m of xml.matchAll(/<(?:[\w-]+:)?response\b[^>]*>([\s\S]*?)<\/(?:[\w-]+:)?response>/g)) {
    const body = m[1] ?? "";
    const href = /<(?:[\w-]+:)?href>([^<]*)</.exec(body)?.[1];
    if (href === undefined) continue;
    const etag = /<(?:[\w-]+:)?getetag>([^<]*)</.exec(body)?.[1];
    out.push({
      href: xmlText(href)
        .trim()
        .replace(/^https?:\/\/[^/]+/, ""),
      etag: etag === undefined ? undefined : xmlText(etag),
      isCollection: /<(?:[\w-]+:)?collection\s*\/>/.test(body),
    });
  }
  return out;
}

function xmlText(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|amp|quot|apos);/gi, (_, e: string) => {
    const named: Record<string, string> = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
    if (e[0] !== "#") return named[e.toLowerCase()] ?? "";
    return String.fromCodePoint(
      e[1] === "x" || e[1] === "X" ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)),
    );
  });
}
