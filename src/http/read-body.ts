/**
 * Reading a request body with a hard cap, for every route that reads one (the iSchedule endpoint, the
 * console's API, the submission API): a declared Content-Length over the cap is refused before a byte
 * is read, and a body that grows past it (chunked) is cut off as soon as it does, so a client can
 * never make isched hold more than the cap. A client that stalls is cut off by a deadline. Each
 * caller turns the two errors into its own answer (an iSchedule <error>, a JSON error).
 *
 * Bun's own limit (`maxRequestBodySize`) would answer a bare 413 before the route sees the request;
 * the listeners set it above any declared length so that this reader decides, and answers precisely.
 */

/** For Bun.serve's maxRequestBodySize: this reader, not Bun, refuses bodies that are too large. */
export const UNCAPPED_AT_LISTENER = Number.MAX_SAFE_INTEGER;

/** How long a whole body may take to arrive, unless a listener says otherwise. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/**
 * Bun closes a connection when its idle timer fires (Bun.serve's idleTimeout: 10 s by default, 30 s
 * under Elysia; checked in ticks of a few seconds), even while a body is still arriving, and without
 * an answer. A listener whose requests this reader times gives each request this many seconds instead
 * (`server.timeout(request, seconds)`), so that the reader's own deadline answers (408) first.
 */
export const idleSecondsWhileReading = (timeoutMs: number): number => Math.ceil(timeoutMs / 1000) + 10;

export interface ReadBodyOptions {
  maxBytes: number;
  /** The whole body must arrive within this time. */
  timeoutMs: number;
}

export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
  constructor(
    readonly maxBytes: number,
    /** The Content-Length, when that is what gave it away. */
    readonly declaredBytes?: number,
  ) {
    super(
      `${declaredBytes === undefined ? "The body is larger" : `The body (${declaredBytes} bytes) is larger`} than the ${maxBytes} bytes this server accepts.`,
    );
  }
}

export class BodyTimeoutError extends Error {
  override readonly name = "BodyTimeoutError";
}

/**
 * The body stopped before its end: the client closed the connection, or Bun's parser refused its
 * framing (a chunk size that is not hex) after the route had started. The client's doing, not the
 * server's: each route answers it as a client error.
 */
export class BodyReadError extends Error {
  override readonly name = "BodyReadError";
}

export async function readCappedBody(request: Request, o: ReadBodyOptions): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > o.maxBytes) {
    throw new BodyTooLargeError(o.maxBytes, Number(declared));
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
      const { done, value } = await Promise.race([
        reader.read().catch((e: unknown) => {
          throw new BodyReadError(
            `the body could not be read to its end (${(e as Error)?.message ?? String(e)})`,
          );
        }),
        deadline,
      ]);
      if (done) break;
      total += value.byteLength;
      if (total > o.maxBytes) throw new BodyTooLargeError(o.maxBytes);
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

/** The body as UTF-8 text (malformed sequences become U+FFFD), read as readCappedBody() does. */
export async function readCappedText(request: Request, o: ReadBodyOptions): Promise<string> {
  return new TextDecoder().decode(await readCappedBody(request, o));
}
