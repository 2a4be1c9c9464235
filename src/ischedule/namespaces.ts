/** XML namespaces of iSchedule documents. */

/** draft §1.4, §11.1.1. */
export const ISCHEDULE_NS = "urn:ietf:params:xml:ns:ischedule";
/** RFC 4791; pre-2012 CalendarServer used it for server-to-server schedule-response. */
export const CALDAV_NS = "urn:ietf:params:xml:ns:caldav";
/** RFC 4918; the CalDAV form of a response wraps the recipient in DAV:href. */
export const DAV_NS = "DAV:";
/** txweb2's: CalendarServer's DAV:error carries its text in `error-description` here (docs/interop.md). */
export const TWISTED_DAV_NS = "http://twistedmatrix.com/xml_namespace/dav/";
