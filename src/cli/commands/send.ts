/** `isched send`: submit an iTIP message to a running isched and print each recipient's outcome. */

import { flag } from "../../config/flags.ts";
import { defineCommand } from "../command.ts";
import { readInput } from "../io.ts";
import { ask, connect, connectionFlags } from "./api-connection.ts";

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
  usage: "send FILE.ics [--from ADDRESS] [--to ADDRESS ...] [--server URL] [--token-file FILE | --data DIR]",
  description: [
    "FILE.ics (or - for standard input) holds the iCalendar object with its METHOD. Without --from the",
    "Originator is the ORGANIZER (or the replying ATTENDEE); without --to the recipients are the",
    "ATTENDEEs (or the ORGANIZER of a reply). Prints one line per recipient; exits 1 if any failed.",
  ].join("\n"),
  flags: {
    from: flag.string({ help: "the Originator, e.g. mailto:alice@example.com", placeholder: "ADDRESS" }),
    to: flag.list({ help: "a recipient", placeholder: "ADDRESS", commaSeparated: true }),
    ...connectionFlags,
  },
  positionals: { min: 1, max: 1 },
  async run({ flags, positionals }) {
    const calendar = readInput(positionals[0]!, "iCalendar file").toString("utf8");
    const api = connect(flags, { timeoutMs: 60_000 });
    const mailto = (a: string) => (/^[a-z][a-z0-9+.-]*:/i.test(a) ? a : `mailto:${a}`);
    const answer = await ask(
      () =>
        api.call<SubmissionAnswer>("POST", "/messages", {
          calendar,
          originator: flags.from ? mailto(flags.from) : undefined,
          recipients: flags.to.length > 0 ? flags.to.map(mailto) : undefined,
        }),
      { refused: "the message was refused" },
    );
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
