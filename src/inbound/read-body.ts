/**
 * The endpoint's body reader: the capped, streaming reader every route uses (src/http/read-body.ts),
 * with a body over the cap refused as the iSchedule max-content-length error (draft §6.1.2).
 */
import { BodyTooLargeError, type ReadBodyOptions, readCappedBody as readBody } from "../http/read-body.ts";
import { IScheduleError } from "../ischedule/errors.ts";

export { BodyReadError, BodyTimeoutError, type ReadBodyOptions } from "../http/read-body.ts";

export async function readCappedBody(request: Request, o: ReadBodyOptions): Promise<Uint8Array> {
  try {
    return await readBody(request, o);
  } catch (e) {
    if (e instanceof BodyTooLargeError) throw new IScheduleError("max-content-length", e.message);
    throw e;
  }
}
