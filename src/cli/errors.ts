/**
 * Errors the command line turns into a one-line message and an exit code (usage errors, exit code 2,
 * are src/config/errors.ts's: flags and settings).
 * Anything else reaching the top level is a bug and is reported as one.
 */

/** The command ran but could not do its job (bad input file, unreachable server, ...): exit code 1. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
