/** `isched send`: submit an iTIP message to a running isched and print each recipient's outcome. */
import { defineCommand } from "../command.ts";
import { CommandError } from "../errors.ts";
import { flag } from "../flags.ts";
import { readInput, readTextInput } from "../io.ts";

interface SubmissionAnswer {
  id: number;
  uuid: string;
  originator: string;
  method: string;
  component: string;
  recipients: {
    recipient: string;
    route: string;
    state: string;
    status: string;
    description?: string;
    final: boolean;
  }[];
}

export const sendCommand = defineCommand({
  name: "send",
  summary: "Submit an iTIP message (invitation, reply, cancellation) through a running isched",
  usage: "send FILE.ics [--from ADDRESS] [--to ADDRESS ...] [--server URL] [--token-file FILE]",
  description: [
    "FILE.ics (or - for standard input) holds the iCalendar object with its METHOD. Without --from the",
    "Originator is the ORGANIZER (or the replying ATTENDEE); without --to the recipients are the",
    "ATTENDEEs (or the ORGANIZER of a reply). Prints one line per recipient; exits 1 if any failed.",
  ].join("\n"),
  flags: {
    from: flag.string({ help: "the Originator, e.g. mailto:alice@example.com", placeholder: "ADDRESS" }),
    to: flag.list({ help: "a recipient", placeholder: "ADDRESS", commaSeparated: true }),
    server: flag.stringWithDefault({
      help: "isched's console/API address",
      placeholder: "URL",
      defaultValue: "http://127.0.0.1:8081",
    }),
    tokenFile: flag.stringWithDefault({
      help: "API token file",
      placeholder: "FILE",
      defaultValue: "data/api-token",
    }),
  },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    const calendar = readInput(positionals[0]!, "iCalendar file").toString("utf8");
    const token = readTextInput(flags.tokenFile, "token file").trim();
    const mailto = (a: string) => (/^[a-z][a-z0-9+.-]*:/i.test(a) ? a : `mailto:${a}`);
    let res: Response;
    try {
      res = await fetch(`${flags.server.replace(/\/$/, "")}/api/v1/messages`, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          calendar,
          originator: flags.from ? mailto(flags.from) : undefined,
          recipients: flags.to.length > 0 ? flags.to.map(mailto) : undefined,
        }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (e) {
      throw new CommandError(`cannot reach isched at ${flags.server}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new CommandError(`${flags.server} answered HTTP ${res.status} with something that is not JSON`);
    }
    if (res.status !== 202) {
      const error = (value as { error?: string }).error ?? `HTTP ${res.status}`;
      throw new CommandError(`isched refused the message: ${error}`);
    }
    const answer = value as SubmissionAnswer;
    process.stdout.write(
      `message ${answer.uuid} (${answer.method} ${answer.component}) from ${answer.originator}\n`,
    );
    const width = Math.max(...answer.recipients.map((r) => r.recipient.length));
    for (const r of answer.recipients) {
      const note = r.final ? r.state : `${r.state}, by ${r.route}`;
      process.stdout.write(
        `  ${r.recipient.padEnd(width)}  ${r.status}  (${note})${r.description ? ` ${r.description}` : ""}\n`,
      );
    }
    return answer.recipients.some((r) => r.final && r.state === "failed") ? 1 : 0;
  },
});
