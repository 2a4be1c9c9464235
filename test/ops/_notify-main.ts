/**
 * Compiled by test/ops/sd-notify.test.ts with `bun build --compile`, as dist/isched is: sends the
 * notifications named on its command line (`READY=1 STATUS=text`) to $NOTIFY_SOCKET through
 * src/ops/sd-notify.ts and prints each result as a JSON line.
 */
import { sendNotification } from "../../src/ops/sd-notify.ts";

const socket = process.env.NOTIFY_SOCKET ?? "";
for (const arg of process.argv.slice(2)) {
  const eq = arg.indexOf("=");
  const result = sendNotification(socket, { [arg.slice(0, eq)]: arg.slice(eq + 1) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
