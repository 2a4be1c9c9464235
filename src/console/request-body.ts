/**
 * The console API's request bodies: read by the one capped, streaming reader (src/http/read-body.ts),
 * so a route never holds more than its limit, then decoded (a JSON object, or a route's own media
 * type) into the value its schema checks. Every refusal is a RequestError with the API's status:
 * 415 for a type the route does not take (before a byte is read), 413 past the limit, 408 for a body
 * that does not arrive in time, 400 for JSON that is not an object.
 */
import {
  BodyReadError,
  BodyTimeoutError,
  BodyTooLargeError,
  DEFAULT_BODY_TIMEOUT_MS,
  readCappedText,
} from "../http/read-body.ts";
import { type BodySpec, MAX_JSON_BYTES, RequestError } from "./http.ts";

/** How long a whole body may take to arrive; the listener keeps the connection open that long (mount.ts). */
export const BODY_TIMEOUT_MS = DEFAULT_BODY_TIMEOUT_MS;

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

/** The body as `spec` says, for its schema to check; RequestError (400, 408, 413, 415) otherwise. */
export async function readRouteBody(request: Request, spec: BodySpec): Promise<unknown> {
  const type = mediaType(request);
  const decode = type === "application/json" ? undefined : spec.decoders?.[type];
  if (type !== "application/json" && !decode)
    throw new RequestError(415, spec.typesHint ?? "send the body as application/json");
  const maxBytes = spec.maxBytes ?? MAX_JSON_BYTES;
  let text: string;
  try {
    text = await readCappedText(request, { maxBytes, timeoutMs: BODY_TIMEOUT_MS });
  } catch (e) {
    if (e instanceof BodyTooLargeError)
      throw new RequestError(413, `the body is larger than ${maxBytes} bytes`);
    if (e instanceof BodyTimeoutError)
      throw new RequestError(408, `the body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`);
    if (e instanceof BodyReadError) throw new RequestError(400, e.message);
    throw e;
  }
  if (decode) return decode(text, request);
  let value: unknown;
  try {
    value = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new RequestError(400, "the body is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new RequestError(400, "the body must be a JSON object");
  return value;
}
