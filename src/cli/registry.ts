/** Every command of the executable, in the order `isched --help` lists them. */
import type { Command } from "./command.ts";
import { adminSetPasswordCommand } from "./commands/admin.ts";
import { backupCommand, restoreCommand } from "./commands/backup.ts";
import { discoverCommand } from "./commands/discover.ts";
import { dkimSignCommand } from "./commands/dkim-sign.ts";
import { dkimVerifyCommand } from "./commands/dkim-verify.ts";
import { doctorCommand } from "./commands/doctor.ts";
import { keygenCommand } from "./commands/keygen.ts";
import { migrateDataCommand } from "./commands/migrate-data.ts";
import {
  queueCancelCommand,
  queueImipCommand,
  queueListCommand,
  queueRetryCommand,
  queueShowCommand,
} from "./commands/queue.ts";
import { sendCommand } from "./commands/send.ts";
import { serveCommand } from "./commands/serve.ts";
import { validateCommand } from "./commands/validate.ts";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  validateCommand,
  doctorCommand,
  discoverCommand,
  sendCommand,
  queueListCommand,
  queueShowCommand,
  queueRetryCommand,
  queueCancelCommand,
  queueImipCommand,
  adminSetPasswordCommand,
  backupCommand,
  restoreCommand,
  migrateDataCommand,
  keygenCommand,
  dkimSignCommand,
  dkimVerifyCommand,
];
