/**
 * The console's API of a running `isched serve` (serve-process.ts), read as its page reads it, with
 * the token from the data folder: the detail of the one message with a given UID.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MessageView } from "../../src/console/message-view.ts";
import type { ServeProcess } from "./serve-process.ts";

export async function messageDetailByUid(
  server: ServeProcess,
  dataDir: string,
  uid: string,
): Promise<MessageView> {
  const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
  const get = async (path: string): Promise<unknown> => {
    const res = await fetch(`${server.consoleUrl}/api/v1${path}`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${await res.text()}`);
    return res.json();
  };
  const list = (await get(`/messages?q=${encodeURIComponent(`uid:${uid}`)}`)) as {
    messages: { uuid: string }[];
  };
  if (list.messages.length !== 1)
    throw new Error(`${list.messages.length} messages with UID ${uid}, expected one`);
  return (await get(`/messages/${list.messages[0]!.uuid}`)) as MessageView;
}
