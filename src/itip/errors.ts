/**
 * The errors the iTIP layer reports. `ItipError` is thrown when a body cannot be used at all (the
 * receiver answers with the IS:error element of the same name, draft §6.1.2); `ItipProblem` is what
 * the rule checks return. Every message is one sentence that is safe to send to the remote peer: it
 * names properties, line numbers and clipped values, never whole lines.
 */

export type ItipErrorKind = "invalid-calendar-data" | "invalid-scheduling-message";

export class ItipError extends Error {
  override readonly name = "ItipError";
  constructor(
    /** Also the IS:error element name (draft §6.1.2). */
    readonly kind: ItipErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** A refusal by the iSchedule rules; `element` is the IS:error child to answer with (draft §6.1.2). */
export interface ItipProblem {
  readonly element: "originator-denied" | "invalid-scheduling-message" | "recipient-mismatch";
  readonly message: string;
  /** The Recipient values that caused the problem, when it is about recipients. */
  readonly recipients?: readonly string[];
}

export const invalidData = (message: string): ItipError => new ItipError("invalid-calendar-data", message);
export const invalidMessage = (message: string): ItipError =>
  new ItipError("invalid-scheduling-message", message);

/** Shortens text quoted from the peer's data so a message stays one readable line. */
export function clip(text: string, max = 60): string {
  const oneLine = text.replace(/[\x00-\x1f\x7f]/g, " ");
  return oneLine.length > max ? `${oneLine.slice(0, max - 3)}...` : oneLine;
}
