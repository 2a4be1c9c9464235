/**
 * The mistakes in settings that the command line reports as usage errors (exit code 2): a flag or
 * its value is wrong (UsageError), or settings that parse do not go together or name a file that
 * does not hold what they say (ConfigError).
 */

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
  readonly exitCode = 2;
}

/** A configuration mistake; the command line reports it as a usage error. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}
