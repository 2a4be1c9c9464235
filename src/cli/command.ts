/**
 * The shape of a command: its flag table, its help, and what it runs.
 * `src/cli/registry.ts` lists them; `src/main.ts` dispatches.
 */
import type { FlagSpec, ParsedArgs } from "../config/flags.ts";

export type FlagTable = Record<string, FlagSpec<unknown>>;

export interface Command<S extends FlagTable = FlagTable> {
  /** As typed after `isched`, e.g. `keygen` or `dkim sign`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** The synopsis, without the leading `isched `. */
  readonly usage: string;
  /** Paragraphs shown by `isched help COMMAND` between the synopsis and the flags. */
  readonly description?: string;
  readonly flags: S;
  /** How many positional arguments the command takes. */
  readonly positionals: { readonly min: number; readonly max: number };
  /** Returns the exit code. Throws UsageError/CommandError for one-line failures. */
  run(args: ParsedArgs<S>): Promise<number>;
}

/** Keeps the flag types of a command literal while checking its shape. */
export function defineCommand<S extends FlagTable>(command: Command<S>): Command<S> {
  return command;
}
