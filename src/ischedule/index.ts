/**
 * The iSchedule wire format (draft-desruisseaux-ischedule): headers, REQUEST-STATUS values, XML
 * documents and capabilities. Pure functions, no I/O; used by both the receiver and the sender.
 */
export {
  addressDomain,
  addressKey,
  isCalendarUserAddress,
  MAX_ADDRESS_LENGTH,
  normalizeAddress,
  sameAddress,
} from "./address.ts";
export {
  type Acceptance,
  acceptsMessage,
  type Capabilities,
  type ComponentCapability,
  DEFAULT_CALENDAR_DATA_TYPE,
  type MessageFacts,
  supportsVersion,
  toICalendarUtc,
} from "./capabilities.ts";
export { type ParsedCapabilities, parseCapabilities } from "./capabilities-reader.ts";
export {
  HTTP_STATUS_FOR,
  ISCHEDULE_ERROR_ELEMENTS,
  IScheduleError,
  type IScheduleErrorElement,
  isIScheduleErrorElement,
} from "./errors.ts";
export {
  parseOriginator,
  parseRecipients,
  parseVersionHeader,
  type Recipient,
  SUPPORTED_VERSIONS,
  sameVersion,
} from "./headers.ts";
export {
  type CalendarDataType,
  type ContentType,
  isAcceptedMediaType,
  parseContentType,
  requireAcceptedMediaType,
} from "./media-type.ts";
export { CALDAV_NS, DAV_NS, ISCHEDULE_NS } from "./namespaces.ts";
export { parseScheduleResponse, type ScheduleResponse } from "./response-reader.ts";
export {
  classifyStatus,
  formatRequestStatus,
  parseRequestStatus,
  type RequestStatus,
  STATUS,
  type StatusClass,
} from "./status.ts";
export {
  childElement,
  childElements,
  DEFAULT_MAX_XML_BYTES,
  DEFAULT_MAX_XML_DEPTH,
  deepText,
  parseXml,
  type XmlElement,
  type XmlReadOptions,
  XmlSyntaxError,
} from "./xml-reader.ts";
export {
  capabilitiesXml,
  errorXml,
  escapeAttribute,
  escapeText,
  type ScheduleResponseItem,
  scheduleResponseXml,
} from "./xml-writer.ts";
