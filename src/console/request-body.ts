/**
 * The console API's request bodies: read by the one capped, streaming reader (src/http/read-body.ts),
 * so a route never holds more than its limit, then parsed into the value its schema checks: one JSON
 * object, unless the route reads its body its own way (the submission API). Every refusal is a
 * RequestError with the API's status: 415 for a type the route does not take (before a byte is
 * read), 413 past the limit, 408 for a body that does not arrive in time, 400 for a body that breaks
 * off and for JSON that is not an object.
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

/** The body as `spec` says, for its schema to check. */
export function readRouteBody(request: Request, spec: BodySpec): Promise<unknown> {
  const maxBytes = spec.maxBytes ?? MAX_JSON_BYTES;
  return spec.read ? spec.read(request, maxBytes) : readJsonBody(request, maxBytes);
}

/**
 * The body as text, read no further than `maxBytes`; RequestError 413 past it, 408 when it does not
 * arrive in time (said by `timeoutMessage`), 400 when it breaks off.
 */
export async function readBodyText(
  request: Request,
  maxBytes: number,
  timeoutMessage: (e: BodyTimeoutError) => string = () =>
    `the body did not arrive within ${BODY_TIMEOUT_MS / 1000} s`,
): Promise<string> {
  try {
    return await readCappedText(request, { maxBytes, timeoutMs: BODY_TIMEOUT_MS });
  } catch (e) {
    if (e instanceof BodyTooLargeError)
      throw new RequestError(413, `the body is larger than ${maxBytes} bytes`);
    if (e instanceof BodyTimeoutError) throw new RequestError(408, timeoutMessage(e));
    if (e instanceof BodyReadError) throw new RequestError(400, e.message);
    throw e;
  }
}

/** The JSON object in the body; RequestError (400, 408, 413, 415) otherwise. */
export async function readJsonBody(request: Request, maxBytes: number): Promise<Record<string, unknown>> {
  if (mediaType(request) !== "application/json")
    throw new RequestError(415, "send the body as application/json");
  const text = await readBodyText(request, maxBytes);
  let value: unknown;
  try {
    value = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new RequestError(400, "the body is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new RequestError(400, "the body must be a JSON object");
  return value as Record<string, unknown>;
}
