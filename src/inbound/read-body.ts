/**
 * Reading a request body with a hard cap: a declared Content-Length over the cap is refused before a
 * byte is read, and a body that grows past it (chunked) is cut off as soon as it does, so a client
 * can never make isched buffer more than the cap. A client that stalls is cut off by a deadline.
 */
import { IScheduleError } from "../ischedule/errors.ts";

export interface ReadBodyOptions {
  maxBytes: number;
  /** The whole body must arrive within this time. */
  timeoutMs: number;
}

export class BodyTimeoutError extends Error {
  override readonly name = "BodyTimeoutError";
}

export async function readCappedBody(request: Request, o: ReadBodyOptions): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > o.maxBytes) {
    throw tooLarge(o.maxBytes, Number(declared));
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BodyTimeoutError(`the body did not arrive within ${o.timeoutMs} ms`)),
      o.timeoutMs,
    );
  });
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), deadline]);
      if (done) break;
      total += value.byteLength;
      if (total > o.maxBytes) throw tooLarge(o.maxBytes);
      chunks.push(value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    body.set(c, offset);
    offset += c.byteLength;
  }
  return body;
}

function tooLarge(max: number, declared?: number): IScheduleError {
  const size = declared === undefined ? "The body is larger" : `The body (${declared} bytes) is larger`;
  return new IScheduleError("max-content-length", `${size} than the ${max} bytes this server accepts.`);
}
