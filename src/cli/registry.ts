/** Every command of the executable, in the order `isched --help` lists them. */
import type { Command } from "./command.ts";
import { dkimSignCommand } from "./commands/dkim-sign.ts";
import { dkimVerifyCommand } from "./commands/dkim-verify.ts";
import { keygenCommand } from "./commands/keygen.ts";
import { sendCommand } from "./commands/send.ts";
import { serveCommand } from "./commands/serve.ts";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  sendCommand,
  keygenCommand,
  dkimSignCommand,
  dkimVerifyCommand,
];
