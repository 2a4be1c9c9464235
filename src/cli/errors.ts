/**
 * Errors the command line turns into a one-line message and an exit code.
 * Anything else reaching the top level is a bug and is reported as one.
 */

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = 2;
}

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
