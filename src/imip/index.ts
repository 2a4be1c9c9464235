/**
 * iMIP (RFC 6047): the email isched sends when a scheduling message cannot go by iSchedule, and the
 * SMTP client that hands it to the relay. The message builder, subjects and bodies are pure; only
 * the SMTP sender does I/O.
 */
export {
  escapeHtml,
  type ImipAttendeeLine,
  type ImipBodies,
  type ImipDescription,
  imipBodies,
} from "./bodies.ts";
export { buildImipMessage, type ImipEnvelope, type ImipMessage, type ImipMessageOptions } from "./message.ts";
export {
  checkSmtpRelay,
  createSmtpSender,
  type RecipientRejection,
  type RelayCheck,
  type SmtpFailureKind,
  type SmtpResult,
  type SmtpSendable,
  type SmtpSender,
  type SmtpSenderOptions,
} from "./smtp-sender.ts";
export {
  type ParsedSmtpUrl,
  parseSmtpUrl,
  redactSmtpUrl,
  type SmtpCredentials,
  type SmtpTlsMode,
} from "./smtp-url.ts";
export { type ImipSubjectOptions, imipSubject } from "./subject.ts";
