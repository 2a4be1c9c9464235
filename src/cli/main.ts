/**
 * Command dispatch: `isched COMMAND [flags]`, `isched help [COMMAND]`, `isched --help`, `isched --version`.
 * Every failure ends as one line on stderr and an exit code (2 usage, 1 failure); never a stack trace
 * unless ISCHED_DEBUG is set.
 */

import { UsageError } from "../config/errors.ts";
import { describeFlags, nearest, parseFlags } from "../config/flags.ts";
import { VERSION } from "../version.ts";
import type { Command } from "./command.ts";
import { strayVariables } from "./effective-config.ts";
import { CommandError } from "./errors.ts";
import { COMMANDS } from "./registry.ts";

const HELP_FLAGS = new Set(["--help", "-h"]);

export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    `isched ${VERSION}: an iSchedule gateway (DKIM-verified server-to-server calendar scheduling)`,
    "",
    "Usage: isched COMMAND [FLAGS]",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    "Run 'isched help COMMAND' for the flags of a command.",
    "Global: --help, --version",
  ].join("\n");
}

export function commandHelp(c: Command): string {
  const parts = [`Usage: isched ${c.usage}`, "", c.summary];
  if (c.description) parts.push("", c.description);
  if (Object.keys(c.flags).length > 0) parts.push("", "Flags:", describeFlags(c.flags));
  if (Object.values(c.flags).some((f) => f.env))
    parts.push(
      "",
      "Each flag can also be set by the environment variable shown with it; the command line wins.",
      "An empty variable counts as unset; a repeatable flag's variable takes values separated by spaces.",
    );
  return parts.join("\n");
}

/** The commands of a group (`queue` -> queue list, queue show, ...); empty when `word` names none. */
function groupOf(word: string | undefined): Command[] {
  return COMMANDS.filter((c) => c.name.startsWith(`${word} `));
}

export function groupHelp(group: string, commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 4;
  return [
    `Usage: isched ${group} SUBCOMMAND [FLAGS]`,
    "",
    "Subcommands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    "",
    `Run 'isched help ${group} SUBCOMMAND' for the flags of a subcommand.`,
  ].join("\n");
}

/** `isched queue --help`, `isched help queue`: the group's help, when argv names a group and no more. */
function askedGroupHelp(argv: readonly string[]): string | undefined {
  const group = groupOf(argv[0]);
  const sub = argv[1];
  if (group.length === 0 || (sub !== undefined && !HELP_FLAGS.has(sub))) return undefined;
  return groupHelp(argv[0]!, group);
}

/** Finds the command named by the leading words of argv (`dkim verify ...`). */
function resolve(argv: readonly string[]): { command: Command; rest: string[] } {
  const words = argv.filter((a) => !a.startsWith("-"));
  for (let n = 2; n >= 1; n--) {
    const name = words.slice(0, n).join(" ");
    const command = COMMANDS.find((c) => c.name === name);
    if (command && argv.slice(0, n).join(" ") === name) return { command, rest: argv.slice(n) };
  }
  const typed = argv.slice(0, 2).join(" ");
  const group = groupOf(argv[0]);
  if (group.length > 0) {
    const sub = argv[1];
    const hint = sub
      ? nearest(
          `${argv[0]} ${sub}`,
          group.map((c) => c.name),
        )
      : undefined;
    throw new UsageError(
      sub === undefined || sub.startsWith("-")
        ? `'${argv[0]}' needs a subcommand: ${group.map((c) => c.name.split(" ")[1]).join(", ")}`
        : `unknown command '${typed}'${hint ? ` (did you mean '${hint}'?)` : ""}`,
    );
  }
  const hint = nearest(argv[0] ?? "", new Set(COMMANDS.map((c) => c.name.split(" ")[0]!)));
  throw new UsageError(`unknown command '${argv[0]}'${hint ? ` (did you mean '${hint}'?)` : ""}`);
}

export async function main(argv: readonly string[]): Promise<number> {
  const first = argv[0];
  if (first === undefined) {
    process.stderr.write(`${overview()}\n`);
    return 2;
  }
  if (HELP_FLAGS.has(first)) {
    process.stdout.write(`${overview()}\n`);
    return 0;
  }
  if (first === "--version" || first === "version") {
    process.stdout.write(`isched ${VERSION}\n`);
    return 0;
  }
  if (first === "help") {
    if (argv.length === 1) {
      process.stdout.write(`${overview()}\n`);
      return 0;
    }
    const help = askedGroupHelp(argv.slice(1)) ?? commandHelp(resolve(argv.slice(1)).command);
    process.stdout.write(`${help}\n`);
    return 0;
  }
  if (first.startsWith("-")) {
    throw new UsageError(`unknown flag ${first} (flags come after the command; see 'isched --help')`);
  }
  const group = askedGroupHelp(argv);
  if (group !== undefined && argv.length > 1) {
    process.stdout.write(`${group}\n`);
    return 0;
  }
  const { command, rest } = resolve(argv);
  if (rest.some((a) => HELP_FLAGS.has(a))) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  const parsed = parseFlags(rest, command.flags, command.name);
  parsed.strayVariables = strayVariables(
    process.env,
    COMMANDS.map((c) => c.flags),
  );
  const { min, max } = command.positionals;
  const n = parsed.positionals.length;
  if (n < min)
    throw new UsageError(
      `'${command.name}' needs ${min === max ? min : `at least ${min}`} argument(s): isched ${command.usage}`,
    );
  if (n > max)
    throw new UsageError(
      `'${command.name}' takes ${max === 0 ? "no" : `at most ${max}`} argument(s), got '${parsed.positionals[max]}'`,
    );
  return command.run(parsed);
}

/** Runs main and exits with its code, reporting errors as one line. */
export async function run(argv: readonly string[]): Promise<never> {
  let code: number;
  try {
    code = await main(argv);
  } catch (e) {
    if (e instanceof UsageError || e instanceof CommandError) {
      process.stderr.write(`isched: ${e.message}\n`);
      code = e.exitCode;
    } else {
      const err = e as Error;
      process.stderr.write(`isched: internal error: ${err?.message ?? String(e)}\n`);
      if (process.env.ISCHED_DEBUG) process.stderr.write(`${err?.stack}\n`);
      code = 70;
    }
  }
  process.exit(code);
}
