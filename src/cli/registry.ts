/** Every command of the executable, in the order `isched --help` lists them. */
import type { Command } from "./command.ts";

export const COMMANDS: readonly Command[] = [];
